"""Command line: ``python -m chat [serve]``, ``python -m chat token ...``, ``python -m chat schema``,
``python -m chat migrate``, ``python -m chat verify evidence.json``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .auth import ROLES, mint, mint_listing
from .config import Config, help_text
from .protocol.schema import protocol_schema, render

if TYPE_CHECKING:
    from .broadcasts import BroadcastRunner


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chat",
        description="Buyer–seller chat hub with in-chat escrow payments.",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run a hub node (the default command)", epilog=help_text(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--workers", type=int, metavar="N",
                       help="hub processes sharing PORT (SO_REUSEPORT); default: WORKERS")
    # Set by the supervisor for its workers: bind with SO_REUSEPORT, stop when it is gone.
    serve.add_argument("--supervisor", type=int, metavar="PID", help=argparse.SUPPRESS)
    sub.add_parser("worker", help="run due payment timeouts (auto-confirm, transfer expiry) forever")
    sub.add_parser("migrate", help="bring the chat store's schema (DATABASE_URL) up to date; print its version")
    token = sub.add_parser("token", help="mint a user token for development (signed with TOKEN_SECRET)")
    token.add_argument("user", help="user id (the token's subject)")
    token.add_argument("--role", choices=ROLES, default="buyer")
    token.add_argument("--shop", help="the agent's shop (required for --role agent)")
    token.add_argument("--name", help="display name")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    listing = sub.add_parser("listing-token", help="sign a listing's product card (what the marketplace does)")
    listing.add_argument("--shop", required=True)
    listing.add_argument("--id", required=True, help="listing id")
    listing.add_argument("--title", required=True)
    listing.add_argument("--price", type=int, required=True, help="price in minor units (fen, cents)")
    listing.add_argument("--currency", default="CNY")
    listing.add_argument("--image", help="image URL")
    listing.add_argument("--ttl", type=int, default=86_400, help="lifetime in seconds (default one day)")
    verify = sub.add_parser("verify", help="check an evidence package offline: its hash chain and signature "
                            "(EVIDENCE_KEY); exit 1 naming the first broken link")
    verify.add_argument("file", help="the package, as exported by GET /api/v1/conversations/<id>/evidence")
    verify.add_argument("--key", help="the signing key (default: EVIDENCE_KEY)")
    schema = sub.add_parser("schema", help="print the wire protocol's JSON Schema (docs/protocol.schema.json)")
    schema.add_argument("--check", metavar="FILE", help="print nothing; exit 1 if FILE differs from the schema")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "schema":  # the models alone decide it, whatever the settings
        return write_schema(args.check)
    config = Config.from_env()
    if args.command == "verify":
        from .evidence import verify_file

        return verify_file(args.file, args.key if args.key is not None else config.evidence_key)
    if args.command == "migrate":
        return asyncio.run(migrate(config))
    if args.command == "listing-token":
        card = {"id": args.id, "title": args.title, "price": args.price, "currency": args.currency}
        if args.image:
            card["image"] = args.image
        print(mint_listing(config.token_secret, args.shop, card, ttl=args.ttl))
        return 0
    if args.command == "token":
        try:
            print(mint(config.token_secret, args.user, args.role, shop=args.shop, name=args.name, ttl=args.ttl))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if config.log_level.upper() != "DEBUG":
        # One line per HTTP probe and connection is noise at INFO.
        logging.getLogger("websockets").setLevel(logging.WARNING)
    if config.is_dev_secret:
        logging.getLogger("chat").warning("TOKEN_SECRET is the development default: set it in production")
    workers = config.workers if getattr(args, "workers", None) is None else args.workers
    if args.command in (None, "serve") and workers != 1:
        from .workers import supervise

        return supervise(config, workers)
    from .server import build

    async def run() -> None:
        if args.command == "worker":
            await run_worker(config)
            return
        supervisor: int | None = getattr(args, "supervisor", None)
        server = build(config, reuse_port=supervisor is not None)
        await server.start()
        settle_heap()
        if supervisor is not None:
            from .workers import stop_with_supervisor

            stop_with_supervisor(supervisor)
        await server.serve_until_signal()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        asyncio.run(run())
    else:
        uvloop.run(run())
    return 0


def settle_heap() -> None:
    """Move everything the node built while starting (modules, pydantic schemas, the
    detection tables) out of the garbage collector's sight, once, before users connect.

    Those objects live as long as the process, yet a full collection would walk all of
    them every time: 35 ms of the event loop, for every user, before one connection is
    counted. Frozen, a full pass walks only what connections and requests made. Only at
    start: freezing later would keep cyclic garbage of closed connections forever.
    ``chat_gc_seconds`` in ``/metrics`` shows what collection still costs."""
    import gc

    gc.collect()
    gc.freeze()
    # Young collections every 10,000 net new container objects instead of 700: most of a
    # request's objects die by reference count before one runs, so fewer survivors are
    # promoted and a full pass over every connection's objects comes less often. On one
    # node on Redis at 1,000 msg/s: collector time per 12 s 0.40 -> 0.17 s, and 3 full
    # passes of ~45 ms each -> 1.
    gc.set_threshold(10_000, 10, 10)


def write_schema(check: str | None) -> int:
    """``schema``: the generated JSON Schema on stdout, or with ``--check`` whether FILE is still current."""
    text = render(protocol_schema())
    if check is None:
        sys.stdout.write(text)
        return 0
    try:
        current = Path(check).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if current != text:
        print(f"{check} is out of date: run python -m chat schema > {check}", file=sys.stderr)
        return 1
    return 0


async def migrate(config: Config) -> int:
    """``migrate``: what a node does on start, alone (safe while nodes run or start)."""
    from .server import open_store

    store = open_store(config)
    run = getattr(store, "migrate", None)
    if run is None:
        print("this store has no schema to migrate", file=sys.stderr)
        return 1
    try:
        version = await run()
    except (ConnectionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"chat store schema version {version}")
    return 0


async def run_worker(config: Config) -> None:
    """The Procfile's ``worker``: timeouts and webhooks; hub nodes post the resulting cards."""
    import signal

    from payments.webhooks import WebhookOutbox

    from .config import webhook_settings
    from .money import open_service, run_timers
    from .webhooks import WebhookSender

    service = open_service(config.payments_database_url, config.payment_settings())
    hooks = webhook_settings(config)
    sender = None if hooks is None else WebhookSender(WebhookOutbox(service.store, service.clock), hooks)
    if sender is not None:
        await sender.start()
    task = asyncio.create_task(run_timers(service, config.timer_interval))
    broadcasts = await _broadcast_runner(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    logging.getLogger("chat").info("payment timer worker running every %.1f s%s", config.timer_interval,
                                   ", sending webhooks" if sender is not None else "")
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if sender is not None:
        await sender.stop()
    if broadcasts is not None:
        await broadcasts.stop()
        await broadcasts.hub.broker.close()
        await broadcasts.hub.store.close()


async def _broadcast_runner(config: Config) -> BroadcastRunner | None:
    """The worker's broadcast runner (beside the hubs' own, one job per runner by lease): it
    writes to the chat store and pushes to live buyers through the broker, so it needs
    REDIS_URL to reach them (without it, buyers find the messages when they next sync)."""
    from .broadcasts import BroadcastRunner
    from .clock import SystemClock
    from .hub import Hub
    from .server import open_backends, open_store

    if not config.redis_url and config.broadcasts_enabled_in_hub:
        return None  # the embedded default: the hub delivers them, live
    broker, presence = open_backends(config)
    hub = Hub(config, open_store(config), broker, presence, SystemClock())
    await hub.store.start()
    await broker.start(lambda channel, payload: None)
    runner = BroadcastRunner(hub)
    await runner.start()
    logging.getLogger("chat").info("delivering broadcasts to followers")
    return runner


if __name__ == "__main__":
    sys.exit(main())
