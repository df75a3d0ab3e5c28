"""The baseline: a bare websockets relay that forwards each frame to its peer and nothing else.

Two connections on the same path are peers. Every frame one sends is written
to the other with ``broadcast()`` (no await per frame, so writes coalesce in
the transport's buffer); there is no parsing, storage, authentication or
acknowledgement. It runs on uvloop with the same websockets settings as the hub.

    python bench/relay_server.py --port 8800
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed


async def main(host: str, port: int) -> None:
    waiting: dict[str, ServerConnection] = {}
    peers: dict[ServerConnection, ServerConnection] = {}

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        other = waiting.pop(path, None)
        if other is None:
            waiting[path] = ws
        else:
            peers[ws], peers[other] = other, ws
        try:
            async for data in ws:
                peer = peers.get(ws)
                if peer is not None:
                    broadcast((peer,), data)
        except ConnectionClosed:
            pass
        finally:
            if waiting.get(path) is ws:
                del waiting[path]
            peer = peers.pop(ws, None)
            if peer is not None:
                peers.pop(peer, None)

    async with serve(handler, host, port, max_queue=64, compression=None, ping_interval=20,
                     ping_timeout=20, close_timeout=5):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(20_000, hard), hard))
    import uvloop

    uvloop.run(main(args.host, args.port))
