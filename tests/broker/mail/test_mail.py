"""Mail to customers: written to an outbox in the transaction of its event, sealed under the customer's
key, delivered by a worker over real SMTP (an in-process aiosmtpd server) with retries and backoff, or
filed as owner-only `.eml` files that `consentry mail list|show` print."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import FakeClock, bearer, free_port, make_settings, sign_up
from support.mail import SmtpServer, deliver, running_smtp, self_signed_certificate, sink_messages, text_of
from typer.testing import CliRunner

from broker.cli import app as cli
from broker.mail.delivery import LEASE, RETRY_DELAYS, MailDelivery, Outgoing
from broker.mail.models import MailMessage, MailStatus, secret_label
from broker.runtime import Runtime, mail_transport
from broker.settings import Settings
from vault.models import VaultSecret

ADDRESS = "ada@example.org"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


def customer_id(runtime: Runtime, token: str) -> UUID:
    with runtime.sessions() as session:
        return runtime.accounts.authenticate(session, token).customer_id


def enqueue(runtime: Runtime, who: UUID, *, commit: bool = True) -> UUID:
    with runtime.sessions() as session:
        message_id = runtime.mail.enqueue(session, who, to=ADDRESS, template="email_changed", context={})
        session.commit() if commit else session.rollback()
    return message_id


def pending(db: Session, message_id: UUID) -> MailMessage:
    db.expire_all()
    message = db.get(MailMessage, message_id)
    assert message is not None
    return message


class TestOverSmtp:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str, smtp: SmtpServer) -> Settings:
        return make_settings(
            tmp_path / "var", database_url, smtp_url=smtp.url, mail_from="Consentry <mail@example.net>"
        )

    def test_a_message_goes_over_smtp_with_a_text_and_an_html_body(
        self, client: TestClient, runtime: Runtime, smtp: SmtpServer, db: Session
    ) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        message_id = enqueue(runtime, who)
        deliver(runtime)
        sent = smtp.to(ADDRESS)[-1]
        assert sent["From"] == "Consentry <mail@example.net>"
        assert sent["Subject"] == "Your Consentry email address was changed"
        assert sent["Message-ID"] == f"<{message_id.hex}@example.net>"
        assert "no longer logs in" in text_of(sent)
        html = sent.get_body(preferencelist=("html",))
        assert html is not None and "<h1" in html.get_content()  # type: ignore[attr-defined]
        assert pending(db, message_id).status is MailStatus.DELIVERED
        assert db.get(VaultSecret, (who, secret_label(message_id))) is None  # nothing kept once sent

    def test_an_event_rolled_back_sends_nothing(
        self, client: TestClient, runtime: Runtime, smtp: SmtpServer
    ) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        deliver(runtime)
        before = len(smtp.messages)
        enqueue(runtime, who, commit=False)
        assert deliver(runtime) == 0
        assert len(smtp.messages) == before

    def test_the_outbox_holds_no_address_or_body_in_clear(
        self, client: TestClient, runtime: Runtime, db: Session
    ) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        message_id = enqueue(runtime, who)
        row = pending(db, message_id)
        assert ADDRESS not in repr(row.model_dump())
        secret = db.get(VaultSecret, (who, secret_label(message_id)))
        assert secret is not None and ADDRESS.encode() not in secret.ciphertext
        assert b"no longer logs in" not in secret.ciphertext

    def test_a_temporary_refusal_is_retried_after_the_backoff(
        self, client: TestClient, runtime: Runtime, smtp: SmtpServer, clock: FakeClock, db: Session
    ) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        deliver(runtime)
        before = len(smtp.to(ADDRESS))
        message_id = enqueue(runtime, who)
        smtp.refuse.append("451 4.3.0 try again later")
        delivery = dataclasses.replace(runtime.mail_delivery, spread=lambda d: d)
        delivery.deliver_due(runtime.sessions)
        message = pending(db, message_id)
        assert (message.status, message.attempts) == (MailStatus.PENDING, 1)
        assert message.next_attempt_at == clock.now + RETRY_DELAYS[0]
        assert delivery.deliver_due(runtime.sessions) == 0  # not before its time
        clock.advance(seconds=RETRY_DELAYS[0].total_seconds())
        delivery.deliver_due(runtime.sessions)
        assert pending(db, message_id).status is MailStatus.DELIVERED
        assert len(smtp.to(ADDRESS)) == before + 1  # sent once

    def test_a_permanent_refusal_fails_at_once_and_drops_the_contents(
        self, client: TestClient, runtime: Runtime, smtp: SmtpServer, db: Session
    ) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        deliver(runtime)
        message_id = enqueue(runtime, who)
        smtp.refuse.append("550 5.1.1 no such user")
        deliver(runtime)
        message = pending(db, message_id)
        assert (message.status, message.attempts) == (MailStatus.FAILED, 1)
        assert message.last_error is not None and "550" in message.last_error
        assert db.get(VaultSecret, (who, secret_label(message_id))) is None

    def test_a_leased_message_is_not_claimed_twice(self, client: TestClient, runtime: Runtime) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        deliver(runtime)
        enqueue(runtime, who)
        first = runtime.mail_delivery.claim(runtime.sessions)
        assert len(first) == 1 and first[0].to == ADDRESS
        assert runtime.mail_delivery.claim(runtime.sessions) == []
        runtime.clock.advance(seconds=LEASE.total_seconds())  # type: ignore[attr-defined]
        assert len(runtime.mail_delivery.claim(runtime.sessions)) == 1  # a dead worker's lease runs out

    def test_deleting_the_account_deletes_its_pending_mail(
        self, client: TestClient, runtime: Runtime, db: Session
    ) -> None:
        token = sign_up(client, ADDRESS, verify=False)
        who = customer_id(runtime, token)
        enqueue(runtime, who)
        assert client.delete("/v1/me", headers=bearer(token)).status_code == 200
        db.expire_all()
        assert db.exec(select(MailMessage).where(MailMessage.customer_id == who)).all() == []
        assert db.exec(select(VaultSecret).where(VaultSecret.customer_id == who)).all() == []
        assert deliver(runtime) == 0


class TestUnreachableServer:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str) -> Settings:
        return make_settings(tmp_path / "var", database_url, smtp_url=f"smtp://127.0.0.1:{free_port()}")

    def test_an_unreachable_server_is_retried_on_the_schedule_then_the_message_fails(
        self, client: TestClient, runtime: Runtime, clock: FakeClock, db: Session
    ) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        delivery: MailDelivery = dataclasses.replace(runtime.mail_delivery, spread=lambda d: d)
        delivery.deliver_due(runtime.sessions)  # the sign-up's message fails its first try too
        message_id = enqueue(runtime, who)
        for delay in RETRY_DELAYS:
            delivery.deliver_due(runtime.sessions)
            message = pending(db, message_id)
            assert message.status is MailStatus.PENDING and message.next_attempt_at == clock.now + delay
            assert message.last_error is not None and "could not reach" in message.last_error
            clock.advance(seconds=delay.total_seconds())
        delivery.deliver_due(runtime.sessions)
        message = pending(db, message_id)
        assert (message.status, message.attempts) == (MailStatus.FAILED, len(RETRY_DELAYS) + 1)
        assert db.get(VaultSecret, (who, secret_label(message_id))) is None


class TestAuthenticatedSmtp:
    @pytest.fixture
    def server(self) -> Iterator[SmtpServer]:
        with running_smtp(credentials=("mailer", "p@ss word")) as server:
            yield server

    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str, server: SmtpServer) -> Settings:
        url = f"smtp://mailer:p%40ss%20word@127.0.0.1:{server.port}"
        return make_settings(tmp_path / "var", database_url, smtp_url=url)

    def test_credentials_in_the_url_log_in_and_stay_secret(
        self, client: TestClient, runtime: Runtime, server: SmtpServer
    ) -> None:
        who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
        enqueue(runtime, who)
        deliver(runtime)
        assert server.logins and server.to(ADDRESS)
        assert "p@ss" not in repr(runtime.settings)


class TestTls:
    """STARTTLS and implicit TLS against the in-process server, with a certificate the test makes; the
    server's certificate is checked (trusted through CONSENTRY_SMTP_CA_FILE), and credentials go only
    inside TLS."""

    @pytest.fixture
    def certificate(self, tmp_path: Path) -> tuple[Path, Path]:
        (tmp_path / "tls").mkdir()
        return self_signed_certificate(tmp_path / "tls")

    @pytest.mark.parametrize(("tls", "scheme"), [("starttls", "smtp+starttls"), ("implicit", "smtps")])
    def test_mail_goes_inside_tls_to_a_trusted_server(
        self, tmp_path: Path, runtime: Runtime, certificate: tuple[Path, Path], tls: str, scheme: str
    ) -> None:
        with running_smtp(credentials=("mailer", "secret"), tls=tls, certificate=certificate) as server:
            settings = make_settings(
                tmp_path, "sqlite://", smtp_url=f"{scheme}://mailer:secret@127.0.0.1:{server.port}",
                smtp_ca_file=certificate[0],
            )  # fmt: skip
            delivery = dataclasses.replace(runtime.mail_delivery, transport=mail_transport(settings))
            job = Outgoing(uuid4(), ADDRESS, "Subject", "text", "<p>html</p>", runtime.clock())
            assert delivery.send(job) is None
            assert server.logins == ["mailer"] and server.to(ADDRESS)

    def test_an_untrusted_certificate_is_refused_and_retried_later(
        self, tmp_path: Path, runtime: Runtime, certificate: tuple[Path, Path]
    ) -> None:
        with running_smtp(tls="implicit", certificate=certificate) as server:
            settings = make_settings(tmp_path, "sqlite://", smtp_url=f"smtps://127.0.0.1:{server.port}")
            delivery = dataclasses.replace(runtime.mail_delivery, transport=mail_transport(settings))
            job = Outgoing(uuid4(), ADDRESS, "Subject", "text", "<p>html</p>", runtime.clock())
            refused = delivery.send(job)
            assert refused is not None and not refused.permanent
            assert server.messages == []


def test_settings_refuse_a_url_that_is_not_smtp(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smtp://, smtp\\+starttls:// or smtps://"):
        make_settings(tmp_path, "sqlite://", smtp_url="http://mail.example.org")


def test_without_smtp_mail_is_filed_owner_only_and_the_cli_lists_and_shows_it(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
    message_id = enqueue(runtime, who)
    deliver(runtime)
    directory = settings.data_dir / "mail"
    files = sorted(directory.glob(f"*-{message_id.hex}.eml"))
    assert len(files) == 1
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert (
        sink_messages(settings.data_dir, ADDRESS)[-1]["Subject"] == "Your Consentry email address was changed"
    )

    env = {"CONSENTRY_DATA_DIR": str(settings.data_dir)}
    listed = CliRunner().invoke(cli, ["mail", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert message_id.hex[:12] in listed.output and "email address was changed" in listed.output
    shown = CliRunner().invoke(cli, ["mail", "show", message_id.hex[:12]], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"To: {ADDRESS}" in shown.output and "no longer logs in" in shown.output
    missing = CliRunner().invoke(cli, ["mail", "show", "ffffffffffff"], env=env)
    assert missing.exit_code == 1 and "mail list" in missing.output


def test_a_retried_message_replaces_its_file_instead_of_doubling(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
    enqueue(runtime, who)
    jobs = runtime.mail_delivery.claim(runtime.sessions, limit=10)
    for job in jobs + jobs:  # a worker died after sending; the lease ran out; sent again
        assert runtime.mail_delivery.send(job) is None
    assert len(list((settings.data_dir / "mail").glob("*.eml"))) == len(jobs)


def test_an_unknown_template_is_a_programming_error(client: TestClient, runtime: Runtime) -> None:
    who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
    with runtime.sessions() as session, pytest.raises(LookupError, match="no mail template 'nope'"):
        runtime.mail.enqueue(session, who, to=ADDRESS, template="nope", context={})


def test_retention_prunes_old_delivered_rows(
    client: TestClient, runtime: Runtime, clock: FakeClock, db: Session
) -> None:
    who = customer_id(runtime, sign_up(client, ADDRESS, verify=False))
    message_id = enqueue(runtime, who)
    deliver(runtime)
    clock.advance(days=31)
    assert runtime.mail_delivery.prune(runtime.sessions) >= 1
    db.expire_all()
    assert db.get(MailMessage, message_id) is None
