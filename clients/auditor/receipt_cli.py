"""`consentry-audit receipt verify`: check a consent or deletion receipt bundle offline, and, with
`--url`, that its entry is still in the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from clients.auditor.api import AuditorAPIError, AuditorClient
from clients.auditor.console import (
    EXIT_UNABLE,
    JsonOutput,
    VerifierKey,
    error,
    exit_if_failed,
    key_value_table,
    server_url,
    stderr,
)
from clients.auditor.receipt import DELETION_TYPE, ReceiptReport, check_still_logged, verify_receipt
from clients.auditor.tlog import NoteError, Verifier, parse_checkpoint

__all__ = ["load_jwks", "receipt_app"]

receipt_app = typer.Typer(help="Consent receipts: signature and audit-log inclusion.", no_args_is_help=True)

_JWKS_HELP = (
    "a JWKS to trust for the receipt's signature: a file (an archived copy of /.well-known/jwks.json, "
    "for keys rotated out since) or an http(s) URL to fetch it from; repeatable"
)
_URL_HELP = (
    "also check the entry is still in the log: fetch this server's latest checkpoint and a consistency "
    "proof to it from the receipt's (needs an auditor --token)"
)
_THUMBPRINT_HELP = (
    "trust the signing key the bundle carries only if its RFC 7638 thumbprint is this one (pinned out "
    "of band); repeatable. The bundle's key is never trusted on its own"
)


@receipt_app.command("verify")
def receipt_verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a receipt bundle, as the API returns it")],
    key: VerifierKey,
    jwks: Annotated[list[str] | None, typer.Option("--jwks", metavar="FILE_OR_URL", help=_JWKS_HELP)] = None,
    thumbprints: Annotated[
        list[str] | None, typer.Option("--thumbprint", metavar="THUMBPRINT", help=_THUMBPRINT_HELP)
    ] = None,
    url: Annotated[str | None, typer.Option("--url", parser=server_url, help=_URL_HELP)] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="CONSENTRY_AUDIT_TOKEN", help="an auditor token, with --url"),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Check a consent or deletion receipt offline: its JWS signature by a trusted broker key, that it
    says what its audit entry says, and that the entry is in the log under a checkpoint signed by the
    pinned key. With --url (and an auditor --token), also that the entry is still in the log now: the
    server's latest checkpoint, signed by the same pinned key, and a consistency proof to it.

    Trusted are only the log key you pin with --key and signing keys you chose: those in a JWKS given
    with --jwks, or the key inside the bundle when its thumbprint is one you pinned with --thumbprint.
    Exit 0 when verified, 1 when a check failed, 2 for usage errors, a JWKS that cannot be loaded or a
    server that cannot be reached."""
    if not jwks and not thumbprints:
        raise typer.BadParameter("say which signing keys to trust: --jwks FILE_OR_URL or --thumbprint T")
    if url is not None and not token:
        raise typer.BadParameter("the log's proofs are for auditors: give --token (or CONSENTRY_AUDIT_TOKEN)")
    keys = [k for source in jwks or [] for k in load_jwks(ctx, source)]
    try:
        document = json.loads(file.read_bytes())
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {str(file)!r}: {exc.strerror}", param_hint="FILE") from None
    except ValueError:
        error("receipt verification failed: the file is not JSON")
    report = verify_receipt(document, log_key=key, jwks=keys, thumbprints=thumbprints or [])
    if url is not None and token and report.verified:
        _check_still_logged(ctx, report, url, token, key)
    if as_json:
        typer.echo(json.dumps(_receipt_json(report), indent=2))
    for problem in report.problems:
        stderr().print(f"[red]error:[/red] receipt verification failed: {escape(problem)}", soft_wrap=True)
    if report.verified and not as_json:
        _print_receipt(report)
    exit_if_failed(report.verified)


def _check_still_logged(
    ctx: typer.Context, report: ReceiptReport, url: str, token: str, key: Verifier
) -> None:
    """Fetch the latest checkpoint and the consistency proof to it from the receipt's (`--url`)."""
    assert report.checkpoint is not None  # a verified report has its checkpoint
    transport = ctx.obj if isinstance(ctx.obj, httpx.BaseTransport) else None
    try:
        with AuditorClient(url, token, transport=transport) as client:
            note = client.checkpoint()
            # The size is the server's word until check_still_logged verifies the note: a false one
            # only makes the proof fail (exit 1) or the server refuse to make it (exit 2).
            size = parse_checkpoint(note.split("\n\n", 1)[0] + "\n").size
            proof = (
                client.consistency_proof(report.checkpoint.size, size)
                if size > report.checkpoint.size
                else []
            )
    except AuditorAPIError as exc:
        error(str(exc), code=EXIT_UNABLE)
    except NoteError as exc:  # an answer that cannot be read, like a malformed proof: cannot check
        error(f"the server's latest checkpoint is malformed: {exc}", code=EXIT_UNABLE)
    check_still_logged(report, note, proof, key)


def load_jwks(ctx: typer.Context, source: str) -> list[dict[str, object]]:
    """The keys of a JWKS file or URL; anything unreadable is a usage error (exit 2)."""
    try:
        if source.startswith(("http://", "https://")):
            transport = ctx.obj if isinstance(ctx.obj, httpx.BaseTransport) else None
            with httpx.Client(transport=transport, timeout=30) as client:
                document = client.get(source).raise_for_status().json()
        else:
            document = json.loads(Path(source).read_bytes())
        keys = document["keys"]
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise TypeError(keys)
    except (OSError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        error(f"cannot load a JWKS from {source!r}: {exc}", code=EXIT_UNABLE)
    return keys


def _receipt_json(report: ReceiptReport) -> dict[str, object]:
    claims = report.claims or {}
    return {
        "verified": report.verified,
        "type": report.typ,  # consent-receipt+jwt, or deletion-receipt+jwt (an account's deletion)
        "receipt_id": claims.get("receipt_id"),
        "event": claims.get("event"),
        "record_id": claims.get("record_id"),
        "kid": report.kid,
        "key_source": report.key_source,
        "audit_index": (claims.get("audit") or {}).get("index"),
        "tree_size": report.tree_size,
        "still_logged_at": None if report.later is None else report.later.size,
        "problems": report.problems,
    }


def _print_receipt(report: ReceiptReport) -> None:
    claims = report.claims or {}
    console = Console()
    deletion = report.typ == DELETION_TYPE
    kind = "deletion receipt" if deletion else "consent receipt"
    console.print(f"[green]✓[/green] {kind} verified: {escape(str(claims.get('event')))}")
    table = key_value_table()
    listed = claims.get("grants")
    grants: list[Any] = listed if isinstance(listed, list) else []
    ended = len([g for g in grants if isinstance(g, dict) and g.get("ended_by_this_deletion")])
    about: tuple[tuple[str, object], ...] = (
        (("grants", f"{len(grants)}, {ended} ended by it"),)
        if deletion
        else (("grant", claims.get("record_id")), ("brand", (claims.get("controller") or {}).get("name")))
    )
    for label, value in (
        ("receipt", claims.get("receipt_id")),
        *about,
        ("when", claims.get("event_time")),
        ("signed by", f"{report.kid} ({report.key_source})"),
        ("audit entry", f"{_receipt_json(report)['audit_index']} of {report.tree_size:,}"),
        *(
            ()
            if report.later is None
            else (("still in the log", f"at {report.later.size:,} entries (consistency proof checked)"),)
        ),
    ):
        table.add_row(label, escape(str(value)))
    console.print(table)
