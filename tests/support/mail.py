"""Test support for mail: a real SMTP server in this process (aiosmtpd), and reading what was sent to an
address from it or from the `.eml` sink, codes included. Other tests reuse these to finish flows that
go through the customer's mailbox (sign-up verification, password reset, sign-in links)."""

from __future__ import annotations

import re
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from fastapi.testclient import TestClient

from broker.accounts.addresses import canonical
from broker.mail import sink
from broker.mail.transport import sink_directory
from broker.runtime import Runtime
from support.core import STRONG_PASSWORD, free_port

# The codes `broker.accounts.codes` makes: five groups of four Crockford base32 characters.
CODE = re.compile(r"\b[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}\b")


@dataclass
class SmtpServer:
    """What the in-process SMTP server was sent, and how it answers (`refuse`: RCPT replies, in turn)."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The `CONSENTRY_SMTP_URL` of this server (no TLS, no credentials)."""
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages whose To is `address`, oldest first."""
        return [m for m in self.messages if str(m["To"]) == address]


class _Handler:
    def __init__(self, server: SmtpServer, lock: threading.Lock) -> None:
        self.server, self.lock = server, lock

    async def handle_RCPT(  # noqa: N802 - aiosmtpd calls handle_<VERB>
        self, server: Any, session: Any, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self.lock:
            if self.server.refuse:
                return self.server.refuse.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.server.messages.append(message)
            self.server.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), made by the openssl command: (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextmanager
def running_smtp(
    *,
    credentials: tuple[str, str] | None = None,
    tls: str = "none",
    certificate: tuple[Path, Path] | None = None,
) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1, stopped after: with AUTH when `credentials` are given, and TLS
    (`tls`: "starttls" required, or "implicit") with `certificate` (cert.pem, key.pem)."""
    server, lock = SmtpServer(free_port()), threading.Lock()
    options: dict[str, Any] = {}
    if tls != "none":
        assert certificate is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        if tls == "starttls":
            options |= {"tls_context": context, "require_starttls": True}
        else:
            options |= {"ssl_context": context}
    if credentials is not None:

        def authenticate(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == credentials
            )
            if ok:
                server.logins.append(data.login.decode())
            return AuthResult(success=ok)

        # aiosmtpd sees TLS only when it did the STARTTLS itself: over implicit TLS it must not insist
        options |= {
            "authenticator": authenticate,
            "auth_required": True,
            "auth_require_tls": tls == "starttls",
        }
    # AUTH without TLS (on loopback, in a test): aiosmtpd's warning is filtered in pyproject.toml
    controller = Controller(_Handler(server, lock), hostname="127.0.0.1", port=server.port, **options)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def deliver(runtime: Runtime) -> int:
    """Run the mail worker once, as the server's background task would; how many messages it tried."""
    return runtime.mail_delivery.deliver_due(runtime.sessions)


def sink_messages(data_dir: Path, to: str | None = None) -> list[EmailMessage]:
    """The messages in the `.eml` sink under `data_dir` (those to `to`, if given), oldest first."""
    found = [sink.read(entry.path) for entry in sink.listing(sink_directory(data_dir))]
    return [m for m in found if to is None or canonical(str(m["To"])) == canonical(to)]


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a message."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def code_in(message: EmailMessage) -> str:
    """The one-time code a message carries."""
    found = CODE.search(text_of(message))
    assert found is not None, text_of(message)
    return found.group(0)


def last_message(runtime: Runtime, to: str) -> EmailMessage:
    """Deliver what is due to the `.eml` sink and return the newest message to `to`."""
    deliver(runtime)
    messages = sink_messages(runtime.settings.data_dir, to)
    assert messages, f"no mail to {to}"
    return messages[-1]


def last_code(runtime: Runtime, to: str) -> str:
    """The code in the newest message to `to` (delivered now to the `.eml` sink)."""
    return code_in(last_message(runtime, to))


def runtime_of(client: TestClient) -> Runtime:
    """The runtime behind a test client's app."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def confirm_email(client: TestClient, email: str) -> None:
    """Use the code in the newest message to `email` (delivered now to the `.eml` sink)."""
    code = last_code(runtime_of(client), email)
    response = client.post("/v1/customers/verify", json={"code": code})
    assert response.status_code == 200, response.text


def sign_up_over_http(
    http: httpx.Client, data_dir: Path, email: str, password: str = STRONG_PASSWORD
) -> None:
    """Sign up on a server running in another process (whose data directory is `data_dir` and whose
    mail goes to the `.eml` sink) and confirm the address with the code its worker files."""
    before = len(sink_messages(data_dir, email))
    assert http.post("/v1/customers", json={"email": email, "password": password}).status_code == 202
    code = code_in(wait_for_message(data_dir, email, count=before + 1))
    verified = http.post("/v1/customers/verify", json={"code": code})
    assert verified.status_code == 200, verified.text


def wait_for_message(data_dir: Path, to: str, *, count: int = 1, timeout: float = 15.0) -> EmailMessage:
    """For a server running in another process: wait until its worker has filed `count` messages to
    `to` in the `.eml` sink under `data_dir`, and return the newest."""
    deadline = time.monotonic() + timeout
    while True:
        messages = sink_messages(data_dir, to)
        if len(messages) >= count:
            return messages[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} in {sink_directory(data_dir)} after {timeout} s")
        time.sleep(0.05)


def wait_for_smtp(smtp: SmtpServer, to: str, *, count: int = 1, timeout: float = 15.0) -> EmailMessage:
    """For a server running in another process whose mail goes to `smtp`: wait until `count` messages
    to `to` arrived, and return the newest."""
    deadline = time.monotonic() + timeout
    while len(smtp.to(to)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} at the SMTP server after {timeout} s")
        time.sleep(0.05)
    return smtp.to(to)[-1]


def sign_up_over_smtp(
    http: httpx.Client, smtp: SmtpServer, email: str, password: str = STRONG_PASSWORD
) -> None:
    """Sign up on a server running in another process whose mail goes to `smtp`, and confirm the
    address with the code that server receives."""
    before = len(smtp.to(email))
    assert http.post("/v1/customers", json={"email": email, "password": password}).status_code == 202
    code = code_in(wait_for_smtp(smtp, email, count=before + 1))
    verified = http.post("/v1/customers/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
