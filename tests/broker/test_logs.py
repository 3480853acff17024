"""The server's batched log: lines are written together, never lost, and never held long."""

from __future__ import annotations

import io
import logging
import time

import pytest

from broker.logs import BatchedStreamHandler, configure


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
