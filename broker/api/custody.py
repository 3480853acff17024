"""The self-custody API: the customer's browser moves the key of the profile into the customer's hands
and back, stores the fields it sealed, and seals the grants to their brands (`broker.usecases.custody`).

Moving the key either way needs a fresh sign-in, as deleting the account does: it is the one change
after which the broker cannot help a customer who loses their keys."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from broker.api.contract import FRESH_SESSION_PROBLEMS, problems
from broker.api.custody_schemas import (
    CustodyView,
    HeldFieldsIn,
    HoldIn,
    OfferSealing,
    ReleaseIn,
    SealsIn,
    UnlockIn,
)
from broker.consent.models import Offer
from broker.errors import (
    CrossSiteRefused,
    GrantsUnsealable,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    ProfileHeld,
    ProfileNotHeld,
    RequestTooLarge,
    ValidationFailed,
)
from broker.usecases.custody import seals_of
from broker.web.deps import CurrentCustomer, DbSession, FreshSession, RuntimeDep

router = APIRouter(prefix="/v1/me/custody", tags=["customer"])

_READ: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated)
}
_BODY: dict[int | str, dict[str, Any]] = {
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 4 MiB", RequestTooLarge),
    422: problems(
        "Invalid input: a field, a ciphertext, an unlock or a sealed copy; `errors` points at each",
        ValidationFailed,
    ),
}
_WRITE: dict[int | str, dict[str, Any]] = {
    **_READ,
    403: problems("Cross-site request refused", CrossSiteRefused),
    **_BODY,
}
_NOT_HELD = problems("The profile is in Consentry's custody: move it to self-custody first", ProfileNotHeld)


@router.get("", operation_id="getMyCustody", responses=_READ)
def get_custody(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> CustodyView:
    """Who holds the key of your profile; in self-custody, the held vault (ciphertexts and wrapped
    keys) for your browser to open; and your live grants with what sealing each to its brand takes."""
    return CustodyView.model_validate(runtime.custody.view(db, customer.id))


@router.post(
    "/hold",
    operation_id="holdMyProfile",
    responses={
        **FRESH_SESSION_PROBLEMS,
        **_BODY,
        409: problems(
            "Already in self-custody, or a live grant's brand cannot receive sealed data (end it first)",
            ProfileHeld,
            GrantsUnsealable,
        ),
    },
)
def hold(
    body: HoldIn, customer: CurrentCustomer, _: FreshSession, db: DbSession, runtime: RuntimeDep
) -> CustodyView:
    """Move your profile to self-custody: from now on only your passkeys and your recovery key open it.
    Lose them all and nobody, Consentry included, can open it again. Needs a fresh sign-in."""
    runtime.custody.hold(
        db,
        customer.id,
        fields=body.fields,
        unlocks=[unlock.unlock() for unlock in body.unlocks],
        seals=seals_of(body.grants),
    )
    return CustodyView.model_validate(runtime.custody.view(db, customer.id))


@router.post(
    "/release",
    operation_id="releaseMyProfile",
    responses={**FRESH_SESSION_PROBLEMS, **_BODY, 409: _NOT_HELD},
)
def release(
    body: ReleaseIn, customer: CurrentCustomer, _: FreshSession, db: DbSession, runtime: RuntimeDep
) -> CustodyView:
    """Give your profile back to Consentry's custody, with its values as your browser opened them; your
    grants' sealed copies are deleted and brands read as before. Needs a fresh sign-in."""
    runtime.custody.release(db, customer.id, body.fields)
    return CustodyView.model_validate(runtime.custody.view(db, customer.id))


@router.put("/fields", operation_id="putMyHeldFields", responses={**_WRITE, 409: _NOT_HELD})
def put_fields(
    body: HeldFieldsIn, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> CustodyView:
    """Store fields your browser sealed anew (null removes one), with the live grants the change
    reaches sealed anew to their brands: those brands see the change."""
    runtime.custody.update(db, customer.id, body.fields, seals_of(body.grants))
    return CustodyView.model_validate(runtime.custody.view(db, customer.id))


@router.post("/seals", operation_id="sealMyGrants", responses={**_WRITE, 409: _NOT_HELD})
def seal(body: SealsIn, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> CustodyView:
    """Seal live grants anew without changing the profile: one whose copy is missing, or whose brand
    registered a new encryption key."""
    runtime.custody.seal(db, customer.id, seals_of(body.grants))
    return CustodyView.model_validate(runtime.custody.view(db, customer.id))


@router.post(
    "/unlocks", operation_id="addMyUnlock", responses={**FRESH_SESSION_PROBLEMS, **_BODY, 409: _NOT_HELD}
)
def add_unlock(
    body: UnlockIn, customer: CurrentCustomer, _: FreshSession, db: DbSession, runtime: RuntimeDep
) -> CustodyView:
    """Let another of your passkeys unlock the vault (one already there is wrapped anew), or replace
    the recovery key (the old one stops working). Needs a fresh sign-in: an unlock the server cannot
    check could otherwise lock you out of your own vault."""
    runtime.custody.add_unlock(db, customer.id, body.unlock())
    return CustodyView.model_validate(runtime.custody.view(db, customer.id))


@router.get(
    "/offers/{offer_id}",
    operation_id="getMyOfferSealing",
    responses={**_READ, 404: problems("No such offer", NotFound)},
)
def offer_sealing(
    offer_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> OfferSealing:
    """What sealing a grant of this offer (any version, listed or not) to its brand takes: your pairwise
    subject there, the brand's encryption keys, the offer's fields and purposes."""
    offer = db.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"no offer {offer_id}")
    names = [*offer.required_fields, *offer.optional_fields]
    return OfferSealing.model_validate(runtime.custody.sealing(db, customer.id, offer, names))
