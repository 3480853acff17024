"""The `consentry` command: serve, migrate, demo, brands, auditors, keys, audit, mail."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from broker import allocator, logs
from broker import serve as serving
from broker.audit.entries import Actor, Kind
from broker.audit.verify import Remembered, Report, snapshot, verify_log
from broker.db import create_db_engine, ensure_migrated, migrate
from broker.demo import seed_demo
from broker.errors import BrokerError, DatabaseMisconfigured, DatabaseNotMigrated
from broker.mail import sink
from broker.mail.transport import sink_directory
from broker.oauth.clients import register_brand
from broker.oauth.context import ACCESS_TOKEN_LIFETIME, ID_TOKEN_LIFETIME
from broker.oauth.registration import check_jwks, issue_registration_token
from broker.oauth.signing import ALGORITHM
from broker.runtime import build_runtime
from broker.settings import Settings
from broker.versions import API_VERSIONS, RELEASE
from vault.errors import VaultError
from vault.rotation import rotate_keks

app = typer.Typer(help="Consentry broker: serve the API and administer it.", no_args_is_help=True)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"consentry {RELEASE} (serves Consentry API {', '.join(API_VERSIONS)})")
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


keys_app = typer.Typer(help="Key management.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
brands_app = typer.Typer(help="Brands (OAuth clients).", no_args_is_help=True)
app.add_typer(brands_app, name="brands")
registration_app = typer.Typer(
    help="Initial access tokens for dynamic client registration (RFC 7591).", no_args_is_help=True
)
app.add_typer(registration_app, name="registration-tokens")
auditors_app = typer.Typer(help="Auditors, who may read the whole audit log.", no_args_is_help=True)
app.add_typer(auditors_app, name="auditors")
audit_app = typer.Typer(help="The audit log: checkpoints and verification.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
mail_app = typer.Typer(
    help="Mail filed as .eml under <data_dir>/mail/ (when no SMTP is set).", no_args_is_help=True
)
app.add_typer(mail_app, name="mail")
err = Console(stderr=True)


@app.command("migrate")
def migrate_cmd() -> None:
    """Create or upgrade the database schema to the newest revision."""
    settings = Settings()
    revision = migrate(settings.resolved_database_url)
    err.print(f"[green]database is at revision {revision}[/green]")


GRACEFUL_SHUTDOWN_SECONDS = 30


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="worker processes, each with its own app and pool [default: CPU count]"),
    ] = None,
    graceful_timeout: Annotated[
        int,
        typer.Option(min=0, help="on SIGTERM, seconds to let requests in flight finish before closing"),
    ] = GRACEFUL_SHUTDOWN_SECONDS,
) -> None:
    """Serve the broker over HTTP: uvicorn on uvloop with httptools, one app per worker process, each
    worker on a socket of its own (SO_REUSEPORT: the kernel spreads connections over them).

    On SIGTERM each worker stops accepting, lets the requests in flight finish (at most
    --graceful-timeout seconds), then commits the audit entries of the reads still queued and stops.
    """
    allocator.limit_arenas()  # before the threads start (and exported to the workers): broker/allocator.py
    settings = Settings()
    engine = create_db_engine(settings.resolved_database_url, pool_size=1)  # a check and the keys, then gone
    try:
        ensure_migrated(engine)
        # Keys on a fresh data directory are made here, once, before the workers start and read them.
        build_runtime(settings, engine=engine)
    except (DatabaseNotMigrated, DatabaseMisconfigured) as exc:
        err.print(f"[red]refusing to start:[/red] {exc}")
        raise SystemExit(2) from None
    finally:
        engine.dispose()
    logs.configure()  # the server's own lines; each worker configures its own (`broker.asgi.create`)
    options = {
        "app": "broker.asgi:create",  # a factory: every worker process builds its own app, runtime and pool
        "factory": True,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": graceful_timeout,
        "access_log": False,
        "proxy_headers": False,
    }
    # Each worker on a socket of its own, so that the kernel spreads connections evenly: broker/serve.py
    raise SystemExit(serving.serve(host, port, workers or os.cpu_count() or 1, options))


@app.command()
def demo() -> None:
    """Seed a demo customer, brand and offer (idempotent) and print their credentials as JSON."""
    typer.echo(json.dumps(seed_demo(build_runtime(Settings())), indent=2))


@brands_app.command("create")
def create_brand(
    name: Annotated[str, typer.Option(help="the brand's name, as customers will see it")],
    redirect_uri: Annotated[list[str], typer.Option(help="exact redirect URI; repeat for several")],
    public: Annotated[
        bool, typer.Option("--public", help="a mobile or single-page app: no secret, PKCE only")
    ] = False,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="where OpenID Connect logout may send the customer back; repeat for several"),
    ] = None,
    id_token_alg: Annotated[
        str, typer.Option(help="how its OpenID Connect ID tokens are signed: RS256 or Ed25519")
    ] = "RS256",  # noqa: S107 - a JWS algorithm, not a secret
    jwks: Annotated[
        Path | None,
        typer.Option(
            help="a JSON file of the brand's public keys (a JWK set): use enc keys (ECDH-ES, P-256 or "
            "X25519, each with a kid) receive self-custody grants; signing keys, private_key_jwt",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Register a brand and print its client_id (and client_secret, shown only now) as JSON."""
    keys = None
    if jwks is not None:
        try:
            keys = check_jwks(json.loads(jwks.read_text()))
        except (ValueError, AttributeError) as refused:
            raise typer.BadParameter(
                f"{jwks}: not a usable JWK set: {refused}", param_hint="--jwks"
            ) from None
    runtime = build_runtime(Settings())
    with runtime.sessions() as session:
        registered = register_brand(
            session,
            name=name,
            redirect_uris=redirect_uri,
            public=public,
            clock=runtime.clock,
            post_logout_redirect_uris=post_logout_redirect_uri or [],
            id_token_signed_response_alg=id_token_alg,
        )
        registered.brand.jwks = keys
        session.add(registered.brand)
        session.commit()
    output = {"client_id": registered.brand.client_id, "client_secret": registered.client_secret}
    typer.echo(json.dumps(output, indent=2))


@registration_app.command("create")
def create_registration_token(
    uses: Annotated[int, typer.Option(min=1, max=10_000, help="how many brands may register with it")] = 1,
    expires_in_days: Annotated[
        int, typer.Option("--expires-in-days", "--expires", min=1, max=365, help="days until it expires")
    ] = 7,
) -> None:
    """Issue an initial access token (shown only now) a brand registers itself with at POST
    /oauth/register: print it, its uses and its expiry as JSON."""
    runtime = build_runtime(Settings())
    with runtime.sessions() as session:
        token, row = issue_registration_token(
            session, uses=uses, lifetime=timedelta(days=expires_in_days), now=runtime.clock()
        )
        session.commit()
    output = {"token": token, "uses": row.uses_left, "expires_at": row.expires_at.isoformat()}
    typer.echo(json.dumps(output, indent=2))


@auditors_app.command("create")
def create_auditor(
    name: Annotated[str, typer.Option(help="who audits, as the operator knows them (1-200 characters)")],
) -> None:
    """Register an auditor and print its token (shown only now) as JSON."""
    runtime = build_runtime(Settings())
    with runtime.sessions() as session:
        auditor, token = runtime.auditors.create(session, name)
        session.commit()
    typer.echo(json.dumps({"auditor_id": str(auditor.id), "name": auditor.name, "token": token}, indent=2))


@audit_app.command("checkpoint")
def sign_checkpoint() -> None:
    """Sign a checkpoint of the audit log as it is now (unless one exists for its size); print the note."""
    runtime = build_runtime(Settings())
    typer.echo(runtime.checkpoints.sign_now(runtime.sessions).note, nl=False)


@audit_app.command("verify")
def verify_audit_log(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            help="JSON file remembering the size and root last verified, kept away from the database: "
            "catches a restored older copy; created if missing, updated only when the log verifies"
        ),
    ] = None,
) -> None:
    """Check every entry, subtree hash and signed checkpoint of the stored log. Exit 1 on a problem."""
    remembered = None
    if state is not None and state.exists():
        try:
            remembered = Remembered.from_json(json.loads(state.read_text()))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise typer.BadParameter(f"{state}: {exc}", param_hint="--state") from None
    runtime = build_runtime(Settings())
    checkpoints = runtime.checkpoints
    with snapshot(runtime.engine) as session:
        report = verify_log(session, checkpoints.verifier, origin=checkpoints.origin, remembered=remembered)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)
    if state is not None:
        state.write_text(json.dumps(Remembered.of(report).as_json()) + "\n")


def _print_report(report: Report) -> None:
    console = Console()
    counts = (
        f"{report.entries} entries, {report.nodes} subtree hashes, {report.checkpoints} signed checkpoints"
    )
    if report.ok:
        console.print(f"[green]✓[/green] the audit log verifies: {counts}", soft_wrap=True)
        return
    summary = f"{report.problems_found} problems ({counts})"
    console.print(f"[red]✗[/red] the audit log does not verify: {summary}", soft_wrap=True)
    table = Table("problem", "index", "detail")
    for problem in report.problems:
        index = "" if problem.index is None else str(problem.index)
        table.add_row(problem.kind, index, escape(problem.detail))
    console.print(table)
    if report.problems_found > len(report.problems):
        console.print(f"… and {report.problems_found - len(report.problems)} more")


@keys_app.command("rotate-signing")
def rotate_signing() -> None:
    """Start signing access tokens and ID tokens with new keys (Ed25519 and RS256); keys older than
    every live token are deleted."""
    runtime = build_runtime(Settings())
    kids, retired = runtime.oauth.signing.rotate(
        max_token_lifetime=max(ACCESS_TOKEN_LIFETIME, ID_TOKEN_LIFETIME)
    )
    for key, alg in (("token-signing", ALGORITHM), ("id-token-signing", "RS256")):
        runtime.audit.record_alone(
            runtime.sessions, Kind.KEY_ROTATED, actor=Actor.OPERATOR, key=key, version=kids[alg]
        )
    typer.echo(json.dumps({"kid": kids[ALGORITHM], "id_token_kid": kids["RS256"], "retired": retired}))


@keys_app.command("rotate")
def rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="DEKs re-wrapped per transaction")] = 500,
    grace: Annotated[float, typer.Option(min=0, help="seconds to wait before retiring old KEKs")] = 2.0,
) -> None:
    """Rotate the key-encryption key: re-wrap every customer's data key online, then retire the old KEK.

    Safe to interrupt: run it again and it resumes where it stopped.
    """
    runtime = build_runtime(Settings())
    columns = (TextColumn("re-wrapping data keys"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("rewrap", total=None)
        report = rotate_keks(
            runtime.sessions,
            runtime.vault,
            batch_size=batch_size,
            on_start=lambda total: progress.update(task, total=total),
            on_progress=lambda done: progress.advance(task, done),
            retire_grace=lambda: time.sleep(grace),
        )
    runtime.audit.record_alone(
        runtime.sessions,
        Kind.KEY_ROTATED,
        actor=Actor.OPERATOR,
        key="kek",
        version=str(report.target_version),
    )
    verb = "resumed rotation to" if report.resumed else "rotated to"
    err.print(
        f"[green]{verb} KEK version {report.target_version}; re-wrapped {report.rewrapped} data keys[/green]"
    )
    if report.retired:
        err.print(f"retired KEK versions: {', '.join(map(str, report.retired))}")
    if report.kept:
        err.print(
            f"[yellow]versions {report.kept} are no longer used: remove them from CONSENTRY_KEKS[/yellow]"
        )
    typer.echo(
        json.dumps(
            {"kek_version": report.target_version, "rewrapped": report.rewrapped, "retired": report.retired}
        )
    )


accounts_app = typer.Typer(help="Customer accounts.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


@accounts_app.command("reindex-emails")
def reindex_emails() -> None:
    """Index the addresses of accounts made before look-alike detection (each is otherwise indexed at
    its owner's next login): decrypts each address from the vault, stores only blind tokens."""
    runtime = build_runtime(Settings())
    done = 0
    while True:
        with runtime.sessions() as session:
            count = runtime.accounts.reindex(session)
            session.commit()
        done += count
        if count == 0:
            break
    typer.echo(json.dumps({"reindexed": done}))


@mail_app.command("list")
def mail_list() -> None:
    """List the messages in the mail sink, oldest first: id, date, recipient, subject."""
    settings = Settings()
    entries = sink.listing(sink_directory(settings.data_dir))
    if not entries:
        err.print(f"no messages in {sink_directory(settings.data_dir)}")
        return
    table = Table("id", "date", "to", "subject")
    for entry in entries:
        table.add_row(entry.id, escape(entry.date), escape(entry.to), escape(entry.subject))
    Console(width=200).print(table)


@mail_app.command("show")
def mail_show(
    message_id: Annotated[str, typer.Argument(help="a message id (or its start) from `mail list`")],
) -> None:
    """Print one message from the mail sink: its headers and plain-text body."""
    directory = sink_directory(Settings().data_dir)
    try:
        message = sink.read(sink.find(directory, message_id))
    except LookupError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    for header in ("From", "To", "Date", "Subject"):
        typer.echo(f"{header}: {message[header]}")
    body = message.get_body(preferencelist=("plain",))
    typer.echo("")
    typer.echo(body.get_content() if body is not None else "")


def main() -> None:
    """Entry point of the `consentry` console script."""
    try:
        app()
    except (BrokerError, VaultError, DatabaseMisconfigured) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
