"""What the `consentry-audit` commands share: exit codes, the verifier-key option, and printing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clients.auditor.tlog import NoteError, Verifier, parse_verifier_key

__all__ = [
    "EXIT_FAILED",
    "EXIT_UNABLE",
    "KEY_HELP",
    "JsonOutput",
    "ServerURL",
    "Token",
    "VerifierKey",
    "b64",
    "error",
    "exit_if_failed",
    "key_value_table",
    "server_url",
    "stderr",
    "verifier_key",
    "warn",
]

EXIT_FAILED = 1  # a check ran and failed
EXIT_UNABLE = 2  # usage errors (click's 2 too), an unreachable server, an HTTP error


def verifier_key(value: str) -> Verifier:
    """A verifier key string, or `@PATH` of a file holding one."""
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"cannot read a key from {value[1:]!r}: {exc}") from None
    try:
        return parse_verifier_key(value)
    except NoteError as exc:
        raise typer.BadParameter(str(exc)) from None


KEY_HELP = "the log's verifier key, <name>+<hex key id>+<base64 key> (GET /v1/audit/key), or @FILE"
VerifierKey = Annotated[
    Verifier, typer.Option("--key", parser=verifier_key, metavar="VERIFIER_KEY", help=KEY_HELP)
]
JsonOutput = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def server_url(value: str) -> str:
    """An http(s) URL with a host (the `--url` options)."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise typer.BadParameter(f"{value!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise typer.BadParameter(
            f"{value!r} is not an http(s) URL with a host, like https://consentry.example"
        )
    return value


ServerURL = Annotated[
    str, typer.Option("--url", parser=server_url, help="the Consentry server's base URL", show_default=False)
]
Token = Annotated[str, typer.Option("--token", envvar="CONSENTRY_AUDIT_TOKEN", help="an auditor token")]


def key_value_table() -> Table:
    """A borderless two-column table for label and value."""
    return Table(show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 0))


def b64(digest: bytes) -> str:
    """Standard base64, as the log's API writes hashes."""
    return base64.b64encode(digest).decode()


def stderr() -> Console:
    """A console on standard error."""
    return Console(stderr=True)


def warn(message: str) -> None:
    """Print a warning on standard error."""
    stderr().print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


def error(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    """Print an error on standard error and exit with `code`."""
    stderr().print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def exit_if_failed(success: bool) -> None:
    """Exit 1 unless `success`."""
    if not success:
        raise typer.Exit(EXIT_FAILED)
