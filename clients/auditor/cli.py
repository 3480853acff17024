"""The `consentry-audit` command: check a Consentry audit log with code the server did not write.

    consentry-audit verify --url URL --token TOKEN [--key KEY] [--state FILE] [--fetch-ahead N] [--json]
    consentry-audit check-reads --url URL --token TOKEN [--key KEY] [--state FILE] [--fetch-ahead N] [--json]
    consentry-audit checkpoint verify FILE --key KEY [--json]
    consentry-audit receipt verify FILE --key KEY (--jwks FILE_OR_URL | --thumbprint T)... [--json]
    consentry-audit disputes list|show|decide --url URL --token TOKEN ...   (escalated disputes)

`verify` downloads and checks the whole log (`verify.verify_log`), as C2SP tlog-tiles entry bundles
and hash tiles, or as the JSON pages from a server without tiles; `check-reads` does the same, then
replays it and lists the reads no live grant covered (`replay`). KEY is a verifier key string, or
`@PATH` naming a file that holds one. The token may come from `$CONSENTRY_AUDIT_TOKEN` instead.
Without `--key`, the key remembered in the `--state` file is used; with neither, the server's own key
is trusted on first use, and the output says so.

Exit codes: 0 when everything verified, 1 when a verification failed (the reason on stderr), 2 for
usage errors (a missing file, a malformed key, an unknown option), an unreachable server or an HTTP
error such as a refused token.

Requests go through the httpx transport passed as click's context object, when there is one
(`app(obj=transport)`, `CliRunner().invoke(app, args, obj=transport)`): how tests stand in a server.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from clients.auditor.api import AuditorAPIError, AuditorClient
from clients.auditor.console import (
    EXIT_FAILED,
    EXIT_UNABLE,
    KEY_HELP,
    JsonOutput,
    ServerURL,
    Token,
    VerifierKey,
    b64,
    error,
    exit_if_failed,
    key_value_table,
    stderr,
    verifier_key,
    warn,
)
from clients.auditor.disputes_cli import disputes_app
from clients.auditor.receipt_cli import receipt_app
from clients.auditor.replay import Replay, ReplayReport
from clients.auditor.tlog import (
    MAX_NOTE_BYTES,
    Checkpoint,
    NoteError,
    Verifier,
    open_note,
    parse_checkpoint,
)
from clients.auditor.verify import (
    FETCH_AHEAD,
    EntriesSink,
    KeySource,
    ProgressSink,
    StateError,
    VerifyReport,
    load_state,
    save_state,
    verify_log,
)
from clients.auditor.versions import API_VERSIONS, DISTRIBUTION, RELEASE

__all__ = ["EXIT_FAILED", "EXIT_UNABLE", "app", "main"]

app = typer.Typer(
    name="consentry-audit",
    help="Verify a Consentry audit log offline: signed checkpoints and Merkle proofs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold the auditor token
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"{DISTRIBUTION} {RELEASE} (speaks Consentry API {', '.join(API_VERSIONS)})")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version, then exit."
        ),
    ] = False,
) -> None:
    pass


checkpoint_app = typer.Typer(help="Signed checkpoints (c2sp.org/tlog-checkpoint).", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")
app.add_typer(receipt_app, name="receipt")
app.add_typer(disputes_app, name="disputes")


NoteFile = Annotated[
    str, typer.Argument(metavar="FILE", help="signed checkpoint note; '-' reads standard input")
]
PinnedKey = Annotated[
    Verifier | None,
    typer.Option("--key", parser=verifier_key, metavar="VERIFIER_KEY", help=f"pin {KEY_HELP}"),
]
StateFile = Annotated[
    Path | None,
    typer.Option(
        "--state",
        dir_okay=False,
        help="JSON file remembering the trusted key and the last verified checkpoint; "
        "created if missing, updated only after a successful verification",
    ),
]

FetchAhead = Annotated[
    int,
    typer.Option(
        "--fetch-ahead",
        min=1,
        max=64,
        help="entry bundles requested at once: more hides a distant server's latency, 1 asks one by one",
    ),
]


@app.command("verify")
def verify(
    ctx: typer.Context,
    url: ServerURL,
    token: Token,
    key: PinnedKey = None,
    state: StateFile = None,
    fetch_ahead: FetchAhead = FETCH_AHEAD,
    as_json: JsonOutput = False,
) -> None:
    """Download the whole log, recompute its Merkle root, and check it against the signed checkpoint
    and against the checkpoint the state file remembers."""
    report = _run_verification(ctx, url, token, key, state, as_json=as_json, fetch_ahead=fetch_ahead)
    if as_json:
        typer.echo(json.dumps(_report_json(report, state), indent=2))
    elif report.verified:
        _print_report(report, state)
    exit_if_failed(report.verified)


@app.command("check-reads")
def check_reads(
    ctx: typer.Context,
    url: ServerURL,
    token: Token,
    key: PinnedKey = None,
    state: StateFile = None,
    fetch_ahead: FetchAhead = FETCH_AHEAD,
    as_json: JsonOutput = False,
) -> None:
    """Verify the log as `verify` does, then replay it and list every profile read that no live grant
    covered: unknown or other brand's grant, revoked, expired or suspended, fields or purpose not granted."""
    replay = Replay()

    def on_entries(start: int, entries: Sequence[bytes]) -> None:
        for index, entry in enumerate(entries, start):
            replay.apply_bytes(index, entry)

    report = _run_verification(
        ctx, url, token, key, state, as_json=as_json, on_entries=on_entries, fetch_ahead=fetch_ahead
    )
    reads = replay.report()
    if as_json:
        document = _report_json(report, state) | _reads_json(reads)
        typer.echo(json.dumps(document, indent=2))
    else:
        if report.verified:
            _print_report(report, state)
        _print_reads(reads, verified=report.verified)
    exit_if_failed(report.verified and not reads.violations)


def _run_verification(
    ctx: typer.Context,
    url: str,
    token: str,
    key: Verifier | None,
    state_file: Path | None,
    *,
    as_json: bool,
    on_entries: EntriesSink | None = None,
    fetch_ahead: int = FETCH_AHEAD,
) -> VerifyReport:
    """`verify_log` with the state file loaded and saved, progress on stderr and problems reported."""
    try:
        state = load_state(state_file) if state_file is not None else None
    except StateError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--state'") from None
    transport = ctx.obj if isinstance(ctx.obj, httpx.BaseTransport) else None
    try:
        with AuditorClient(url, token, transport=transport) as client, _progress(as_json) as on_progress:
            report = verify_log(
                client,
                key=key,
                state=state,
                on_entries=on_entries,
                on_progress=on_progress,
                fetch_ahead=fetch_ahead,
            )
    except AuditorAPIError as exc:
        error(str(exc), code=EXIT_UNABLE)
    if report.key_source is KeySource.FIRST_USE and report.key is not None and not as_json:
        warn(
            f"no --key and no key in a state file: trusting the server's own key "
            f"{report.key.verifier_key()} on first use. Check it out of band, then pin it with --key "
            "or keep a --state file."
        )
    for problem in report.problems:
        stderr().print(f"[red]error:[/red] audit log verification failed: {escape(problem)}", soft_wrap=True)
    if report.verified and state_file is not None:
        try:
            save_state(state_file, report.new_state())
        except OSError as exc:
            message = f"the log verified, but the state file {str(state_file)!r} could not be written: {exc}"
            error(message, code=EXIT_UNABLE)
    return report


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressSink]:
    """A progress bar on stderr while entries download, shown only on a terminal and without --json."""
    console = stderr()
    columns = (TextColumn("entries"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task("entries", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _report_json(report: VerifyReport, state_file: Path | None) -> dict[str, object]:
    checkpoint, previous = report.checkpoint, report.previous
    return {
        "verified": report.verified,
        "url": report.url,
        "origin": checkpoint.origin if checkpoint else None,
        "key": report.key.verifier_key() if report.key else None,
        "key_source": report.key_source.value if report.key_source else None,
        "tree_size": checkpoint.size if checkpoint else None,
        "root_hash": b64(checkpoint.root_hash) if checkpoint else None,
        "previous_tree_size": previous.size if previous else None,
        "previous_root_hash": b64(previous.root_hash) if previous else None,
        "entries": report.entries,
        "source": report.source,
        "seconds": round(report.seconds, 3),
        "entries_per_second": round(report.entries_per_second),
        "state": str(state_file) if state_file is not None else None,
        "problems": report.problems,
    }


def _reads_json(reads: ReplayReport) -> dict[str, object]:
    return {
        "reads": reads.reads,
        "kinds": reads.kinds,
        "unknown_kinds": reads.unknown,
        "violations": [dataclasses.asdict(violation) for violation in reads.violations],
    }


_KEY_SOURCES = {
    KeySource.PINNED: "pinned with --key",
    KeySource.STATE: "remembered in the state file",
    KeySource.FIRST_USE: "[yellow]trusted on first use[/yellow]",
}


def _print_report(report: VerifyReport, state_file: Path | None) -> None:
    checkpoint, key = report.checkpoint, report.key
    assert checkpoint is not None and key is not None and report.key_source is not None  # verified
    console = Console()
    console.print(f"[green]✓[/green] audit log verified: {checkpoint.size:,} entries")
    table = key_value_table()
    table.add_row("server", escape(report.url))
    table.add_row("origin", escape(checkpoint.origin))
    table.add_row("key", f"{escape(key.name)}+{key.key_id.hex()} ({_KEY_SOURCES[report.key_source]})")
    table.add_row("tree size", str(checkpoint.size))
    table.add_row("root hash", b64(checkpoint.root_hash))
    if report.previous is not None:
        table.add_row("extends", f"the checkpoint of {report.previous.size:,} entries verified before")
    how = "C2SP tlog-tiles" if report.source == "tiles" else "JSON pages (the server serves no tiles)"
    table.add_row("speed", f"{report.entries_per_second:,.0f} entries/s ({how})")
    if state_file is not None:
        table.add_row("state", f"{escape(str(state_file))} (updated)")
    console.print(table)


def _print_reads(reads: ReplayReport, *, verified: bool) -> None:
    console = Console()
    if not verified:
        console.print("[red]✗[/red] the log did not verify: these reads come from entries nobody vouched for")
    unknown = ", ".join(f"{escape(kind)} ({count})" for kind, count in sorted(reads.unknown.items()))
    if unknown:
        console.print(f"skipped entries this auditor does not understand: {unknown}")
    if not reads.violations:
        console.print(f"[green]✓[/green] {reads.reads:,} profile reads, each covered by a live grant")
        return
    console.print(f"[red]✗[/red] {len(reads.violations):,} of {reads.reads:,} profile reads not covered:")
    table = Table(
        Column("index", justify="right", no_wrap=True),
        Column("at", no_wrap=True),
        Column("grant", overflow="fold"),
        Column("brand", overflow="fold"),
        Column("reason", ratio=1),
    )
    for v in reads.violations:
        row = (v.at or "", v.grant or "", v.brand or "", v.reason)
        table.add_row(str(v.index), *map(escape, row))
    console.print(table)


@checkpoint_app.command("verify")
def checkpoint_verify(file: NoteFile, key: VerifierKey, as_json: JsonOutput = False) -> None:
    """Check a checkpoint's signature against the log's key, then print its origin, size and root."""
    note = _read_note(file)
    try:
        checkpoint = parse_checkpoint(open_note(note, [key]))
    except NoteError as exc:
        error(f"checkpoint verification failed: {exc}")
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
        error(f"checkpoint verification failed: the note is over the {MAX_NOTE_BYTES}-byte limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        error("checkpoint verification failed: the note is not UTF-8 text")


def _checkpoint_json(checkpoint: Checkpoint, key: Verifier) -> dict[str, object]:
    return {
        "verified": True,
        "key": f"{key.name}+{key.key_id.hex()}",
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root_hash": b64(checkpoint.root_hash),
        "extensions": list(checkpoint.extensions),
    }


def _print_checkpoint(checkpoint: Checkpoint, key: Verifier) -> None:
    console = Console()
    console.print(f"[green]✓[/green] checkpoint signed by {escape(key.name)}+{key.key_id.hex()}")
    table = key_value_table()
    table.add_row("origin", escape(checkpoint.origin))
    table.add_row("tree size", str(checkpoint.size))
    table.add_row("root hash", b64(checkpoint.root_hash))
    for extension in checkpoint.extensions:
        table.add_row("extension", escape(extension))
    console.print(table)


def main() -> None:
    """Entry point of the `consentry-audit` console script."""
    app()
