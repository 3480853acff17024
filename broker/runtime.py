"""The broker's wiring: one `Runtime` holds the engine and the services built from `Settings`.

The app factory and the CLI both build one; tests build theirs with an injected clock and sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Engine

from broker.accounts.activity import SecurityActivity
from broker.accounts.auditors import Auditors
from broker.accounts.challenges import Challenges
from broker.accounts.codes import EmailCodes
from broker.accounts.credentials import PasswordChanges
from broker.accounts.passkeys import Passkeys
from broker.accounts.passwords import Passwords
from broker.accounts.profiles import CustomerProfiles
from broker.accounts.recovery_codes import RecoveryCodes
from broker.accounts.service import Accounts
from broker.accounts.sessions import CustomerSessions
from broker.accounts.signin import SignIn
from broker.accounts.throttle import Throttle
from broker.accounts.totp import Totp
from broker.audit.checkpoints import Checkpoints, load_signer, log_origin
from broker.audit.group_commit import GroupCommitter
from broker.audit.log import AuditLog
from broker.consent.access_log import AccessLog
from broker.consent.deletion_report import DeletionReports
from broker.consent.grants import Grants
from broker.consent.notices import Notices
from broker.consent.offers import Offers
from broker.consent.renewal import Renewals
from broker.consent.retention import Retention
from broker.consent.sealed import SealedCopies
from broker.db import (
    ConnectionFactory,
    SessionFactory,
    create_db_engine,
    read_connection_factory,
    read_session_factory,
    reading_engine,
    session_factory,
)
from broker.mail.delivery import MailDelivery
from broker.mail.outbox import Mail
from broker.mail.rendering import Templates
from broker.mail.sink import EmlSink
from broker.mail.transport import SmtpTransport, Transport, sink_directory
from broker.oauth.client_cache import ClientCache
from broker.oauth.context import OAuthServices, pairwise_subject
from broker.oauth.families import TokenFamilies
from broker.oauth.signing import SigningKeys
from broker.oauth.tickets import prune_spent_tickets, ticket_for_notice
from broker.receipts.service import Receipts
from broker.settings import Settings
from broker.signals import BRANDS, LISTINGS, StampedCache, signals_for
from broker.tables import import_models
from broker.usecases.account_deletion import AccountDeletion
from broker.usecases.acknowledgements import EndAcknowledgements
from broker.usecases.custody import Custody
from broker.usecases.directory import Directory
from broker.usecases.dispute_mail import DisputeMail
from broker.usecases.dispute_views import DisputeViews
from broker.usecases.export import CustomerExport
from broker.usecases.grant_views import GrantViews
from broker.usecases.lifecycle import Lifecycle
from broker.usecases.preference_reads import PreferenceReads
from broker.usecases.reads import ProfileReads
from broker.usecases.recovery import Recovery
from broker.usecases.security_mail import SecurityMail
from broker.usecases.verification import EmailVerification
from broker.value.disputes import Disputes
from broker.value.service import ValueLedger
from broker.value.views import ValueViews
from broker.voice.contacts import Contacts
from broker.voice.feedback import Feedback
from broker.voice.intents import Intents
from broker.voice.preferences import Preferences
from broker.webhooks.delivery import WebhookDelivery
from broker.webhooks.service import Webhooks
from broker.webhooks.signing import WebhookSecrets
from vault.held import HeldFields
from vault.keys import EnvKeyProvider, FileKeyProvider, KeyProvider
from vault.profile import Vault
from vault.sqltypes import utcnow


def key_provider(settings: Settings) -> KeyProvider:
    """The KEK provider the settings name."""
    if settings.key_provider == "env":
        assert settings.keks is not None and settings.blind_index_key is not None  # checked by Settings
        return EnvKeyProvider(settings.keks.get_secret_value(), settings.blind_index_key.get_secret_value())
    return FileKeyProvider(settings.data_dir / "keys")


def mail_transport(settings: Settings) -> Transport:
    """SMTP when `CONSENTRY_SMTP_URL` is set; otherwise the `.eml` sink under `<data_dir>/mail/`."""
    if settings.smtp_url is None:
        return EmlSink(sink_directory(settings.data_dir))
    return SmtpTransport.from_url(
        settings.smtp_url.get_secret_value(),
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
        ca_file=settings.smtp_ca_file,
    )


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a request or a command needs, built once."""

    settings: Settings
    engine: Engine
    reading_engine: Engine  # read-only requests' connections (broker.db.reading_engine), or `engine`
    sessions: SessionFactory
    read_sessions: SessionFactory  # for requests that only read: no write lock (broker.db)
    read_connections: ConnectionFactory  # for a request whose one statement only reads (broker.db)
    keys: KeyProvider
    vault: Vault
    accounts: Accounts
    account_deletion: AccountDeletion
    signin: SignIn
    activity: SecurityActivity
    customer_sessions: CustomerSessions
    password_changes: PasswordChanges
    recovery: Recovery
    profiles: CustomerProfiles
    oauth: OAuthServices
    offers: Offers
    directory: Directory
    preferences: Preferences
    preference_reads: PreferenceReads
    contacts: Contacts
    feedback: Feedback
    intents: Intents
    directory_pages: StampedCache[str, tuple[str, ...]]  # the portal's list pages (broker.portal.directory)
    grants: Grants
    grant_views: GrantViews
    reads: ProfileReads
    custody: Custody
    committer: GroupCommitter
    value: ValueLedger
    value_views: ValueViews
    disputes: Disputes
    acknowledgements: EndAcknowledgements
    dispute_views: DisputeViews
    export: CustomerExport
    audit: AuditLog
    checkpoints: Checkpoints
    access_log: AccessLog
    receipts: Receipts
    auditors: Auditors
    notices: Notices
    lifecycle: Lifecycle
    webhooks: Webhooks
    webhook_delivery: WebhookDelivery
    mail: Mail
    mail_delivery: MailDelivery
    verification: EmailVerification
    renewals: Renewals
    retention: Retention
    deletion_reports: DeletionReports
    clock: Callable[[], datetime]

    def dispose(self) -> None:
        """Close the connections of both pools (the writers' and, on PostgreSQL, the readers')."""
        self.engine.dispose()
        if self.reading_engine is not self.engine:
            self.reading_engine.dispose()


def _sign_in(settings: Settings, accounts: Accounts, vault: Vault, clock: Callable[[], datetime]) -> SignIn:
    challenges = Challenges(ttl=timedelta(seconds=settings.second_factor_ttl_seconds), clock=clock)
    passkeys = Passkeys(
        vault=vault,
        challenges=challenges,
        rp_id=settings.rp_id,
        rp_name=settings.webauthn_rp_name,
        origin=settings.origin,
        clock=clock,
    )
    return SignIn(
        accounts=accounts,
        challenges=challenges,
        passkeys=passkeys,
        totp=Totp(vault=vault, issuer=settings.webauthn_rp_name, clock=clock),
        recovery=RecoveryCodes(clock=clock),
        step_up_max_age=timedelta(seconds=settings.step_up_max_age_seconds),
        clock=clock,
    )


def build_runtime(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> Runtime:
    """Wire the services for `settings`; pass `engine` to share one (tests do): its pool then serves
    the reads too, and its owner disposes it."""
    import_models()
    if engine is None:
        pool_size, timeout = settings.database_pool_size, settings.database_timeout_seconds
        engine = create_db_engine(settings.resolved_database_url, pool_size=pool_size, timeout=timeout)
        reader = reading_engine(engine, pool_size=pool_size, timeout=timeout)
    else:
        reader = engine
    keys = key_provider(settings)
    vault = Vault(keys=keys, clock=clock, max_seals=settings.dek_max_seals)
    passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    throttle = Throttle(
        window=timedelta(seconds=settings.login_failure_window_seconds),
        lockout=timedelta(seconds=settings.login_lockout_seconds),
        max_delay=settings.login_max_delay_seconds,
        clock=clock,
    )
    audit = AuditLog(clock=clock, subject=partial(pairwise_subject, keys.blind_index_key()))
    notices = Notices()
    grants = Grants(
        clock=clock,
        audit=audit,
        notices=notices,
        end_ack_window=timedelta(hours=settings.end_acknowledgement_hours),
    )
    offers = Offers(clock=clock, audit=audit)
    sealed = SealedCopies(audit=audit, clock=clock)
    value = ValueLedger(clock=clock, audit=audit, vault=vault, grants=grants)
    activity = SecurityActivity(
        clock=clock, retention=timedelta(days=settings.security_activity_retention_days)
    )
    idle_timeout = timedelta(seconds=settings.session_idle_seconds)
    customer_sessions = CustomerSessions(clock=clock, idle_timeout=idle_timeout, activity=activity)
    accounts = Accounts(
        vault=vault,
        passwords=passwords,
        throttle=throttle,
        blind_key=keys.blind_index_key(),
        session_ttl=timedelta(seconds=settings.session_ttl_seconds),
        idle_timeout=idle_timeout,
        activity=activity,
        slowdown_after=settings.login_slowdown_after,
        max_failures_pair=settings.login_max_failures_pair,
        max_failures_address=settings.login_max_failures_address,
        account_slowdown_after=settings.login_account_slowdown_after,
        clock=clock,
        sleep=sleep,
    )
    signin = _sign_in(settings, accounts, vault, clock)
    oauth = OAuthServices(
        issuer=str(settings.base_url).rstrip("/"),
        signing=SigningKeys(settings.data_dir / "keys" / "signing", clock=clock),
        offers=offers,
        pairwise_key=keys.blind_index_key(),
        audit=audit,
        clock=clock,
        clients=ClientCache(signals_for(engine.url, BRANDS)),
    )
    audit_key = settings.audit_signing_key
    log_signer = load_signer(
        private_key=audit_key.get_secret_value() if audit_key else None,
        key_dir=settings.data_dir / "keys",
        origin=log_origin(str(settings.base_url)),
    )
    checkpoints = Checkpoints(signer=log_signer, clock=clock)
    access_log = AccessLog(checkpoints)
    preferences = Preferences(clock=clock, vault=vault, audit=audit, notices=notices)
    intents = Intents(clock=clock, vault=vault, audit=audit, blind_key=keys.blind_index_key())
    receipts = Receipts(
        clock=clock,
        issuer=oauth.issuer,
        signing=oauth.signing,
        grants=grants,
        access_log=access_log,
        preferences=preferences,
    )
    profiles, value_views = CustomerProfiles(accounts), ValueViews(ledger=value, clock=clock)
    webhook_secrets = WebhookSecrets(keys.blind_index_key())
    webhooks = Webhooks(
        clock=clock,
        secrets=webhook_secrets,
        subject=audit.subject,
        allow_private=settings.webhooks_allow_private,
        ticket=partial(ticket_for_notice, oauth),
    )
    # What follows a grant's transitions, in this order (`broker.consent.notices`): its receipts and
    # webhooks take the terms as they stand, then value and token families react.
    notices.subscribers.extend([receipts, webhooks, value, TokenFamilies(audit)])
    retention = Retention(clock=clock, audit=audit, grants=grants, vault=vault)
    renewals = Renewals(
        clock=clock, grants=grants, offers=offers, window=timedelta(days=settings.renewal_window_days)
    )
    mail = Mail(vault=vault, templates=Templates(), base_url=oauth.issuer, clock=clock)
    mail_delivery = MailDelivery(
        clock=clock, vault=vault, transport=mail_transport(settings), sender=settings.mail_from
    )
    signup_window = timedelta(seconds=settings.signup_window_seconds)
    verification = EmailVerification(
        accounts=accounts,
        codes=EmailCodes(clock=clock, ttl=timedelta(seconds=settings.email_code_ttl_seconds)),
        mail=mail,
        throttle=Throttle(
            window=signup_window,
            lockout=signup_window,
            max_delay=settings.login_max_delay_seconds,
            clock=clock,
        ),
        sends_per_address=settings.signup_max_per_address,
        wrong_codes_per_address=settings.verify_max_failures,
        clock=clock,
    )
    password_changes = PasswordChanges(
        passwords=passwords,
        throttle=throttle,
        sessions=customer_sessions,
        activity=activity,
        vault=vault,
        blind_key=keys.blind_index_key(),
        max_failures=settings.login_max_failures_pair,
    )
    activity.listeners.append(SecurityMail(vault=vault, mail=mail, activity=activity))
    notices.subscribers.append(DisputeMail(vault=vault, mail=mail))
    acknowledgements = EndAcknowledgements(clock=clock, audit=audit, grants=grants, issuer=oauth.issuer)
    disputes = Disputes(
        clock=clock,
        audit=audit,
        vault=vault,
        ledger=value,
        answer_window=timedelta(days=settings.dispute_answer_days),
        redelivery=timedelta(days=settings.dispute_redelivery_days),
    )
    committer = GroupCommitter(
        max_batch=settings.group_commit_max_batch,
        timeout=settings.group_commit_timeout_seconds,
        # No request threads on SQLite: reads' batches on the loop too. Never on PostgreSQL, where a read
        # in a batch may wait for a grant's row lock, held by a writer whose commit needs the loop
        # (FastAPI schedules a unit of work's thread calls from it): the loop would wait for itself.
        on_loop=settings.request_thread_count == 0 and settings.resolved_database_url.startswith("sqlite"),
    )

    def seconds() -> float:  # the runtime's clock, for the caches' ages
        return clock().timestamp()

    directory = Directory(
        clock=clock,
        vault=vault,
        offers=offers,
        grants=grants,
        # Brands' names and track records: at most 10,000 of about 1 KB, each for 60 s at most.
        records=StampedCache(oauth.clients.signals, ttl=60.0, size=10_000, clock=seconds),
        decline_window=timedelta(hours=settings.directory_decline_hours),
    )
    return Runtime(
        settings=settings,
        engine=engine,
        reading_engine=reader,
        sessions=session_factory(engine),
        read_sessions=read_session_factory(reader),
        read_connections=read_connection_factory(reader),
        keys=keys,
        vault=vault,
        accounts=accounts,
        account_deletion=AccountDeletion(
            accounts=accounts,
            grants=grants,
            audit=audit,
            vault=vault,
            receipts=receipts,
            issuer=oauth.issuer,
            mail=mail,
            delivery=mail_delivery,
        ),
        signin=signin,
        activity=activity,
        customer_sessions=customer_sessions,
        password_changes=password_changes,
        recovery=_recovery(settings, clock, accounts, signin, mail, password_changes),
        profiles=profiles,
        oauth=oauth,
        offers=offers,
        directory=directory,
        preferences=preferences,
        contacts=Contacts(clock=clock, preferences=preferences, audit=audit),
        feedback=Feedback(clock=clock, vault=vault, audit=audit, blind_key=keys.blind_index_key()),
        intents=intents,
        preference_reads=PreferenceReads(oauth=oauth, grants=grants, preferences=preferences, audit=audit),
        # While no listing and no brand changed, and no longer than a brand's track record is kept;
        # at most 256 pages of about 30 KB.
        directory_pages=StampedCache(
            signals_for(engine.url, LISTINGS),
            oauth.clients.signals,
            ttl=directory.records.ttl,
            size=256,
            clock=seconds,
        ),
        grants=grants,
        grant_views=GrantViews(
            grants=grants,
            renewals=renewals,
            value=value_views,
            access_log=access_log,
            receipts=receipts,
            vault=vault,
            clock=clock,
        ),
        reads=ProfileReads(
            vault=vault,
            grants=grants,
            value=value,
            audit=audit,
            oauth=oauth,
            committer=committer,
            sealed=sealed,
        ),
        custody=Custody(
            vault=vault,
            held=HeldFields(vault=vault, clock=clock),
            grants=grants,
            sealed=sealed,
            audit=audit,
            oauth=oauth,
            clock=clock,
            rp_id=settings.rp_id,
        ),
        committer=committer,
        value=value,
        value_views=value_views,
        disputes=disputes,
        dispute_views=DisputeViews(disputes=disputes, receipts=receipts),
        export=CustomerExport(
            profiles=profiles,
            grants=grants,
            value=value_views,
            receipts=receipts,
            signin=signin,
            preferences=preferences,
        ),
        audit=audit,
        checkpoints=checkpoints,
        access_log=access_log,
        receipts=receipts,
        auditors=Auditors(clock=clock),
        notices=notices,
        webhooks=webhooks,
        webhook_delivery=WebhookDelivery(
            clock=clock,
            secrets=webhook_secrets,
            allow_private=settings.webhooks_allow_private,
            retention=timedelta(days=settings.webhook_retention_days),
        ),
        mail=mail,
        verification=verification,
        mail_delivery=mail_delivery,
        lifecycle=Lifecycle(
            grants,
            retention,
            acknowledgements,
            prunes=[
                activity.prune,
                customer_sessions.prune,
                partial(prune_spent_tickets, clock),
                intents.prune,
            ],
        ),
        acknowledgements=acknowledgements,
        renewals=renewals,
        retention=retention,
        deletion_reports=DeletionReports(clock=clock),
        clock=clock,
    )


def _recovery(
    settings: Settings,
    clock: Callable[[], datetime],
    accounts: Accounts,
    signin: SignIn,
    mail: Mail,
    passwords: PasswordChanges,
) -> Recovery:
    """Password resets and sign-in links, with their own code lifetime and limits."""
    window = timedelta(seconds=settings.recovery_window_seconds)
    return Recovery(
        accounts=accounts,
        signin=signin,
        codes=EmailCodes(clock=clock, ttl=timedelta(seconds=settings.recovery_code_ttl_seconds)),
        mail=mail,
        throttle=Throttle(
            window=window, lockout=window, max_delay=settings.login_max_delay_seconds, clock=clock
        ),
        sessions=passwords.sessions,
        passwords=passwords,
        activity=passwords.activity,
        mails_per_address=settings.recovery_mails_per_address,
        requests_per_client=settings.recovery_requests_per_client,
        max_failures=settings.recovery_max_failures,
        clock=clock,
    )
