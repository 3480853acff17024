"""`consentry-audit disputes`: the auditor's side of escalated disputes.

    consentry-audit disputes list --url URL --token TOKEN [--status STATUS] [--json]
    consentry-audit disputes show ID --url URL --token TOKEN [--key KEY --jwks FILE_OR_URL]
                                     [--save-receipt FILE] [--json]
    consentry-audit disputes decide ID --url URL --token TOKEN --outcome upheld|rejected
                                       (--reasons TEXT | --reasons-file FILE) [--json]

STATUS is open (the default), awaiting_customer, decided, declined, withdrawn or all.

`show` prints the dispute file the customer agreed to share (the server logs each opening, and the
customer sees it). For a decided escalation it checks the decision offline, trusting only what you
pin: the receipt's signature against the JWKS you give, its audit entry's inclusion under a checkpoint
signed by the log key you pin, and that the reasons shown hash to the SHA-256 the receipt signs.
`--save-receipt` writes the receipt bundle for `consentry-audit receipt verify` later.

Exit codes: 0 done (and verified, when asked), 1 a check failed, 2 usage errors or an HTTP error
(a 409 when the escalation cannot be decided, the server's reason on stderr).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clients.auditor.api import AuditorAPIError, AuditorClient
from clients.auditor.console import (
    EXIT_FAILED,
    EXIT_UNABLE,
    KEY_HELP,
    JsonOutput,
    ServerURL,
    Token,
    error,
    key_value_table,
    verifier_key,
)
from clients.auditor.receipt import verify_receipt
from clients.auditor.receipt_cli import load_jwks
from clients.auditor.tlog import Verifier

__all__ = ["disputes_app"]

disputes_app = typer.Typer(help="Escalated disputes: list, read the file, decide.", no_args_is_help=True)

_STATUSES = ("open", "awaiting_customer", "decided", "declined", "withdrawn", "all")


def _client(ctx: typer.Context, url: str, token: str) -> AuditorClient:
    transport = ctx.obj if isinstance(ctx.obj, httpx.BaseTransport) else None
    return AuditorClient(url, token, transport=transport)


@disputes_app.command("list")
def list_disputes(
    ctx: typer.Context,
    url: ServerURL,
    token: Token,
    status: Annotated[str, typer.Option("--status", help=f"one of {', '.join(_STATUSES)}")] = "open",
    as_json: JsonOutput = False,
) -> None:
    """The escalations waiting for a decision (or those in --status), newest first, every page."""
    if status not in _STATUSES:
        raise typer.BadParameter(f"--status is one of {', '.join(_STATUSES)}, not {status!r}")
    items: list[dict[str, Any]] = []
    try:
        with _client(ctx, url, token) as client:
            cursor: str | None = None
            while True:
                page = client.disputes(status, cursor)
                found = page.get("items")
                items += [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []
                after = page.get("next_cursor")
                if not isinstance(after, str):
                    break
                cursor = after
    except AuditorAPIError as exc:
        error(str(exc), code=EXIT_UNABLE)
    if as_json:
        print(json.dumps({"items": items}, indent=2))
        return
    table = Table("id", "brand", "escalated by", "escalated at", "status")
    for item in items:
        table.add_row(
            *(escape(str(item.get(k))) for k in ("id", "brand", "escalated_by", "escalated_at", "status"))
        )
    Console().print(table if items else f"No escalations are {status}.")


@disputes_app.command("show")
def show_dispute(
    ctx: typer.Context,
    escalation_id: Annotated[str, typer.Argument(metavar="ID", help="the escalation's id")],
    url: ServerURL,
    token: Token,
    key: Annotated[
        Verifier | None,
        typer.Option("--key", parser=verifier_key, metavar="VERIFIER_KEY", help=f"pin {KEY_HELP}"),
    ] = None,
    jwks: Annotated[
        list[str] | None,
        typer.Option(
            "--jwks", metavar="FILE_OR_URL", help="a JWKS to trust for the decision receipt's signature"
        ),
    ] = None,
    save_receipt: Annotated[
        Path | None,
        typer.Option("--save-receipt", dir_okay=False, help="write the decision's receipt bundle here"),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """One escalation with its file; a decided one's receipt verified offline with --key and --jwks."""
    try:
        with _client(ctx, url, token) as client:
            shown = client.dispute(escalation_id)
    except AuditorAPIError as exc:
        error(str(exc), code=EXIT_UNABLE)
    problems = _check_decision(ctx, shown, key, jwks or [], save_receipt)
    if as_json:
        print(json.dumps({**shown, "verification": problems}, indent=2))
    else:
        _print(shown, problems)
    if problems:
        raise typer.Exit(EXIT_FAILED)


@disputes_app.command("decide")
def decide_dispute(
    ctx: typer.Context,
    escalation_id: Annotated[str, typer.Argument(metavar="ID", help="the escalation's id")],
    url: ServerURL,
    token: Token,
    outcome: Annotated[
        str, typer.Option("--outcome", help="upheld (deliver again) or rejected (counts as delivered)")
    ],
    reasons: Annotated[
        str | None, typer.Option("--reasons", help="why, for both parties (10 to 4,000 characters)")
    ] = None,
    reasons_file: Annotated[
        Path | None,
        typer.Option("--reasons-file", exists=True, dir_okay=False, help="read the reasons from a file"),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Decide an open escalation. The same decision again is reported as made before."""
    if outcome not in ("upheld", "rejected"):
        raise typer.BadParameter(f"--outcome is upheld or rejected, not {outcome!r}")
    if (reasons is None) == (reasons_file is None):
        raise typer.BadParameter("give the reasons once: --reasons TEXT or --reasons-file FILE")
    words = reasons if reasons is not None else reasons_file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    try:
        with _client(ctx, url, token) as client:
            decided, made = client.decide(escalation_id, outcome, words.strip())
    except AuditorAPIError as exc:
        error(str(exc), code=EXIT_UNABLE)
    if as_json:
        print(json.dumps({**decided, "decided_now": made}, indent=2))
        return
    decision = decided.get("decision") if isinstance(decided.get("decision"), dict) else {}
    assert isinstance(decision, dict)
    said = "Decided" if made else "Already decided the same way"
    deadline = (
        f"; the brand delivers again by {decision.get('redeliver_by')}"
        if decision.get("redeliver_by")
        else ""
    )
    Console().print(
        escape(f"{said}: {decision.get('outcome')}{deadline}. Receipt {decision.get('receipt_id')}.")
    )


def _check_decision(
    ctx: typer.Context, shown: dict[str, Any], key: Verifier | None, jwks: list[str], save: Path | None
) -> list[str]:
    """What is wrong with the decision's proof (nothing for an undecided one, or one not asked to check)."""
    bundle, decision = shown.get("receipt"), shown.get("decision")
    if not isinstance(bundle, dict) or not isinstance(decision, dict):
        return []
    if save is not None:
        save.write_text(json.dumps(bundle, indent=2))
    if key is None or not jwks:
        return []
    keys = [k for source in jwks for k in load_jwks(ctx, source)]
    report = verify_receipt(bundle, log_key=key, jwks=keys)
    problems = list(report.problems)
    signed = ((report.claims or {}).get("decision") or {}).get("reasons_sha256")
    reasons = decision.get("reasons")
    if isinstance(reasons, str) and hashlib.sha256(reasons.encode()).hexdigest() != signed:
        problems.append("the reasons shown are not the ones the receipt signs (their SHA-256 differs)")
    if (report.claims or {}).get("decision", {}).get("escalation") != shown.get("id"):
        problems.append("the receipt is for another escalation")
    return problems


_SHOWN = (
    ("escalation", "id"),
    ("brand", "brand"),
    ("escalated by", "escalated_by"),
    ("escalated at", "escalated_at"),
    ("status", "status"),
    ("file shared at", "shared_at"),
)


def _print(shown: dict[str, Any], problems: list[str]) -> None:
    console = Console()
    table = key_value_table()
    for label, name in _SHOWN:
        table.add_row(label, escape(str(shown.get(name))))
    decision = shown.get("decision")
    if isinstance(decision, dict):
        table.add_row("decision", escape(f"{decision.get('outcome')} on {decision.get('decided_at')}"))
        table.add_row("reasons", escape(str(decision.get("reasons"))))
    console.print(table)
    file = shown.get("file")
    console.print(
        "[bold]The dispute file[/bold]" if file else "No file: the customer has not agreed to share it."
    )
    if file:
        console.print_json(json.dumps(file))
    if isinstance(decision, dict) and isinstance(shown.get("receipt"), dict):
        verdict = (
            "[red]not verified[/red]: " + escape("; ".join(problems))
            if problems
            else "signed receipt present"
        )
        console.print(f"Decision receipt: {verdict}")
