"""Settings from the environment (12-factor), each documented once, here.

``python -m chat --help`` prints this table, and the README's configuration
section is checked against it by a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

_DEV_SECRET = "dev-secret-change-me-please-0123456789"
_DEV_PEPPER = "dev-pin-pepper-change-me-0123456789"


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "127.0.0.1", "address to bind; 0.0.0.0 to accept remote clients"),
    Setting("PORT", "8765", "port for websockets and HTTP (healthz, readyz, metrics, presence)"),
    Setting("NODE_ID", "", "name of this hub node in metrics and logs (default: host:pid)"),
    Setting("WORKERS", "1", "hub processes sharing PORT on this machine (SO_REUSEPORT), to use every core; "
            "more than 1 needs REDIS_URL and a postgresql:// DATABASE_URL"),
    Setting("DATABASE_URL", "sqlite:///data/chat.db", "durable store: sqlite:///path (a file, WAL) or "
            "postgresql://user@host/db[?schema=chat] (every node on one database)"),
    Setting("SQLITE_SYNCHRONOUS", "FULL", "FULL survives power loss; NORMAL survives process crashes only"),
    Setting("REDIS_URL", "", "redis://host:port/db to share presence and routing between nodes, or "
            "redis+cluster://host:port[,host:port...] for a Redis Cluster (7.0+); empty: in-memory (one node)"),
    Setting("REDIS_PREFIX", "chat:", "key prefix in Redis, to share one Redis between deployments"),
    Setting("TOKEN_SECRET", _DEV_SECRET, "HMAC secret the marketplace signs user tokens with (HS256)"),
    Setting("SERVER_SECRET", "", "bearer secret of the marketplace backend for the server API"),
    Setting("EVIDENCE_KEY", "", "HMAC-SHA256 key that signs evidence packages of conversations (empty: no "
            "export); `python -m chat verify` needs the same key"),
    Setting("AUTH_TIMEOUT", "10", "seconds a connection may take to authenticate"),
    Setting("MAX_FRAME_BYTES", "65536", "largest frame accepted; larger frames get error 1005"),
    Setting("MAX_BAD_FRAMES", "20", "bad frames tolerated per connection before closing with 4003"),
    Setting("OUTBOX_BYTES", "1048576", "unsent bytes a connection may queue before it is closed with 4500"),
    Setting("RATE_PER_SECOND", "5", "messages a user may send per second (sustained)"),
    Setting("RATE_BURST", "10", "messages a user may send in a burst"),
    Setting("RECALL_WINDOW", "120", "seconds during which a sender may recall a message"),
    Setting("PRESENCE_TTL", "30", "seconds a connection's presence lives without a heartbeat"),
    Setting("OVERLOAD_MS", "100", "a send is refused with 5003 (retry_after_ms) when the node would answer it later "
            "than this (its sends in progress, or its event loop's lateness); 0: never refuse"),
    Setting("OVERLOAD_MIN_PENDING", "128", "sends in progress below which none is refused for overload"),
    Setting("PING_INTERVAL", "20", "seconds between the hub's keepalive pings to each connection (one sweep for "
            "all of them); 0: none"),
    Setting("PING_TIMEOUT", "20", "seconds a ping may go unanswered before its connection is closed (1011)"),
    Setting("LOOP_STALL_MS", "50", "an event-loop stall longer than this is logged with the code that held it "
            "(every lag goes to the chat_loop_lag_seconds histogram); 0: off"),
    Setting("SYNC_LIMIT", "500", "messages pushed per conversation on sync before the client must page"),
    Setting("PAYMENTS", "on", "on: money in the chat (escrow, transfers) and the server API; off: chat only"),
    Setting("PAYMENTS_DATABASE_URL", "sqlite:///data/payments.db",
            "the ledger: sqlite:///path or postgresql://user@host/db"),
    Setting("API_HOST", "127.0.0.1", "address of the server API for the marketplace backend"),
    Setting("API_PORT", "8766", "port of the server API (JSON over HTTP, Bearer SERVER_SECRET)"),
    Setting("AUTO_CONFIRM_DAYS", "10", "days after shipping until receipt is confirmed automatically"),
    Setting("EXTENSION_DAYS", "5", "days a buyer may add once to the auto-confirm period"),
    Setting("TRANSFER_EXPIRY_HOURS", "24", "hours until an unaccepted transfer goes back to its sender"),
    Setting("OFFER_EXPIRY_HOURS", "72", "hours an unpaid offer waits before it is cancelled"),
    Setting("SHIP_HOURS", "48", "hours a shop has to ship a paid order; later, a buyer's refund is granted at once"),
    Setting("REFUND_ANSWER_HOURS", "48", "hours a shop has to answer a refund request before it is granted"),
    Setting("DISPUTE_WINDOW_HOURS", "24", "least hours a buyer has to dispute a refused refund before release"),
    Setting("ARBITER_DAYS", "7", "days the arbiter promises to decide a dispute in (shown to both sides)"),
    Setting("AFTER_SALE_DAYS", "15", "days after a release the buyer may claim an after-sale refund"),
    Setting("AFTER_SALE_ANSWER_HOURS", "48", "hours a shop has to answer an after-sale claim before it is granted"),
    Setting("AFTER_SALE_DISPUTE_DAYS", "7", "days a buyer may take a refused after-sale claim to the arbiter"),
    Setting("RATING_WINDOW_DAYS", "15", "days after a release each side may rate the other (unrated counts as good)"),
    Setting("PAY_LIMIT", "50000", "most one payment or transfer may move, in major units (0: no limit)"),
    Setting("DAILY_LIMIT", "200000", "most one account may pay and transfer per window, in major units (0: no limit)"),
    Setting("DAILY_WINDOW_HOURS", "24", "length of the rolling window of DAILY_LIMIT"),
    Setting("FEE_BPS", "0", "platform fee on released escrow, in basis points"),
    Setting("PIN_MAX_ATTEMPTS", "5", "wrong payment PINs before payments are locked"),
    Setting("PIN_LOCK_MINUTES", "180", "minutes payments stay locked after too many wrong PINs"),
    Setting("PIN_PEPPER", _DEV_PEPPER, "secret key of payment PIN hashes (HMAC-SHA256), 16+ characters, never "
            "stored with them; the hub refuses the development default with a production TOKEN_SECRET"),
    Setting("PIN_PEPPER_PREVIOUS", "", "the pepper before a rotation: still accepted, its hashes re-keyed on use"),
    Setting("QUICK_PAY_MAX", "1000", "most a buyer may pay without PIN per payment (opt-in), in major units "
            "(0: no payments without PIN)"),
    Setting("QUICK_PAY_DAILY_MAX", "2000", "most a buyer may pay without PIN per DAILY_WINDOW_HOURS, in major units"),
    Setting("TIMER_INTERVAL", "1", "seconds between runs of due timeouts (auto-confirm, transfer expiry)"),
    Setting("TIMERS_IN_HUB", "on", "on: every hub node also runs due timeouts (safe in parallel); "
            "off: only `python -m chat worker` does"),
    Setting("WEBHOOK_URL", "", "where the marketplace receives signed event webhooks (empty: no webhooks)"),
    Setting("WEBHOOK_SECRET", "", "HMAC-SHA256 key that signs webhooks (required with WEBHOOK_URL)"),
    Setting("WEBHOOK_SECRET_PREVIOUS", "", "the old key during a rotation: webhooks are signed with both"),
    Setting("WEBHOOK_TIMEOUT", "10", "seconds the receiver has to answer 2xx before the attempt counts as failed"),
    Setting("WEBHOOK_RETRY_HOURS", "72", "hours a webhook is retried (backoff) before it is kept as failed"),
    Setting("WEBHOOK_RETENTION_DAYS", "30", "days a delivered webhook is kept (failed ones are kept until replayed)"),
    Setting("OFF_PLATFORM_ACTION", "note", "what a text with contact details or off-platform payment gets: off, "
            "note (delivered, flagged, the buyer warned), mask (matches replaced by ***) or block (refused, 4006)"),
    Setting("PRESEND_URL", "", "the marketplace's pre-send check: each text is POSTed there before it is stored "
            "and allowed, masked or blocked (4007); empty: no check"),
    Setting("PRESEND_TIMEOUT_MS", "300", "milliseconds the pre-send check has to answer"),
    Setting("PRESEND_FAILURE", "open", "when the pre-send check times out or fails: open (stored, recorded as "
            "unavailable) or closed (refused with 5002, retry)"),
    Setting("BROADCAST_LIMIT", "1", "broadcasts a shop may send to its followers per BROADCAST_WINDOW_HOURS "
            "(0: no limit); more get 4009 with retry_after_ms"),
    Setting("BROADCAST_WINDOW_HOURS", "24", "length of the rolling window of BROADCAST_LIMIT"),
    Setting("BROADCAST_BATCH", "500", "followers a broadcast is delivered to per batch (the job's cursor is stored "
            "after each)"),
    Setting("BROADCAST_PAUSE_MS", "20", "milliseconds a broadcast waits between batches, so live chat goes first"),
    Setting("BROADCASTS_IN_HUB", "on", "on: every hub node also delivers broadcasts (one node per job, by "
            "lease); off: only `python -m chat worker` does (it needs REDIS_URL to reach live buyers)"),
    Setting("MEDIA_PORT", "0", "port of the picture upload endpoint (POST /media; the websocket port takes no "
            "request bodies); 0: any free port, announced by GET /media on PORT (one machine); set one behind a "
            "proxy or load balancer"),
    Setting("MEDIA_UPLOAD_URL", "", "the upload endpoint as browsers reach it, behind a proxy (empty: "
            "http://<the hub's host>:MEDIA_PORT/media)"),
    Setting("MEDIA_DIR", "", "where pictures are kept with a SQLite store (empty: media/ beside the database "
            "file); with PostgreSQL they are kept in the database"),
    Setting("MEDIA_MAX_BYTES", "10485760", "largest picture upload accepted, in bytes (larger: 1008)"),
    Setting("MEDIA_MAX_PIXELS", "40000000", "most pixels a picture may decode to, over all its frames (more: 1009)"),
    Setting("MEDIA_PER_MINUTE", "20", "picture uploads a user may make per minute on each node (more: 4001)"),
    Setting("MEDIA_URL_TTL", "600", "seconds a signed picture address stays valid (at least; at most twice that)"),
    Setting("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("DEMO", "on", "on: a demo shop, funded demo buyers and demo pages under /demo/ (demo tokens for demo "
            "users only); off: no demo data, only the web client under /web/"),
)


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    node_id: str
    workers: int
    database_url: str
    sqlite_synchronous: str
    redis_url: str
    redis_prefix: str
    token_secret: str
    server_secret: str
    evidence_key: str
    auth_timeout: float
    max_frame_bytes: int
    max_bad_frames: int
    outbox_bytes: int
    rate_per_second: float
    rate_burst: int
    recall_window: float
    presence_ttl: float
    loop_stall_ms: int
    ping_interval: float
    ping_timeout: float
    overload_ms: int
    overload_min_pending: int
    sync_limit: int
    payments: str
    payments_database_url: str
    api_host: str
    api_port: int
    auto_confirm_days: float
    extension_days: float
    transfer_expiry_hours: float
    offer_expiry_hours: float
    ship_hours: float
    refund_answer_hours: float
    dispute_window_hours: float
    arbiter_days: float
    after_sale_days: float
    after_sale_answer_hours: float
    after_sale_dispute_days: float
    rating_window_days: float
    pay_limit: int
    daily_limit: int
    daily_window_hours: float
    fee_bps: int
    pin_max_attempts: int
    pin_lock_minutes: float
    pin_pepper: str
    pin_pepper_previous: str
    quick_pay_max: int
    quick_pay_daily_max: int
    timer_interval: float
    timers_in_hub: str
    webhook_url: str
    webhook_secret: str
    webhook_secret_previous: str
    webhook_timeout: float
    webhook_retry_hours: float
    webhook_retention_days: float
    off_platform_action: str
    presend_url: str
    presend_timeout_ms: int
    presend_failure: str
    broadcast_limit: int
    broadcast_window_hours: float
    broadcast_batch: int
    broadcast_pause_ms: int
    broadcasts_in_hub: str
    media_port: int
    media_upload_url: str
    media_dir: str
    media_max_bytes: int
    media_max_pixels: int
    media_per_minute: float
    media_url_ttl: float
    log_level: str
    demo: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read every setting from ``env`` (default: the process environment)."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for setting in SETTINGS:
            name = setting.env.lower()
            raw = source.get(setting.env, setting.default)
            kind = types[name]
            try:
                if kind == "int":
                    values[name] = int(raw)
                elif kind == "float":
                    values[name] = float(raw)
                else:
                    values[name] = raw
            except ValueError:
                raise SystemExit(f"{setting.env}={raw!r} is not a valid {kind}") from None
        values.update(overrides)
        if values["off_platform_action"] not in ("off", "note", "mask", "block"):
            raise SystemExit(f"OFF_PLATFORM_ACTION={values['off_platform_action']!r}: use off, note, mask or block")
        if values["presend_failure"] not in ("open", "closed"):
            raise SystemExit(f"PRESEND_FAILURE={values['presend_failure']!r}: use open or closed")
        if not values["node_id"]:
            values["node_id"] = f"{os.uname().nodename}:{os.getpid()}"
        return cls(**values)

    @property
    def is_dev_secret(self) -> bool:
        return self.token_secret == _DEV_SECRET

    @property
    def is_dev_pepper(self) -> bool:
        return self.pin_pepper == _DEV_PEPPER

    @property
    def payments_enabled(self) -> bool:
        return self.payments.lower() in ("on", "1", "true", "yes")

    @property
    def broadcasts_enabled_in_hub(self) -> bool:
        return self.broadcasts_in_hub.lower() in ("on", "1", "true", "yes")

    @property
    def demo_enabled(self) -> bool:
        return self.demo.lower() in ("on", "1", "true", "yes")

    def payment_settings(self) -> Any:
        """The ledger's settings from ours (periods converted to milliseconds)."""
        from payments import PaymentSettings, SpendLimits
        from payments.money import CURRENCIES

        day, hour, minute = 86_400_000, 3_600_000, 60_000
        limits = {}
        if self.pay_limit > 0 and self.daily_limit > 0:
            # The same major-unit limits in every currency (minor units differ per currency).
            limits = {code: SpendLimits(per_transaction=self.pay_limit * 10**exp, daily=self.daily_limit * 10**exp)
                      for code, exp in CURRENCIES.items()}
        elif self.pay_limit > 0 or self.daily_limit > 0:
            raise SystemExit("PAY_LIMIT and DAILY_LIMIT are both set or both 0 (no limits)")
        quick = {}
        if self.quick_pay_max > 0:
            if self.quick_pay_daily_max < self.quick_pay_max:
                raise SystemExit("QUICK_PAY_DAILY_MAX must be at least QUICK_PAY_MAX")
            quick = {code: SpendLimits(per_transaction=self.quick_pay_max * 10**exp,
                                       daily=self.quick_pay_daily_max * 10**exp)
                     for code, exp in CURRENCIES.items()}
        if len(self.pin_pepper) < 16 or 0 < len(self.pin_pepper_previous) < 16:
            raise SystemExit("PIN_PEPPER (and PIN_PEPPER_PREVIOUS, if set) must be at least 16 characters")
        return PaymentSettings(
            auto_confirm_period_ms=int(self.auto_confirm_days * day),
            extension_period_ms=int(self.extension_days * day),
            transfer_expiry_ms=int(self.transfer_expiry_hours * hour),
            offer_expiry_ms=int(self.offer_expiry_hours * hour),
            ship_period_ms=int(self.ship_hours * hour),
            refund_answer_period_ms=int(self.refund_answer_hours * hour),
            resume_min_period_ms=int(self.dispute_window_hours * hour),
            arbiter_period_ms=int(self.arbiter_days * day),
            after_sale_period_ms=int(self.after_sale_days * day),
            after_sale_answer_period_ms=int(self.after_sale_answer_hours * hour),
            after_sale_dispute_period_ms=int(self.after_sale_dispute_days * day),
            rating_window_ms=int(self.rating_window_days * day),
            limits=limits,
            daily_window_ms=int(self.daily_window_hours * hour),
            fee_bps=self.fee_bps,
            pin_max_attempts=self.pin_max_attempts,
            pin_lock_ms=int(self.pin_lock_minutes * minute),
            pin_pepper=self.pin_pepper,
            pin_pepper_previous=self.pin_pepper_previous or None,
            quick_pay_caps=quick,
        )


def webhook_settings(config: Config) -> Any:
    """The webhook sender's settings, or None when no ``WEBHOOK_URL`` is set."""
    if not config.webhook_url:
        return None
    if not config.webhook_secret:
        raise SystemExit("WEBHOOK_URL is set but WEBHOOK_SECRET is empty: webhooks must be signed")
    from .webhooks import WebhookSettings

    return WebhookSettings(
        url=config.webhook_url,
        secrets=tuple(s for s in (config.webhook_secret, config.webhook_secret_previous) if s),
        timeout=config.webhook_timeout,
        retry_for_ms=int(config.webhook_retry_hours * 3_600_000),
        retention_ms=int(config.webhook_retention_days * 86_400_000),
    )


def help_text() -> str:
    width = max(len(s.env) for s in SETTINGS)
    lines = ["Settings (environment variables):", ""]
    for s in SETTINGS:
        lines.append(f"  {s.env.ljust(width)}  {s.help} (default: {s.default or 'empty'})")
    return "\n".join(lines)
