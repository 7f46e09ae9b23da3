"""The `boxoffice` command: `serve` runs the whole system, `bench` the load-test harness.

`serve` answers on both ports at once (503 until the system is ready), and on SIGINT or
SIGTERM stops the servers, then everything it started, in reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from gateway.config import Settings
from gateway.deadlines import http_protocol, websocket_protocol
from gateway.logs import configure_logging

log = logging.getLogger("boxoffice")

Scope = dict[str, Any]


class StartingApp:
    """Answers 503 in the error shape until the real application is handed over, and again
    once the process is draining (requests already running finish; new ones are told to retry).
    """

    def __init__(self) -> None:
        self.app: Any = None
        self.draining = False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.app is not None and not (self.draining and scope["type"] == "http"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] == "http":
            body = (
                b'{"statusCode":503,"message":"Service Unavailable",'
                b'"error":"The system is shutting down"}'
                if self.draining
                else b'{"statusCode":503,"message":"Service Unavailable",'
                b'"error":"The system is starting"}'
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve`, which runs two of them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(app: Any, settings: Settings, port: int) -> _Server:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=http_protocol(settings.http_read_timeout_seconds, settings.write_stall_seconds),
        ws=websocket_protocol(settings.write_stall_seconds),
        timeout_graceful_shutdown=5,
    )
    return _Server(config)


async def serve(settings: Settings) -> None:
    from gateway.app import close_app, create_app
    from gateway.system import System

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def handle_signals() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

    handle_signals()

    front = StartingApp()
    ports = dict.fromkeys([settings.api_gateway_port, settings.realtime_service_port])
    servers = [_uvicorn(front, settings, port) for port in ports]
    serving = [asyncio.create_task(server.serve()) for server in servers]
    system = System(settings)
    try:
        starting = asyncio.create_task(system.start())
        done, _ = await asyncio.wait(
            {starting, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if starting in done:
            handle_signals()  # ray.init installs a SIGTERM handler of its own: ours again
            front.app = create_app(starting.result())
            freeze_heap()
            host = settings.host
            print(f"Boxoffice API      http://{host}:{settings.api_gateway_port}/api", flush=True)
            print(f"Boxoffice realtime http://{host}:{settings.realtime_service_port}/realtime")
            print(f"Browser page       http://{host}:{settings.api_gateway_port}/", flush=True)
            await stop.wait()
        else:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    finally:
        # Drain: new requests on open connections get 503 + Retry-After, the listening sockets
        # close, and requests already running finish (uvicorn waits for them, up to its bound).
        front.draining = True
        started = loop.time()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*serving, return_exceptions=True)
        log.info("drained in %.2f s", loop.time() - started)
        if front.app is not None:
            await close_app(front.app)
        await system.stop()
        log.info("stopped in %.2f s", loop.time() - started)
        print("Boxoffice stopped", flush=True)


def freeze_heap() -> None:
    """Keep the collector's pauses short once the system runs.

    Every full pass walked what start-up built (Ray, FastAPI, pydantic: the imports alone are
    165,000 tracked objects) and took 60 to 200 ms with the event loop stopped: the whole tail
    of a 1,000-socket broadcast. Frozen, those objects are never walked again. A larger first
    generation lets the short-lived work of a request or a broadcast die before it is
    promoted, so full passes become rare (one in a fan-out run instead of ten).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        # The harness has its own options; hand them over untouched, in order.
        try:
            from benchmarks.cli import main as bench_main
        except ImportError as missing:
            print(
                f"boxoffice bench needs the bench extra ({missing.name} is missing): "
                "pip install 'boxoffice[bench]' (or `make bench`, which installs it)",
                file=sys.stderr,
            )
            return 2
        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="boxoffice")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the whole system (configured from the environment)")
    commands.add_parser("bench", help="run the load-test harness (see `boxoffice bench -h`)")
    parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(settings))
    except KeyboardInterrupt:
        return 130
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn[standard] brings it), as uvicorn itself would."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


if __name__ == "__main__":
    sys.exit(main())
