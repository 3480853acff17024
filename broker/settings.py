"""Runtime settings, read from ``CONSENTRY_*`` environment variables (pydantic-settings).

One `Settings` object is built at start-up and passed down; nothing reads the environment later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the broker can be configured with. Field names map to ``CONSENTRY_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CONSENTRY_", frozen=True, extra="forbid")

    data_dir: Path = Field(default=Path("var"), description="where the SQLite file and key files live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite at <data_dir>/consentry.db"
    )
    database_timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=600,
        description="how long a request waits for the database (SQLite: its lock; PostgreSQL: a connection) "
        "before it is answered 503",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="database connections each server process keeps open, and as many more during a burst; "
        "on PostgreSQL the same again for requests that only read (their own pool, in autocommit), and one "
        "that listens for changes to brands and listings, so max_connections must cover workers x "
        "(4 x this + 1), plus the commands you run",
    )
    base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8000"), description="public base URL (OAuth issuer)"
    )
    key_provider: Literal["file", "env"] = Field(
        default="file", description="where key-encryption keys come from: key files under data_dir, or env"
    )
    keks: SecretStr | None = Field(
        default=None, description="env provider: comma-separated '<version>:<base64 32-byte key>' pairs"
    )
    blind_index_key: SecretStr | None = Field(
        default=None, description="env provider: base64 32-byte key for email lookup tokens"
    )
    session_ttl_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        le=30 * 86400,
        description="absolute session lifetime: a session ends this long after login, however active",
    )
    session_idle_seconds: int = Field(
        default=30 * 60,
        ge=120,
        le=30 * 86400,
        description="idle timeout: a session not used for this long ends (last use is noted to the minute)",
    )
    security_activity_retention_days: int = Field(
        default=180,
        ge=1,
        le=3650,
        description="days a customer's security activity (sign-ins, password changes ...) is kept",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # argon2id cost; the defaults are RFC 9106's second recommended option (64 MiB, t=3, p=4).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    login_slowdown_after: int = Field(
        default=3, ge=1, description="failed logins of one account from one address before they slow down"
    )
    login_max_failures_pair: int = Field(
        default=10, ge=2, description="failures of one account from one address before that pair gets 429"
    )
    login_max_failures_address: int = Field(default=50, ge=2, description="failures per address before 429")
    login_account_slowdown_after: int = Field(
        default=20,
        ge=1,
        description="failures against one account (from any address) before its password attempts slow "
        "down; the account itself is never locked",
    )
    login_max_delay_seconds: float = Field(
        default=2.0, ge=0, le=30, description="the longest a throttled password attempt is delayed"
    )
    step_up_max_age_seconds: int = Field(
        default=5 * 60,
        ge=30,
        le=3600,
        description="how recent an authentication must be for deletion, export and removing a factor",
    )
    second_factor_ttl_seconds: int = Field(
        default=5 * 60,
        ge=30,
        le=3600,
        description="how long a half-finished login or passkey challenge lives",
    )
    webauthn_rp_id: str | None = Field(
        default=None, description="the passkeys' relying-party id; default: the host of base_url"
    )
    webauthn_rp_name: str = Field(
        default="Consentry", description="the name authenticators show for passkeys"
    )
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    login_lockout_seconds: int = Field(default=5 * 60, ge=1)
    dek_max_seals: int = Field(
        default=2**30, ge=1, description="values one data key may seal before it is rotated (AES-GCM bound)"
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="the audit log's signed-note key, PRIVATE+KEY+<origin>+<key id>+<key>; "
        "default: <data_dir>/keys/audit-log.key, made on first run",
    )
    audit_checkpoint_interval_seconds: int = Field(
        default=60, ge=0, description="seconds between audit checkpoints (if the log grew); 0: on demand"
    )
    lifecycle_interval_seconds: int = Field(
        default=60,
        ge=0,
        description="seconds between sweeps that record what time alone changed (grants that expired); "
        "0: no background sweep (expiry is still enforced on every read)",
    )
    end_acknowledgement_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 30,
        description="hours a brand has, after a grant ends, to acknowledge that it stopped processing",
    )
    directory_decline_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 14,
        description="hours a brand has to decline a grant a customer started in the offer directory",
    )
    dispute_answer_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="days a brand has to answer a dispute before either party may escalate it",
    )
    dispute_redelivery_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="days a brand has to deliver again after an auditor upheld a dispute, before the "
        "grant is suspended as for overdue value",
    )
    renewal_window_days: int = Field(
        default=14,
        ge=1,
        le=90,
        description="days before a grant expires (or needs its 90-day reconfirmation) when the customer "
        "is prompted and may renew it",
    )
    group_commit_max_batch: int = Field(
        default=64,
        ge=1,
        le=1000,
        description="profile reads committed together at most (group commit); 1: each read commits alone",
    )
    group_commit_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="how long a profile read waits for its audit entry to be committed before answering 503",
    )
    request_threads: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="worker threads that run customers' reads (grant lists, the dashboard) and "
        "client-credentials token requests at once; 0: run them on the event loop itself. Default 0 on "
        "SQLite (a read there never waits on a lock or a network, and handing it to a thread costs more "
        "than it does), 2 on PostgreSQL (its round trips leave the loop free meanwhile); with 0 on "
        "SQLite, profile reads' group-commit batches run on the loop too; see broker/web/threads.py",
    )
    webhook_interval_seconds: int = Field(
        default=5,
        ge=0,
        description="seconds between runs of the webhook delivery worker; 0: no background delivery",
    )
    webhook_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="days delivered and failed webhook messages, and their delivery log, are kept",
    )
    open_registration: bool = Field(
        default=False,
        description="let any brand register itself at POST /oauth/register without an initial access "
        "token (RFC 7591); off: an operator issues tokens with `consentry registration-tokens create`",
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="development only: let webhooks go to http:// URLs and to private or loopback addresses",
    )

    smtp_url: SecretStr | None = Field(
        default=None,
        description="where mail goes: smtp://[user:password@]host[:port] (STARTTLS if smtp_starttls), "
        "smtp+starttls://… or smtps://… (implicit TLS); unset: .eml files under <data_dir>/mail/",
    )
    smtp_starttls: bool = Field(default=False, description="upgrade smtp:// connections with STARTTLS")
    smtp_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CAs to trust for the SMTP server's TLS certificate (a relay with a "
        "private CA); default: the system's",
    )
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="per SMTP connection")
    mail_from: str = Field(
        default="Consentry <no-reply@localhost>", max_length=200, description="the From of every message"
    )
    mail_interval_seconds: float = Field(
        default=1.0, ge=0, description="seconds between runs of the mail delivery worker; 0: none"
    )
    email_code_ttl_seconds: int = Field(
        default=30 * 60, ge=60, le=7 * 86400, description="how long an emailed verification code works"
    )
    signup_max_per_address: int = Field(
        default=20, ge=1, description="sign-ups (and code resends) per client address per signup window"
    )
    signup_window_seconds: int = Field(default=3600, ge=1)
    verify_max_failures: int = Field(
        default=10, ge=1, description="wrong verification codes per client address before 429"
    )
    recovery_code_ttl_seconds: int = Field(
        default=15 * 60, ge=60, le=3600, description="how long a password-reset code or a sign-in link works"
    )
    recovery_window_seconds: int = Field(
        default=3600, ge=60, description="the window the password-reset and sign-in-link limits count in"
    )
    recovery_mails_per_address: int = Field(
        default=5,
        ge=1,
        description="reset and sign-in-link messages sent to one email address per window; further "
        "requests are answered the same but send nothing (earlier messages keep working)",
    )
    recovery_requests_per_client: int = Field(
        default=20, ge=1, description="reset and sign-in-link requests per client address per window (429)"
    )
    recovery_max_failures: int = Field(
        default=10, ge=1, description="wrong reset or sign-in codes per client address before 429"
    )

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            parts = urlsplit(url.get_secret_value())
            if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
                raise ValueError(
                    "CONSENTRY_SMTP_URL must be smtp://, smtp+starttls:// or smtps:// and name a host"
                )
        return url

    @field_validator("mail_from")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value or "@" not in value:
            raise ValueError(
                "CONSENTRY_MAIL_FROM must be one address, e.g. 'Consentry <no-reply@example.org>'"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, url: str | None) -> str | None:
        # Plain postgresql:// URLs would pick psycopg2, which we do not ship: use psycopg 3.
        if url and url.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @model_validator(mode="after")
    def _env_provider_needs_keys(self) -> Settings:
        if self.key_provider == "env" and (self.keks is None or self.blind_index_key is None):
            raise ValueError(
                "key_provider=env needs CONSENTRY_KEKS and CONSENTRY_BLIND_INDEX_KEY; "
                "there are no default keys"
            )
        return self

    @model_validator(mode="after")
    def _rp_id_covers_the_base_url(self) -> Settings:
        # WebAuthn (§5.1.3): the RP id must be the origin's host or a registrable suffix of it.
        host = self.base_url.host or ""
        rp_id = self.webauthn_rp_id
        if rp_id and host != rp_id and not host.endswith("." + rp_id):
            raise ValueError(
                f"webauthn_rp_id {rp_id!r} must be the host of base_url ({host!r}) or a domain it is under"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'consentry.db').resolve()}"

    @property
    def request_thread_count(self) -> int:
        """`request_threads`, or its default for the database in use."""
        if self.request_threads is not None:
            return self.request_threads
        return 0 if self.resolved_database_url.startswith("sqlite") else 2

    @property
    def rp_id(self) -> str:
        """The WebAuthn relying-party id: the configured one, or the host of the public URL."""
        return self.webauthn_rp_id or (self.base_url.host or "localhost")

    @property
    def origin(self) -> str:
        """The public URL's origin (scheme://host[:port]), as browsers put it in clientDataJSON."""
        url = self.base_url
        default = {"http": 80, "https": 443}.get(url.scheme)
        port = "" if url.port in (None, default) else f":{url.port}"
        return f"{url.scheme}://{url.host}{port}"

    @property
    def secure_cookies(self) -> bool:
        """Cookies get the Secure flag whenever the public URL is HTTPS."""
        return self.base_url.scheme == "https"
