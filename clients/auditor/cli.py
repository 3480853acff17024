"""The `consentry-audit` command: check a Consentry audit log with code the server did not write.

    consentry-audit checkpoint verify FILE --key VERIFIER_KEY [--json]

Each family of checks is a sub-command group (`checkpoint`, later `receipt` …) on the root `app`.
Exit codes: 0 when everything verified, 1 when a verification failed (the reason on stderr),
2 for usage errors (a missing file, a malformed key, an unknown option).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clients.auditor.note import (
    MAX_NOTE_BYTES,
    Checkpoint,
    NoteError,
    Verifier,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
)

__all__ = ["EXIT_FAILED", "app", "main"]

EXIT_FAILED = 1  # a check ran and failed; usage errors exit with click's 2

app = typer.Typer(
    name="consentry-audit",
    help="Verify a Consentry audit log offline: signed checkpoints and Merkle proofs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens once commands talk to a server
)
checkpoint_app = typer.Typer(help="Signed checkpoints (c2sp.org/tlog-checkpoint).", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")


def _verifier_key(value: str) -> Verifier:
    try:
        return parse_verifier_key(value)
    except NoteError as exc:
        raise typer.BadParameter(str(exc)) from None


NoteFile = Annotated[
    str, typer.Argument(metavar="FILE", help="signed checkpoint note; '-' reads standard input")
]
VerifierKey = Annotated[
    Verifier,
    typer.Option(
        "--key",
        parser=_verifier_key,
        metavar="VERIFIER_KEY",
        help="the log's verifier key, <name>+<hex key id>+<base64 key> (GET /v1/audit/key)",
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


@checkpoint_app.command("verify")
def checkpoint_verify(file: NoteFile, key: VerifierKey, as_json: JsonOutput = False) -> None:
    """Check a checkpoint's signature against the log's key, then print its origin, size and root."""
    note = _read_note(file)
    try:
        checkpoint = parse_checkpoint(open_note(note, [key]))
    except NoteError as exc:
        _fail(f"checkpoint verification failed: {exc}")
    if as_json:
        typer.echo(json.dumps(_checkpoint_json(checkpoint, key), indent=2))
    else:
        _print_checkpoint(checkpoint, key)


def _read_note(file: str) -> str:
    """The note in `file` ('-' for standard input), refusing more than `MAX_NOTE_BYTES`."""
    if file == "-":
        data = sys.stdin.buffer.read(MAX_NOTE_BYTES + 1)
    else:
        try:
            with Path(file).open("rb") as stream:
                data = stream.read(MAX_NOTE_BYTES + 1)
        except OSError as exc:  # a path that names no readable file is a usage error
            raise typer.BadParameter(f"cannot read {file!r}: {exc.strerror}", param_hint="FILE") from None
    if len(data) > MAX_NOTE_BYTES:
        _fail(f"checkpoint verification failed: the note is over the {MAX_NOTE_BYTES}-byte limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        _fail("checkpoint verification failed: the note is not UTF-8 text")


def _checkpoint_json(checkpoint: Checkpoint, key: Verifier) -> dict[str, object]:
    return {
        "verified": True,
        "key": f"{key.name}+{key.key_id.hex()}",
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root_hash": base64.b64encode(checkpoint.root_hash).decode(),
        "extensions": list(checkpoint.extensions),
    }


def _print_checkpoint(checkpoint: Checkpoint, key: Verifier) -> None:
    console = Console()
    console.print(f"[green]✓[/green] checkpoint signed by {escape(key.name)}+{key.key_id.hex()}")
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_row("origin", escape(checkpoint.origin))
    table.add_row("tree size", str(checkpoint.size))
    table.add_row("root hash", base64.b64encode(checkpoint.root_hash).decode())
    for extension in checkpoint.extensions:
        table.add_row("extension", escape(extension))
    console.print(table)


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Entry point of the `consentry-audit` console script."""
    app()
