"""The server's batched log: lines are written together, never lost, and never held long."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterator

import pytest

from broker.logs import FORMAT, BatchedStreamHandler, configure, info


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"consentry.test.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def test_lines_wait_for_a_full_batch_then_are_written_together_in_order() -> None:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, capacity=3, interval=60)
    try:
        log = _logger(handler)
        log.info("one")
        log.info("two")
        assert stream.getvalue() == ""  # held: no write per line
        log.info("three")
        assert stream.getvalue() == "one\ntwo\nthree\n"
    finally:
        handler.close()


def test_a_warning_is_written_at_once_with_the_lines_before_it() -> None:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, capacity=100, interval=60)
    try:
        log = _logger(handler)
        log.info("request")
        log.warning("trouble")
        assert stream.getvalue() == "request\ntrouble\n"
    finally:
        handler.close()


def test_an_idle_server_s_last_lines_appear_within_the_interval() -> None:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, capacity=100, interval=0.05)
    try:
        _logger(handler).info("last request")
        deadline = time.monotonic() + 5
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.getvalue() == "last request\n"
    finally:
        handler.close()


def test_closing_writes_what_is_left() -> None:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, capacity=100, interval=60)
    _logger(handler).info("at shutdown")
    handler.close()
    assert stream.getvalue() == "at shutdown\n"


def test_configure_keeps_an_operator_s_own_setup_and_installs_one_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    for setting in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):  # process-wide
        monkeypatch.setattr(logging, setting, getattr(logging, setting))
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    try:
        configure()
        configure()
        assert [type(h) for h in root.handlers] == [BatchedStreamHandler]
    finally:
        for handler in root.handlers:
            handler.close()
    own = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(root, "handlers", [own])
    configure()
    assert root.handlers == [own]


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BatchedStreamHandler, io.StringIO]]:
    """The process's logging as `configure` sets it up, its lines going to a string."""
    root = logging.getLogger()
    for setting in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, setting, getattr(logging, setting))
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    configure()
    (handler,) = root.handlers
    assert isinstance(handler, BatchedStreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield handler, stream
    finally:
        handler.close()


_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
_LINE = re.compile(_STAMP + r" INFO consentry\.test\.often GET /x 200 1\.5ms rid=r1")


def test_a_frequent_line_goes_straight_to_the_configured_handler_as_its_record_would_read(
    configured: tuple[BatchedStreamHandler, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, stream = configured

    def no_record(*_: object, **__: object) -> None:
        raise AssertionError("a LogRecord was made")

    with monkeypatch.context() as patched:
        patched.setattr(logging.getLogger(), "handlers", [handler])  # without pytest's own capture
        patched.setattr(logging.Logger, "makeRecord", no_record)
        info(logging.getLogger("consentry.test.often"), "GET /x 200 1.5ms rid=r1")
    handler.flush()
    assert _LINE.fullmatch(stream.getvalue().rstrip("\n"))
    # Byte for byte what logging's own formatter makes of a record of `FORMAT`, and what ours does (its
    # date and time formatted once a second), across seconds and at their edges.
    formatter, standard = handler.formatter, logging.Formatter(FORMAT)
    assert formatter is not None and hasattr(formatter, "line")
    for created in (1_700_000_000.0, 1_700_000_000.9999, 1_700_000_001.0005, time.time(), 1_700_000_000.5):
        record = logging.makeLogRecord({"name": "n", "levelname": "INFO", "msg": "m"})
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        expected = standard.format(record)
        assert formatter.line(created, "INFO", "n", "m") == expected == formatter.format(record)


def test_a_frequent_line_is_an_ordinary_record_where_logging_is_set_up_otherwise(
    configured: tuple[BatchedStreamHandler, io.StringIO],
) -> None:
    handler, stream = configured
    logger = logging.getLogger("consentry.test.often")
    captured: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = captured.append  # type: ignore[method-assign,assignment]
    logger.addHandler(capture)
    try:
        info(logger, "GET /x 200 1.5ms rid=r1")
    finally:
        logger.removeHandler(capture)
    assert [r.getMessage() for r in captured] == ["GET /x 200 1.5ms rid=r1"]
    handler.flush()
    assert _LINE.fullmatch(stream.getvalue().rstrip("\n"))  # and it still propagates to the root's

    logger.setLevel(logging.WARNING)  # a level above INFO: nothing, either way
    try:
        info(logger, "GET /y 200 1.5ms rid=r2")
    finally:
        logger.setLevel(logging.NOTSET)
    handler.flush()
    assert "/y" not in stream.getvalue()
