"""How a message leaves: SMTP when `CONSENTRY_SMTP_URL` is set, otherwise `.eml` files on disk.

    smtp://[user:password@]host[:25]             plain, or STARTTLS when CONSENTRY_SMTP_STARTTLS is true
    smtp+starttls://[user:password@]host[:587]   STARTTLS always (the connection fails if it is refused)
    smtps://[user:password@]host[:465]           implicit TLS (RFC 8314)

A transport raises `MailRefused` when a message did not go: `permanent` when the server refused it for
good (a 5xx reply: retrying cannot help), otherwise the worker tries again later.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit
from uuid import UUID

__all__ = ["SCHEMES", "MailRefused", "SmtpTransport", "Transport"]

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailRefused(Exception):
    """The message was not sent; `permanent` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Transport(Protocol):
    """Something that sends one message or raises `MailRefused`."""

    def send(self, message_id: UUID, message: EmailMessage) -> None:
        """Send `message` (the outbox's `message_id`, for transports that file it)."""


@dataclass(frozen=True, slots=True)
class SmtpTransport:
    """SMTP submission with `smtplib`: one connection per message, TLS as the URL asks."""

    host: str
    port: int
    tls: str  # "none", "starttls" or "implicit"
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    local_hostname: str = "localhost"
    ca_file: Path | None = None  # None: the system's CAs

    @classmethod
    def from_url(
        cls, url: str, *, starttls: bool = False, timeout: float = 10.0, ca_file: Path | None = None
    ) -> SmtpTransport:
        """A transport for an `smtp://`, `smtp+starttls://` or `smtps://` URL (see the module docstring)."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError("the SMTP URL must be smtp://, smtp+starttls:// or smtps:// with a host")
        tls = {"smtps": "implicit", "smtp+starttls": "starttls"}.get(parts.scheme)
        return cls(
            host=parts.hostname,
            port=parts.port or SCHEMES[parts.scheme],
            tls=tls or ("starttls" if starttls else "none"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
            ca_file=ca_file,
        )

    def send(self, message_id: UUID, message: EmailMessage) -> None:
        """Submit one message; a 5xx refusal is permanent, anything else (4xx, network) is not."""
        # The server's certificate and name are checked (the default context), against `ca_file` if set.
        context = ssl.create_default_context(cafile=self.ca_file)
        try:
            smtp = (
                smtplib.SMTP_SSL(
                    self.host, self.port, self.local_hostname, timeout=self.timeout, context=context
                )
                if self.tls == "implicit"
                else smtplib.SMTP(self.host, self.port, self.local_hostname, timeout=self.timeout)
            )
            with smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=context)
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise MailRefused(f"recipient refused ({codes[0]})", permanent=min(codes) >= 500) from None
        except smtplib.SMTPResponseException as exc:
            raise MailRefused(
                f"the server answered {exc.smtp_code}", permanent=exc.smtp_code >= 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailRefused(f"could not reach the mail server ({type(exc).__name__})") from None


def sink_directory(data_dir: Path) -> Path:
    """Where messages are filed as `.eml` when no SMTP server is configured."""
    return data_dir / "mail"
