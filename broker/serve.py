"""Worker processes for `consentry serve --workers N`: each listens on a socket of its own.

uvicorn's own `--workers` gives every worker the one listening socket, and whichever worker is awake
when connections arrive accepts all it finds. Clients that keep their connections open (brands' SDKs,
a load balancer's pool) so stay where they landed: measured on the development machine, 32 keep-alive
connections to two workers split 30 / 2, 29 / 3, 26 / 6 from one run to the next, and a second
worker added 30 % instead of doubling what the machine could serve.

Here each worker binds its own socket to the address with SO_REUSEPORT, and Linux hashes each new
connection to one of the listening sockets: the connections spread evenly (32 split about 16 / 16;
`tests/resilience/test_workers.py` counts them). The supervisor first binds a socket of its own
with the same option, without listening on it: that claims the address (a port in use fails at once,
and port 0 is resolved to one port for every worker) but takes no connection, since only listening
sockets do.

The supervisor forwards SIGTERM and SIGINT to the workers, which stop as uvicorn does: stop
accepting, let the requests in flight finish (at most the graceful timeout), drain the audit
committer, exit. A worker that dies unexpectedly is replaced; one that dies before it ever served
stops the server (a worker that cannot start would otherwise be replaced forever). A worker whose
supervisor died (SIGKILL) stops by itself, gracefully, within a second.

Where SO_REUSEPORT does not spread connections (it exists on macOS and the BSDs with other
semantics), `serve` falls back to uvicorn's supervisor.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent
from types import FrameType
from typing import Any

import uvicorn

__all__ = ["Supervisor", "reuseport_socket", "serve", "spreads_connections"]

log = logging.getLogger("consentry.serve")

_POLL_SECONDS = 0.2
_KILL_MARGIN_SECONDS = 10.0  # past the graceful timeout, a worker still running is killed


def spreads_connections() -> bool:
    """Whether the kernel spreads a port's connections over the sockets bound with SO_REUSEPORT
    (Linux since 3.9); elsewhere the option exists with other semantics, or not at all."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEADDR and SO_REUSEPORT, not listening yet."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def serve(host: str, port: int, workers: int, options: dict[str, Any]) -> int:
    """Serve `options` (uvicorn.Config's arguments but host and port) with `workers` processes; the
    exit status."""
    if workers == 1:
        uvicorn.run(host=host, port=port, **options)
        return 0
    if not spreads_connections():
        uvicorn.run(host=host, port=port, workers=workers, **options)
        return 0
    try:
        claim = reuseport_socket(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return 1
    try:
        return Supervisor(host, claim.getsockname()[1], workers, options).run()
    finally:
        claim.close()


@dataclass
class Supervisor:
    """Start `workers` processes serving on (host, port), replace those that die, stop them on a signal."""

    host: str
    port: int
    workers: int
    options: dict[str, Any]
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    # slot -> (its process, set once it serves)
    _processes: dict[int, tuple[SpawnProcess, ProcessEvent]] = field(default_factory=dict, init=False)

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (then stop the workers gracefully) or a worker's early death."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        status = 0
        try:
            for slot in range(self.workers):
                self._start(slot)
            log.info("serving on http://%s:%d with %d workers", self.host, self.port, self.workers)
            while not self._stop.wait(_POLL_SECONDS):
                status = self._replace_dead()
                if status:
                    break
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _start(self, slot: int) -> None:
        context = multiprocessing.get_context("spawn")
        serving = context.Event()
        process = context.Process(
            target=_worker,
            args=(self.host, self.port, self.options, serving),
            name=f"consentry-worker-{slot}",
        )
        process.start()
        self._processes[slot] = (process, serving)

    def _replace_dead(self) -> int:
        for slot, (process, serving) in list(self._processes.items()):
            if process.is_alive():
                continue
            code = process.exitcode
            if not serving.is_set():
                log.error("worker %s exited with status %s before it served: stopping", process.pid, code)
                return 1
            log.warning("worker %s exited with status %s: starting another", process.pid, code)
            self._start(slot)
        return 0

    def _stop_all(self) -> None:
        processes = [p for p, _ in self._processes.values()]
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + float(self.options.get("timeout_graceful_shutdown") or 0)
        deadline += _KILL_MARGIN_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %s did not stop in time: killed", process.pid)
                process.kill()
                process.join()


class _Server(uvicorn.Server):
    """uvicorn's server, which tells the supervisor when it serves (uvicorn's own supervisor asks)."""

    def __init__(self, config: uvicorn.Config, serving: ProcessEvent) -> None:
        super().__init__(config)
        self.serving = serving

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.serving.set()


def _worker(host: str, port: int, options: dict[str, Any], serving: ProcessEvent) -> None:  # pragma: no cover
    """One worker (a child process): its own socket on the shared address and a uvicorn server on it;
    `serving` is set once it serves. It stops as on SIGTERM if the supervisor dies (killed, say): an
    orphan would go on holding the port."""
    server = _Server(uvicorn.Config(host=host, port=port, **options), serving)
    supervisor = os.getppid()

    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != supervisor:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
    server.run(sockets=[reuseport_socket(host, port)])
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE
