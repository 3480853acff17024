"""Verify a Consentry consent receipt bundle offline, trusting only keys the auditor chose. A deletion
receipt (an account's erasure: typ `deletion-receipt+jwt`, format `consentry-deletion-receipt/1`) is
checked the same way, against its `account.deleted` entry.

A bundle (`GET /v1/me/receipts/{id}`, or `/v1/grants/{id}/receipts` for brands) holds the receipt as
a compact JWS, the public JWK that signed it, the audit entry it names with an RFC 9162 inclusion
proof, and the signed checkpoint that proof leads to. `verify_receipt` checks:

1. the JWS: alg Ed25519, typ `consent-receipt+jwt`, signed by a *trusted* key: one with its `kid` in
   a JWKS the auditor supplied (fetched from `/.well-known/jwks.json`, or an archived copy once the
   key was rotated out), or the bundle's own JWK if its RFC 7638 thumbprint was pinned. The bundle's
   JWK alone is never trusted: whoever forged the receipt could have put their own key there;
2. that the decoded copy in the bundle, if any, is the signed payload;
3. that the entry's bytes hash (SHA-256(0x00 ‖ entry)) to the leaf hash the receipt names, at the index
   it names, and say what the receipt says: kind, grant, brand, subject, time, actor, for given and
   amended receipts the fields, purpose and expiry, and for an auditor's decision (`dispute-decided`)
   the escalation, obligation, outcome, auditor, deadline and the SHA-256 of the reasons, and for the
   brand's acknowledgement of the end (`end-acknowledged`) its times, method and deadline;
4. that the checkpoint note is signed by the pinned log key and names the receipt's log, and that the
   inclusion proof leads from the entry to its root;
5. for an acknowledgement the brand signed, that its JWS verifies with the key the receipt names and
   states the same grant, client and times.

Problems are collected, not raised: `ReceiptReport.problems` is empty when everything held.

Later, `check_still_logged` takes a newer checkpoint and the consistency proof to it (an auditor fetches
both: `consentry-audit receipt verify --url … --token …`): the log only grew since the receipt's
checkpoint, so its entry is still there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, OKPKey
from pydantic import BaseModel, ValidationError

from clients.auditor.tlog import (
    Checkpoint,
    NoteError,
    Verifier,
    leaf_hash,
    open_note,
    parse_checkpoint,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "DELETION_FORMAT",
    "DELETION_TYPE",
    "RECEIPT_FORMAT",
    "RECEIPT_TYPE",
    "ReceiptReport",
    "check_brand_statement",
    "check_still_logged",
    "verify_receipt",
]

RECEIPT_FORMAT = "consentry-receipt/1"
RECEIPT_TYPE = "consent-receipt+jwt"
DELETION_FORMAT = "consentry-deletion-receipt/1"  # an account's deletion: the same checks, another type
DELETION_TYPE = "deletion-receipt+jwt"
_FORMATS = {RECEIPT_TYPE: RECEIPT_FORMAT, DELETION_TYPE: DELETION_FORMAT}
_ALGORITHM = "Ed25519"
_KINDS = {
    "given": "grant.created",
    "amended": "grant.amended",
    "renewed": "grant.renewed",
    "withdrawn": "grant.revoked",
    "revoked": "grant.revoked",
    "expired": "grant.expired",
    "dispute-decided": "dispute.decided",
    "end-acknowledged": "grant.end_acknowledged",
    "account-deleted": "account.deleted",
}
_BRAND_ALGORITHMS = ["Ed25519", "ES256", "RS256", "PS256"]


class _Entry(BaseModel):
    index: int
    entry: str
    inclusion_proof: list[str]


class _Bundle(BaseModel):
    jws: str
    signing_key: dict[str, Any] | None = None
    receipt: dict[str, Any] | None = None
    audit_entry: _Entry
    checkpoint: str
    preferences: dict[str, Any] | None = None  # the owner's copy: the record the receipt's digest binds
    preferences_salt: str | None = None  # and its salt


@dataclass
class ReceiptReport:
    """What `verify_receipt` found: the verified claims, and every problem (none when it verified)."""

    problems: list[str] = field(default_factory=list)
    claims: dict[str, Any] | None = None
    kid: str | None = None
    key_source: str | None = None  # "jwks" or "pinned thumbprint"
    typ: str | None = None  # consent-receipt+jwt, or deletion-receipt+jwt
    tree_size: int | None = None
    checkpoint: Checkpoint | None = None  # the bundle's, once its signature verified
    later: Checkpoint | None = None  # a later one it was shown consistent with (`check_still_logged`)

    @property
    def verified(self) -> bool:
        """True when every check passed."""
        return not self.problems and self.claims is not None


def verify_receipt(
    document: Mapping[str, Any],
    *,
    log_key: Verifier,
    jwks: Sequence[Mapping[str, Any]] = (),
    thumbprints: Sequence[str] = (),
) -> ReceiptReport:
    """Check a receipt bundle against the trusted signing keys (`jwks`: JWK dicts, `thumbprints`:
    pinned RFC 7638 thumbprints of keys the bundle may carry) and the pinned log key."""
    report = ReceiptReport()
    try:
        bundle = _Bundle.model_validate(document)
    except ValidationError as exc:
        report.problems.append(f"not a receipt bundle: {exc.error_count()} problem(s), first: {_first(exc)}")
        return report
    claims = _signed_claims(bundle, jwks, thumbprints, report)
    if claims is None:
        return report
    report.claims = claims
    if bundle.receipt is not None and bundle.receipt != claims:
        report.problems.append("the decoded receipt in the bundle differs from the signed one")
    expected = _FORMATS[str(report.typ)]
    if claims.get("version") != expected:
        report.problems.append(f"unknown receipt format {claims.get('version')!r}; expected {expected}")
        return report
    if (report.typ == DELETION_TYPE) != (claims.get("event") == "account-deleted"):
        report.problems.append(
            f"a {report.typ} receipt cannot be about {claims.get('event')!r}: an account's deletion has its "
            "own type, and only it"
        )
        return report
    entry = _check_entry(bundle, claims, report)
    if entry is not None:
        _check_inclusion(bundle, claims, entry, log_key, report)
    check_brand_statement(claims, report)
    _check_preferences(bundle, claims, report)
    return report


def _check_preferences(bundle: _Bundle, claims: Mapping[str, Any], report: ReceiptReport) -> None:
    """A bundle that carries the customer's preferences must carry the very record the receipt binds:
    SHA-256 of its canonical JSON with its salt as one more member (keys sorted, no spaces),
    base64url, is `preferences.sha256`."""
    bound = claims.get("preferences")
    if bundle.preferences is None or not isinstance(bound, Mapping):
        return
    members = {**bundle.preferences, "salt": bundle.preferences_salt or ""}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    found = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(found, str(bound.get("sha256", ""))):
        report.problems.append("the preferences in the bundle are not the ones the receipt binds")


def _signed_claims(
    bundle: _Bundle,
    jwks: Sequence[Mapping[str, Any]],
    thumbprints: Sequence[str],
    report: ReceiptReport,
) -> dict[str, Any] | None:
    """The JWS payload if a trusted key signed it, else None with the reason in `report`."""
    try:
        header = jws.extract_compact(bundle.jws.encode()).headers()
    except (JoseError, ValueError) as exc:
        report.problems.append(f"the receipt is not a compact JWS: {exc}")
        return None
    typ = header.get("typ")
    if header.get("alg") != _ALGORITHM or not isinstance(typ, str) or typ not in _FORMATS:
        report.problems.append(
            f"the JWS header says alg {header.get('alg')!r}, typ {header.get('typ')!r}: "
            f"a receipt is alg {_ALGORITHM}, typ {RECEIPT_TYPE} (or {DELETION_TYPE}, an account's deletion)"
        )
        return None
    report.typ = typ
    kid = str(header.get("kid", ""))
    report.kid = kid
    key = _trusted_key(kid, bundle.signing_key, jwks, thumbprints, report)
    if key is None:
        return None
    try:
        payload = jws.deserialize_compact(bundle.jws, key, algorithms=[_ALGORITHM]).payload
        claims = json.loads(payload)
    except (JoseError, ValueError) as exc:
        report.problems.append(f"the receipt's signature does not verify with key {kid!r}: {exc}")
        return None
    if not isinstance(claims, dict):
        report.problems.append("the receipt's payload is not a JSON object")
        return None
    return claims


def _trusted_key(
    kid: str,
    embedded: Mapping[str, Any] | None,
    jwks: Sequence[Mapping[str, Any]],
    thumbprints: Sequence[str],
    report: ReceiptReport,
) -> OKPKey | None:
    """The key to check the signature with: from the supplied JWKS by kid, else the bundle's own key if
    its thumbprint is pinned. A bundle key that contradicts the JWKS is a problem in itself."""
    bundled = _import(embedded) if embedded is not None else None
    for candidate in jwks:
        if candidate.get("kid") == kid:
            key = _import(candidate)
            if key is None:
                break
            if bundled is not None and bundled.thumbprint() != key.thumbprint():
                report.problems.append(f"the bundle's signing key differs from key {kid!r} in the JWKS given")
                return None
            report.key_source = "jwks"
            return key
    if bundled is not None and bundled.kid == kid and bundled.thumbprint() in thumbprints:
        report.key_source = "pinned thumbprint"
        return bundled
    report.problems.append(
        f"the receipt is signed by key {kid!r}, which is not in the JWKS given"
        + (" and whose thumbprint is not pinned" if embedded is not None else "")
        + ": pass the broker's JWKS (or an archived copy) with --jwks, or pin the key with --thumbprint"
    )
    return None


def _import(jwk: Mapping[str, Any]) -> OKPKey | None:
    """An Ed25519 public key from a JWK, or None for anything else (never a private key's secret)."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    try:
        return OKPKey.import_key({k: v for k, v in jwk.items() if k != "d"})
    except (JoseError, ValueError):
        return None


def _check_entry(bundle: _Bundle, claims: Mapping[str, Any], report: ReceiptReport) -> bytes | None:
    """The entry's bytes if they are the entry the receipt names and say what it says."""
    audit = claims.get("audit") or {}
    try:
        entry = base64.b64decode(bundle.audit_entry.entry, validate=True)
        named_leaf = base64.b64decode(str(audit.get("leaf_hash")), validate=True)
    except (binascii.Error, ValueError):
        report.problems.append("the audit entry or the receipt's leaf hash is not base64")
        return None
    if audit.get("index") != bundle.audit_entry.index:
        report.problems.append(
            f"the receipt names audit entry {audit.get('index')}, "
            f"the bundle carries entry {bundle.audit_entry.index}"
        )
        return None
    if leaf_hash(entry) != named_leaf:
        report.problems.append("the audit entry's bytes do not hash to the leaf hash the receipt names")
        return None
    try:
        event = json.loads(entry)
    except ValueError:
        report.problems.append("the audit entry is not JSON")
        return None
    contradictions = [
        f"the receipt's {what} is {said!r} but its audit entry says {logged!r}"
        for what, said, logged in _comparisons(claims, event)
        if said != logged
    ]
    report.problems += contradictions
    return None if contradictions else entry


def _comparisons(claims: Mapping[str, Any], event: Mapping[str, Any]) -> list[tuple[str, object, object]]:
    """(what, the receipt's value, the entry's value) for each thing both state."""
    controller = claims.get("controller") or {}
    pairs: list[tuple[str, object, object]] = [
        ("event", _KINDS.get(str(claims.get("event"))), event.get("kind")),
        ("record_id (grant)", claims.get("record_id"), event.get("grant")),
        ("controller id (brand)", controller.get("id"), event.get("brand")),
        ("subject", claims.get("subject"), event.get("subject")),
        ("event_time", claims.get("event_time"), event.get("at")),
        ("event_by", claims.get("event_by"), event.get("actor")),
    ]
    if "fields" in event:  # given, amended and renewed consent's entries carry the terms
        purposes = claims.get("purposes") or [{}]
        fields = [item.get("field") for item in claims.get("personal_data") or []]
        pairs += [
            ("fields", fields, event.get("fields")),
            ("purpose", purposes[0].get("purpose"), event.get("purpose")),
            ("expiry", (claims.get("duration") or {}).get("until"), event.get("expires_at")),
        ]
    elif claims.get("event") in ("given", "amended", "renewed"):
        pairs.append(("terms", "in the entry", "absent"))
    if claims.get("event") == "dispute-decided":  # an auditor's decision: the entry records the same
        decision = claims.get("decision") or {}
        pairs += [
            ("decision's escalation", decision.get("escalation"), event.get("escalation")),
            ("decision's obligation", decision.get("obligation"), event.get("obligation")),
            ("decision's outcome", decision.get("outcome"), event.get("outcome")),
            ("decision's auditor", (decision.get("decided_by") or {}).get("id"), event.get("auditor")),
            ("decision's reasons_sha256", decision.get("reasons_sha256"), event.get("reasons_sha256")),
            ("decision's redeliver_by", decision.get("redeliver_by"), event.get("redeliver_by")),
        ]
    if claims.get("event") == "end-acknowledged":  # the brand's statement: the entry records its terms
        said = claims.get("acknowledgement") or {}
        pairs += [
            (
                "acknowledgement's stopped_processing_at",
                said.get("stopped_processing_at"),
                event.get("stopped_at"),
            ),
            ("acknowledgement's deletion_by", said.get("deletion_by"), event.get("deletion_by")),
            ("acknowledgement's method", said.get("method"), event.get("method")),
            ("acknowledgement's deadline", said.get("acknowledge_by"), event.get("due_at")),
        ]
    return pairs


def check_brand_statement(claims: Mapping[str, Any], report: ReceiptReport) -> None:
    """An acknowledgement the brand signed: its JWS verifies with the key the receipt names, and says
    what the receipt says (the broker signed that this key was the brand's registered key)."""
    said = claims.get("acknowledgement") or {}
    if claims.get("event") != "end-acknowledged" or said.get("method") != "signed":
        return
    try:
        key = JWKRegistry.import_key(said.get("brand_key") or {})
        signed = jws.deserialize_compact(str(said.get("statement")), key, algorithms=_BRAND_ALGORITHMS)
        stated = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError):
        report.problems.append("the brand's signed statement does not verify with the key the receipt names")
        return
    expected = {
        "grant_id": claims.get("record_id"),
        "iss": (claims.get("controller") or {}).get("client_id"),
    }
    for name, value in expected.items():
        if stated.get(name) != value:
            report.problems.append(
                f"the brand's statement says {name} {stated.get(name)!r}, the receipt {value!r}"
            )
    for name in ("stopped_processing_at", "deletion_by"):
        if not _same_instant(stated.get(name), said.get(name)):
            report.problems.append(
                f"the brand's statement says {name} {stated.get(name)!r}, the receipt {said.get(name)!r}"
            )


def _same_instant(a: object, b: object) -> bool:
    try:
        return datetime.fromisoformat(str(a).replace("Z", "+00:00")) == datetime.fromisoformat(
            str(b).replace("Z", "+00:00")
        )
    except ValueError:
        return False


def _check_inclusion(
    bundle: _Bundle, claims: Mapping[str, Any], entry: bytes, log_key: Verifier, report: ReceiptReport
) -> None:
    """The checkpoint is signed by the pinned key, names the receipt's log, and the proof reaches it."""
    try:
        checkpoint = parse_checkpoint(open_note(bundle.checkpoint, [log_key]))
    except NoteError as exc:
        report.problems.append(f"the checkpoint does not verify with the pinned log key: {exc}")
        return
    report.tree_size, report.checkpoint = checkpoint.size, checkpoint
    log = (claims.get("audit") or {}).get("log")
    if checkpoint.origin != log:
        report.problems.append(
            f"the receipt names the log {log!r} but the checkpoint is of {checkpoint.origin!r}"
        )
    try:
        proof = [base64.b64decode(node, validate=True) for node in bundle.audit_entry.inclusion_proof]
    except (binascii.Error, ValueError):
        report.problems.append("the inclusion proof is not base64")
        return
    if not verify_inclusion(
        leaf_hash(entry), bundle.audit_entry.index, checkpoint.size, proof, checkpoint.root_hash
    ):
        report.problems.append(
            f"the inclusion proof does not lead from entry {bundle.audit_entry.index} to the root of the "
            f"checkpoint of {checkpoint.size} entries"
        )


def check_still_logged(
    report: ReceiptReport, later_note: str, proof: Sequence[bytes], log_key: Verifier
) -> None:
    """After `verify_receipt`: a later checkpoint of the same log, signed by the pinned key, and the
    RFC 9162 consistency proof from the bundle's checkpoint to it show the log only grew since, so the
    receipt's entry is still in it (at the same index, with the same bytes). Problems go to `report`;
    `report.later` is the later checkpoint when it held."""
    earlier = report.checkpoint
    if earlier is None or not report.verified:
        report.problems.append("the receipt did not verify offline: there is no checkpoint to extend")
        return
    try:
        later = parse_checkpoint(open_note(later_note, [log_key]))
    except NoteError as exc:
        report.problems.append(f"the later checkpoint does not verify with the pinned log key: {exc}")
        return
    if later.origin != earlier.origin:
        report.problems.append(f"the later checkpoint is of {later.origin!r}, not of {earlier.origin!r}")
    elif later.size < earlier.size:
        report.problems.append(
            f"the later checkpoint has {later.size} entries, fewer than the receipt's {earlier.size}: "
            "the log was rolled back"
        )
    elif not verify_consistency(earlier.size, later.size, earlier.root_hash, later.root_hash, proof):
        report.problems.append(
            f"the consistency proof does not show the log of {later.size} entries extends the receipt's "
            f"checkpoint of {earlier.size}: the log was rewritten since"
        )
    else:
        report.later = later


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'/'.join(str(part) for part in error['loc'])}: {error['msg']}"
