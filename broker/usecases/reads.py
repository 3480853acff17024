"""A brand reading a customer's profile: the token and the grant are checked live and the read is
recorded in the audit log, in the same transaction as the read itself: no read is served without its
entry. `serve` runs the read as a job of the `GroupCommitter`, which shares one transaction and one
commit among concurrent reads (`broker.audit.group_commit` argues why the ordering of a read and a
revocation still holds).

A read is the broker's hottest path, so the usual one (`_plainly_readable`) costs one query and no
savepoint: the grant (share-locked), the brand its token names, the token's family, whether the email
is confirmed, and the customer's key and fields for the vault to open. The reads of one batch share
that query (`_Read.prefetch`): one round trip for the batch, not one per read. It writes nothing but its
audit entry. Any other read (a refusal, a first read, a value check that is due) is `Rerouted` to a
batch right after its own, where it takes the slower road in a savepoint of its own (`isolated`):
the grant's row locked for writing, its ORM object checked check by check, to say precisely why,
or to write what it must.

The email is given only once its owner confirmed it: a read that includes `email` carries
`email_verified` beside it (true), or that flag alone (false) while the address is unconfirmed."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn
from uuid import UUID

from sqlalchemy import Uuid, and_, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from broker.accounts.models import Brand, Customer
from broker.audit.entries import Actor, Kind
from broker.audit.group_commit import GroupCommitter, Rerouted, isolated
from broker.audit.log import AuditLog
from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant, GrantStatus
from broker.consent.purposes import granted_purposes
from broker.consent.renewal import ensure_confirmed, reconfirm_by
from broker.consent.scopes import profile_fields
from broker.consent.sealed import SealedCopies
from broker.db import SessionFactory
from broker.errors import (
    ExpiredReadCounted,
    GrantExpired,
    GrantRevoked,
    InsufficientScope,
    NotAuthenticated,
    PurposeNotGranted,
    PurposeRequired,
    RevokedReadCounted,
    SealedCopyMissing,
)
from broker.oauth.bearer import access_for, verify_claims
from broker.oauth.context import OAuthServices
from broker.oauth.models import TokenFamily
from broker.value.service import ValueLedger
from vault.driver import DriverQuery
from vault.models import VaultField, VaultKey
from vault.profile import FIELD_COLUMNS, KEY_AND_FIELDS, Vault

# The grant a read's token names, row-locked on PostgreSQL (a revocation, an UPDATE, waits for the read's
# batch to commit, so the log orders the read before the revocation, as it happened), if the brand the
# token names owns it; with the state of the token's family. Built once: a statement's construction
# and cache key cost more than its round trip.
LIVE_GRANT = (
    select(Grant, col(TokenFamily.id), col(TokenFamily.revoked_at))
    .join(Brand, col(Brand.id) == col(Grant.brand_id))
    .outerjoin(TokenFamily, col(TokenFamily.id) == bindparam("family_id"))
    .where(col(Grant.id) == bindparam("grant_id"), col(Brand.client_id) == bindparam("client_id"))
    .with_for_update(of=Grant, key_share=True)
    .execution_options(populate_existing=True)
)

# The usual read's one query: the columns `_plainly_readable` checks and `_serve` uses, the token
# family's state, whether the email is confirmed, and the customer's vault key and field rows (one row
# per field: the grant's columns repeat). The grant's row is share-locked on PostgreSQL (FOR SHARE): a
# revocation still waits for the read's batch, but reads of one grant in other batches (other
# processes) do not. A read that must write goes on as `Rerouted`, and locks the row for writing in a
# batch of its own. Core, not ORM: no object to build for a read that changes nothing; and run on the
# driver's cursor (`vault.driver`): SQLAlchemy's Core cost as much as the query. One query, not one for
# the grant and one for the vault: a round trip fewer per read.
_PLAIN_COLUMNS: tuple[Any, ...] = (
    col(Grant.id),
    col(Grant.customer_id),
    col(Grant.brand_id),
    col(Grant.fields),
    col(Grant.purpose),
    col(Grant.purpose_fields),
    col(Grant.status),
    col(Grant.expires_at),
    col(Grant.value_check_at),
    col(Grant.first_read_at),
    col(Grant.last_confirmed_at),
    col(TokenFamily.id).label("family_id"),
    col(TokenFamily.revoked_at).label("family_revoked_at"),
    col(Customer.email_verified_at),
    *KEY_AND_FIELDS,
)


def _plain_query(
    family: Any, where: Any, *, order_by: tuple[Any, ...] = (), client_id: bool = False
) -> DriverQuery:
    """The plain read's query (`_PLAIN_COLUMNS`, share-locked grants) with its token family joined on
    `family` and its grants chosen by `where`; `client_id` adds the brand's client id first."""
    columns = ((col(Brand.client_id).label("client_id"),) if client_id else ()) + _PLAIN_COLUMNS
    return DriverQuery(
        sa_select(*columns)
        .select_from(Grant)
        .join(Brand, col(Brand.id) == col(Grant.brand_id))
        .outerjoin(TokenFamily, family)
        .outerjoin(Customer, col(Customer.id) == col(Grant.customer_id))
        .outerjoin(VaultKey, col(VaultKey.customer_id) == col(Grant.customer_id))
        .outerjoin(VaultField, col(VaultField.customer_id) == col(Grant.customer_id))
        .where(where)
        .order_by(*order_by)
        .with_for_update(of=Grant, read=True),
        repeated=len(columns) - len(FIELD_COLUMNS),  # the grant's side, the same beside each field
    )


_PLAIN_READ = _plain_query(
    col(TokenFamily.id) == bindparam("family_id"),
    and_(col(Grant.id) == bindparam("grant_id"), col(Brand.client_id) == bindparam("client_id")),
)

_Plain = Any  # a row of `_PLAIN_READ`: a named tuple of its columns

_PlainKey = tuple[UUID, UUID, str]  # what a plain read looks up: its grant, its token's family, its brand


@functools.lru_cache(maxsize=128)  # padded counts up to the largest batch (1,000 → 1,024): 11 by 11
def _plain_reads(grants: int, families: int) -> DriverQuery:
    """`_PLAIN_READ` for a batch's reads at once: the rows of `grants` grants (share-locked, in id order,
    as one read at a time locked them in a sorted batch), each beside the token families of
    `families` ids that are its own, and the brand's client id to tell the reads apart. Built once per
    pair of counts (powers of two: `_padded`): the batch's round trip, not one per read
    (`_Read.prefetch`)."""
    grant_ids = [bindparam(f"grant_{i}", type_=Uuid()) for i in range(grants)]  # the ids' column type
    family_ids = [bindparam(f"family_{i}", type_=Uuid()) for i in range(families)]
    family = and_(col(TokenFamily.id).in_(family_ids), col(TokenFamily.grant_id) == col(Grant.id))
    return _plain_query(
        family, col(Grant.id).in_(grant_ids), order_by=(col(Grant.id), col(TokenFamily.id)), client_id=True
    )


def _padded(ids: list[UUID]) -> list[UUID]:
    """`ids` to the next power of two, the last one repeated (an IN list takes repeats): batches of
    any size then share a few statements, and the cache of `_plain_reads` holds them all."""
    return ids + ids[-1:] * ((1 << (len(ids) - 1).bit_length()) - len(ids))


def grant_key(claims: dict[str, Any]) -> _PlainKey | None:
    """What a customer's token reads (its grant, its family, its brand); None for a brand's token."""
    grant_id, family_id = claims.get("grant_id"), claims.get("fam")
    if grant_id is None or family_id is None:
        return None
    return UUID(str(grant_id)), UUID(str(family_id)), str(claims.get("client_id"))


_EMAIL_VERIFIED = select(Customer.id).where(
    col(Customer.id) == bindparam("customer_id"), col(Customer.email_verified_at).is_not(None)
)


@dataclass(frozen=True, slots=True)
class ProfileReads:
    """Serve `GET /v1/profile`."""

    vault: Vault
    grants: Grants
    value: ValueLedger
    audit: AuditLog
    oauth: OAuthServices
    committer: GroupCommitter
    sealed: SealedCopies

    def serve(
        self, sessions: SessionFactory, token: str, *, request_id: str | None, purpose: str | None = None
    ) -> dict[str, Any]:
        """Verify the bearer `token` and read, for `purpose` (see `_for_purpose`), in a batch of
        concurrent reads; answered once the batch (and so this read's entry) is committed."""
        return self.committer.run(
            self._job(token, purpose),
            sessions=sessions,
            request_id=request_id,
            order=_grant_hint(token),
            isolates=True,
        )

    async def serve_async(
        self, sessions: SessionFactory, token: str, *, request_id: str | None, purpose: str | None = None
    ) -> dict[str, Any]:
        """`serve`, awaited from the event loop without holding a thread while the batch commits."""
        return await self.committer.run_async(
            self._job(token, purpose),
            sessions=sessions,
            request_id=request_id,
            order=_grant_hint(token),
            isolates=True,
        )

    def _job(self, token: str, purpose: str | None = None) -> _Read:
        return _Read(self, token, purpose)

    def read(
        self,
        session: Session,
        token: str,
        *,
        purpose: str | None = None,
        fetched: list[_Plain] | None = None,
    ) -> dict[str, Any]:
        """The granted fields (derived ones computed), if the token and its grant are live; recorded in
        the audit log. A job that `isolates` itself: the plain read writes nothing but its entry, and
        the rest runs in a savepoint of its own. `fetched`: this read's rows of `_PLAIN_READ`, when its
        batch read them already (`_Read.prefetch`)."""
        claims = verify_claims(self.oauth, token)
        key = grant_key(claims)
        if key is None:
            access_for(session, claims)  # a brand token: 401 if revoked or orphaned
            raise InsufficientScope(
                "this is a brand token; reading a profile needs a token from the customer's consent"
            )
        params = {"grant_id": key[0], "family_id": key[1], "client_id": key[2]}
        rows = _PLAIN_READ.all(session.connection(), params) if fetched is None else fetched
        if rows and _plainly_readable(rows[0], self.grants.clock()):
            chosen = _for_purpose(rows[0], claims, purpose, quietly=True)
            if chosen is not None:
                verified = rows[0].email_verified_at is not None
                return self._serve(session, claims, rows[0], chosen, email_verified=verified, fetched=rows)
        raise Rerouted(lambda later: self._read_checked(later, claims, params, purpose))

    def _read_checked(
        self, session: Session, claims: dict[str, Any], params: dict[str, Any], purpose: str | None
    ) -> dict[str, Any]:
        """The read that may refuse or write, in a savepoint of its own: through the grant's ORM object
        (its row write-locked), check by check."""
        with isolated(session):
            return self._check_and_serve(session, claims, params, purpose, self.grants.clock())

    def _check_and_serve(
        self,
        session: Session,
        claims: dict[str, Any],
        params: dict[str, Any],
        purpose: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        found = session.exec(LIVE_GRANT, params=params).first()
        if found is None:
            access_for(session, claims)  # 401 if the brand is gone
            raise NotAuthenticated("the grant behind this token no longer exists")
        grant, family, family_revoked_at = found
        status = effective_status(grant, now)
        if status in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED):
            self.value.before_read(session, grant)
        else:
            _refuse_after_end(session, self.grants, grant)
        self.grants.ensure_live(grant)
        ensure_confirmed(grant, now)
        if family is None or family_revoked_at is not None:
            raise NotAuthenticated("the access token has been revoked")
        try:
            chosen = _for_purpose(grant, claims, purpose)
            assert chosen is not None, "refused loudly when not quietly"
        except PurposeNotGranted as refused:  # a refused read, logged as one
            self.audit.record(
                session,
                Kind.PROFILE_READ_REFUSED,
                actor=Actor.BRAND,
                customer_id=grant.customer_id,
                brand_id=grant.brand_id,
                grant=grant.id,
                purpose=refused.extensions["purpose"],
                reason="purpose-not-granted",
            )
            raise
        self.value.read_served(session, grant)
        verified = "email" in grant.fields and (
            session.exec(_EMAIL_VERIFIED, params={"customer_id": grant.customer_id}).first() is not None
        )
        return self._serve(session, claims, grant, chosen, email_verified=verified)

    def _serve(
        self,
        session: Session,
        claims: dict[str, Any],
        grant: Grant | _Plain,
        chosen: tuple[str, list[str]],
        *,
        email_verified: bool,
        fetched: list[_Plain] | None = None,
    ) -> dict[str, Any]:
        """Decrypt what the grant grants for the `chosen` purpose and the token names (from the vault
        rows `fetched` with the grant, if they were), and record the read with its purpose."""
        purpose, for_purpose = chosen
        asked = set(profile_fields(str(claims.get("scope", ""))))
        fields = [f for f in for_purpose if f in asked]  # a narrowed grant wins over an older token
        held = (
            fetched[0].held_dek_version is not None
            if fetched
            else self.vault.is_held(session, grant.customer_id)
        )
        if held:
            return self._serve_sealed(session, claims, grant, purpose, for_purpose, fields)
        values = self.vault.read(session, grant.customer_id, fields, fetched=fetched)
        if "email" in fields:  # an address nobody confirmed is never handed out
            if not email_verified:
                values.pop("email", None)
            values["email_verified"] = email_verified
        self._record_read(session, grant, fields, purpose)
        return {"sub": claims["sub"], "grant_id": grant.id, "purpose": purpose, "fields": values}

    def _record_read(self, session: Session, grant: Grant | _Plain, fields: list[str], purpose: str) -> None:
        """The read's entry: the same whether the fields went plain or sealed."""
        self.audit.record(
            session,
            Kind.PROFILE_READ,
            actor=Actor.BRAND,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
            fields=fields,
            purpose=purpose,
        )

    def _serve_sealed(
        self,
        session: Session,
        claims: dict[str, Any],
        grant: Grant | _Plain,
        purpose: str,
        for_purpose: list[str],
        fields: list[str],
    ) -> dict[str, Any]:
        """A self-custody grant's read: the copy the customer's browser sealed to the brand for this
        purpose (`broker.consent.sealed`), recorded as any read is. The copy holds every field the
        grant gives the purpose, so the token must ask for them all."""
        if len(fields) != len(for_purpose):
            raise InsufficientScope(
                "this grant's fields are sealed by the customer as a whole; the token must carry the scope "
                f"of every field granted for {purpose}: {', '.join(for_purpose)}"
            )
        copy = self.sealed.for_read(session, grant.id, purpose)
        if copy is None:
            raise SealedCopyMissing(
                "the customer holds the key to this profile and has not sealed this grant's fields for "
                f"{purpose} yet; they are sealed when the customer next opens Consentry"
            )
        brand = session.get(Brand, grant.brand_id)
        if brand is None or copy.kid not in brand.encryption_kids():
            raise SealedCopyMissing(
                f"this grant's fields are sealed to a key you no longer have registered ({copy.kid}); they "
                "are sealed to your current key when the customer next opens Consentry"
            )
        self._record_read(session, grant, fields, purpose)
        return {
            "sub": claims["sub"],
            "grant_id": grant.id,
            "purpose": purpose,
            "fields": {},
            "sealed": copy.jwe,
            "grant_version": copy.version,
        }


@dataclass(eq=False, slots=True)
class _Read:
    """A profile read as a job of the group committer. The reads of a batch look up their grants
    together (`prefetch`), each then reads on with its own rows (`fetched`)."""

    reads: ProfileReads
    token: str
    purpose: str | None = None
    fetched: list[_Plain] | None = None

    def __call__(self, session: Session) -> dict[str, Any]:
        return self.reads.read(session, self.token, purpose=self.purpose, fetched=self.fetched)

    def key(self) -> _PlainKey | None:
        """What this read looks up, if its token is a valid customer's token (the check is cached, so
        the read's own costs nothing more); else None. Whatever a token does, it fails its own read
        (`ProfileReads.read` checks it again), never its batch's lookup."""
        try:
            return grant_key(verify_claims(self.reads.oauth, self.token))
        except Exception:
            return None

    @staticmethod
    def prefetch(session: Session, jobs: list[_Read]) -> None:
        """Read the rows of every plain read of the batch in one query (`_plain_reads`). A job whose
        token is not a valid customer's token, or whose grant, family and brand the query did not find
        together, is left without: it reads (and is refused) alone, as it would have."""
        wanted: dict[_PlainKey, list[_Read]] = {}
        for job in jobs:
            key = job.key()
            if key is not None:
                wanted.setdefault(key, []).append(job)
        if not wanted:
            return
        grants = _padded(sorted({grant_id for grant_id, _, _ in wanted}))
        families = _padded(sorted({family_id for _, family_id, _ in wanted}))
        params: dict[str, Any] = {f"grant_{i}": grant_id for i, grant_id in enumerate(grants)}
        params.update({f"family_{i}": family_id for i, family_id in enumerate(families)})
        found: dict[_PlainKey, list[_Plain]] = {}
        for row in _plain_reads(len(grants), len(families)).all(session.connection(), params):
            found.setdefault((row.id, row.family_id, row.client_id), []).append(row)
        for key, readers in wanted.items():
            rows = found.get(key)
            for job in readers:
                job.fetched = rows


def _refuse_after_end(session: Session, grants: Grants, grant: Grant) -> NoReturn:
    """Refuse a read of an ended grant, and count the attempt on the grant (the deletion report shows
    brands that still try): the count is kept although the read is refused."""
    grant.reads_after_end += 1
    session.add(grant)
    try:
        grants.ensure_live(grant)
    except GrantRevoked as refused:
        raise RevokedReadCounted(refused.detail, **refused.extensions) from None
    except GrantExpired as refused:
        raise ExpiredReadCounted(refused.detail, **refused.extensions) from None
    raise AssertionError("an ended grant is refused")  # pragma: no cover


def _for_purpose(
    grant: Grant | _Plain, claims: dict[str, Any], asked: str | None, *, quietly: bool = False
) -> tuple[str, list[str]] | None:
    """The purpose a read is for, and the fields granted for it: the one `asked` (`?purpose=`), or the
    one the token was issued for (its `purpose` claim), or the grant's only one. A grant of several
    needs the read to say which (400 `purpose-required`); a purpose not granted, or not the token's, is
    403 `purpose-not-granted`. `quietly`: None instead of raising (the plain path then reroutes, and
    the checked path refuses, logging it)."""
    bound = claims.get("purpose")
    wanted = asked or bound
    if grant.purpose_fields is None and wanted in (None, grant.purpose):  # the usual read: one purpose
        return grant.purpose, grant.fields
    granted = granted_purposes(grant.purpose, grant.fields, grant.purpose_fields)
    try:
        if bound is not None and wanted != bound:
            raise PurposeNotGranted(
                f"this access token was issued for the purpose {bound!r} only; read for {wanted!r} with a "
                "token for that purpose, or with one for no purpose in particular",
                purpose=str(wanted),
                granted=sorted(granted),
            )
        if wanted is None:
            if len(granted) == 1:
                wanted = next(iter(granted))
            else:
                raise PurposeRequired(
                    f"grant '{grant.id}' covers several purposes ({', '.join(granted)}): say which this "
                    "read is for with ?purpose=",
                    granted=list(granted),
                )
        if wanted not in granted:
            raise PurposeNotGranted(
                f"grant '{grant.id}' does not cover the purpose {wanted!r}; it covers "
                f"{', '.join(granted)}: read for one of them",
                purpose=str(wanted),
                granted=list(granted),
            )
    except (PurposeNotGranted, PurposeRequired):
        if quietly:
            return None
        raise
    return str(wanted), granted[str(wanted)]


def _plainly_readable(grant: _Plain, now: datetime) -> bool:
    """Whether every check of the read passes at `now` with nothing to write: the grant active and
    unexpired, no value due for a look, read before (the first read is remembered), no reconfirmation
    due, the token's family live. Anything else takes `_read_checked`, which says why or writes."""
    if grant.status is not GrantStatus.ACTIVE or now >= grant.expires_at:
        return False
    if grant.value_check_at is not None and now >= grant.value_check_at:
        return False
    due = reconfirm_by(grant)
    return (
        grant.first_read_at is not None
        and (due is None or now < due)
        and grant.family_id is not None
        and grant.family_revoked_at is None
    )


def _grant_hint(token: str) -> str:
    """The grant id a JWT's payload names, unverified: only to order the locks of a batch."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return ""
    return str(claims.get("grant_id", "")) if isinstance(claims, dict) else ""
