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
import time
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
CAPACITY = 256  # lines held before they are written
INTERVAL = 0.5  # seconds a line may wait


class _Formatter(logging.Formatter):
    """`FORMAT`, its timestamp's date and time formatted once a second rather than for every record
    (`time.localtime` and `strftime` cost a busy server more than the rest of an access-log line)."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return self._time(record.created)

    def line(self, created: float, level: str, name: str, message: str) -> str:
        """What `format` makes of a record of these, without making one (`info`)."""
        return f"{self._time(created)} {level} {name} {message}"

    def _time(self, created: float) -> str:
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime(self.default_time_format, self.converter(second)))
            self._second = cached
        # LogRecord's own msecs, as `Formatter.formatTime` prints them (its default_msec_format)
        return f"{cached[1]},{int((created - second) * 1000):03d}"


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

    def add_line(self, level: int, name: str, message: str) -> None:
        """What `emit` does with a record of these, without one (`info`): its formatter must be the one
        `configure` installs."""
        assert isinstance(self.formatter, _Formatter)
        line = self.formatter.line(time.time(), logging.getLevelName(level), name, message)
        with self.lock:  # type: ignore[union-attr]
            try:
                self._lines.append(line)
                if len(self._lines) >= self.capacity or level >= logging.WARNING:
                    self._write()
            except Exception:
                self.handleError(logging.makeLogRecord({"name": name, "levelno": level, "msg": message}))

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


def info(logger: logging.Logger, message: str) -> None:
    """`logger.info(message)`, for a line written often (the access log's, one per request): when the
    record would reach only the handler `configure` installs, as it does unless an operator's logging
    setup or a test's capture is in place, the line goes to it directly, without a `LogRecord` and the
    walk through loggers and handlers (which took about 18 µs of a busy server's time per request, 5 %
    of a token request). Otherwise it is logged as usual."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_handler(logger)
    if handler is None:
        logger.info(message)
    else:
        handler.add_line(logging.INFO, logger.name, message)


def _sole_handler(logger: logging.Logger) -> BatchedStreamHandler | None:
    """The handler `configure` installed, if it is the only thing a record of `logger` meets (no filter,
    no other handler, the format it set); None otherwise."""
    root = logging.getLogger()
    current: logging.Logger | None = logger
    while current is not root:
        assert current is not None  # every logger's chain ends at the root
        if current.handlers or current.filters or not current.propagate:
            return None
        current = current.parent
    handlers = root.handlers
    if len(handlers) != 1 or root.filters:
        return None
    handler = handlers[0]
    if (
        type(handler) is not BatchedStreamHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not _Formatter
    ):
        return None
    return handler


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
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(level)
