"""The server's log: one line per record on stderr, written in batches.

Every request writes an access-log line (`broker.web.middleware`). Written one at a time, each line is
a write system call on the request's path, which costs a busy worker about a fifth of its
throughput on small requests. `BatchedStreamHandler` formats each record when it is logged, keeps the
lines in memory and writes them together: when `capacity` lines are waiting, at once for a warning
or worse, and otherwise at most `interval` seconds late (a daemon thread flushes what waits, so an
idle server's last lines still appear). The app's shutdown calls `flush`, as uvicorn ends the
process by re-raising SIGTERM, past the interpreter's own flush at exit.

`configure` installs it on the root logger of the process: `consentry serve`'s workers each call it
(through `broker.asgi.create`), as a spawned worker does not inherit its parent's logging setup.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
CAPACITY = 256  # lines held before they are written
INTERVAL = 0.5  # seconds a line may wait


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A `StreamHandler` that writes lines in batches (see the module docstring)."""

    def __init__(
        self, stream: TextIO | None = None, *, capacity: int = CAPACITY, interval: float = INTERVAL
    ) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.capacity = capacity
        self.interval = interval
        self._lines: list[str] = []
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="consentry-log", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted line; write the batch when it is full or the record is a warning or worse.
        (`Handler.handle` holds the handler's lock around this.)"""
        try:
            self._lines.append(self.format(record))
            if len(self._lines) >= self.capacity or record.levelno >= logging.WARNING:
                self._write()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write the waiting lines and flush the stream."""
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def close(self) -> None:
        """Stop the flushing thread and write what is left."""
        self._stopping.set()
        self.flush()
        super().close()

    def _write(self) -> None:
        if self._lines:
            self.stream.write(self.terminator.join(self._lines) + self.terminator)
            self._lines.clear()
        self.stream.flush()

    def _flush_periodically(self) -> None:
        while not self._stopping.wait(self.interval):
            if self._lines:
                try:
                    self.flush()
                except Exception:  # a closed or broken stream: nothing left to write to
                    return


def flush() -> None:
    """Write every waiting line now (an app's shutdown does: uvicorn ends its process by re-raising the
    SIGTERM it caught, so the interpreter's own flush at exit never runs)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def configure(level: int = logging.INFO) -> None:
    """Send the process's log records at `level` and above to stderr through one batched handler,
    unless the root logger already has a handler: an operator's own logging setup (a server run by
    hand with a log config) is kept, and calling this twice installs one handler.

    Records skip what `FORMAT` does not print (the logging cookbook's "Optimization"): the caller's
    file and line (a walk up the stack per record), thread, process and process names."""
    root = logging.getLogger()
    if root.handlers:
        return
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = BatchedStreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
