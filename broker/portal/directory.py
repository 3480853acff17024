"""The portal's offer directory: browse listed offers with filters and a sort, compare 2 to 4 side by
side, read one and accept it (a customer-started grant: `broker.usecases.directory`).

A list page is the same for every customer but for one thing: which of the asked fields the
customer has not filled in. So it is rendered once for everyone, with that place marked, and kept in
each process (`Runtime.directory_pages`) while no listing and no brand changed (`broker.signals`: an
offer withdrawn or revised in any process leaves every kept page at once) and for at most a brand
record's lifetime (60 s). Each request checks the session, reads the customer's filled-in field
names (never a value) and fills the marks in. It holds no CSRF token (its forms are GETs), no value
of a customer's, nothing of the session. The offer and compare pages show the customer's values and
are built for each request.

Every page is a GET a link can carry (the filter form submits by GET, the comparison is chosen by
ticking offers), read in a read-only transaction: browsing leaves no trace. Accepting is a form post
with its CSRF token; a refusal is shown on the offer's page with what was ticked kept.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlmodel import Session

from broker.accounts.models import Customer
from broker.accounts.service import LiveSession
from broker.consent.directory import DirectoryFilters, DirectorySort
from broker.consent.models import Offer
from broker.consent.purposes import PURPOSES
from broker.errors import BrokerError, ValidationFailed
from broker.portal.guards import LoginRequired, PostedForm
from broker.portal.html import PAGES, render
from broker.runtime import Runtime
from broker.usecases.directory import DirectoryOffer, StartGrant
from broker.web.customer_reads import portal_read
from broker.web.deps import DbSession, RuntimeDep, undone_if_refused
from vault.fields import CATALOGUE

router = APIRouter(prefix="/portal/directory", include_in_schema=False)

PAGE_SIZE = 20
KINDS = {
    "voucher": "Vouchers",
    "discount": "Discounts",
    "points": "Points",
    "cash": "Cash",
    "service": "Services",
}
SORTS = {
    DirectorySort.NEWEST: "Newest first",
    DirectorySort.VALUE: "Most value per field per month",
    DirectorySort.FEWEST_FIELDS: "Fewest fields asked",
    DirectorySort.SHORTEST_RETENTION: "Shortest keeping after the end",
    DirectorySort.SHORTEST_DURATION: "Shortest access",
}
RETENTIONS = {"": "Any", "0": "Deleted when it ends", "30": "Up to 30 days", "90": "Up to 90 days"}
DURATIONS = {"": "Any", "30": "Up to 30 days", "90": "Up to 90 days", "180": "Up to 180 days"}
# The list page is shared by every customer (`_shareable`, cached in `Runtime.directory_pages`): only
# which fields the customer has filled in is theirs, filled in per request (`_personal`).
_MARK = "<!--unfilled-->"
_UNFILLED = ' <span class="muted">(you have not filled it in)</span>'
_NOT_THERE = {
    "title": "That offer is not in the directory",
    "message": "It may have been withdrawn or changed. Browse the directory again for current offers.",
}


def _broken(request: Request, runtime: RuntimeDep, status: int = 400) -> Response:
    context = {"title": "That link is broken", "message": "Open the directory again from the start."}
    return render(request, "error.html", context, status=status, secure=runtime.settings.secure_cookies)


@router.get("")
async def browse(
    request: Request,
    runtime: RuntimeDep,
    purpose: Annotated[str, Query(max_length=64)] = "",
    kind: Annotated[list[str], Query(max_length=5)] = [],  # noqa: B006 - FastAPI copies list defaults
    share: Annotated[list[str], Query(max_length=len(CATALOGUE))] = [],  # noqa: B006
    retention: Annotated[str, Query(max_length=4)] = "",
    duration: Annotated[str, Query(max_length=4)] = "",
    nobody_else: Annotated[str, Query(max_length=3)] = "",
    sort: Annotated[str, Query(max_length=32)] = DirectorySort.NEWEST.value,
    after: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """Listed offers, filtered and sorted by the form above them, a page at a time."""
    chosen = {"purpose": purpose, "kind": kind, "share": share, "retention": retention, "duration": duration,
              "nobody_else": nobody_else, "sort": sort}  # fmt: skip
    unknown = (
        any(k not in KINDS for k in kind)
        or retention not in RETENTIONS
        or duration not in DURATIONS
        or sort not in {s.value for s in DirectorySort}
    )
    if unknown:
        return _broken(request, runtime)
    try:  # an unknown purpose or field: the filters say so
        filters = DirectoryFilters(
            purpose=purpose or None,
            value_kinds=tuple(kind),
            fields=tuple(share),
            max_retention_days=int(retention) if retention else None,
            max_duration_days=int(duration) if duration else None,
            max_recipients=0 if nobody_else == "yes" else None,
        )
    except ValidationFailed:
        return _broken(request, runtime)
    order = DirectorySort(sort)
    query = [(k, v) for k, v in chosen.items() if isinstance(v, str) and v]
    query += [("kind", k) for k in kind] + [("share", f) for f in share]

    def shared(db: Session) -> tuple[str, ...] | None:
        try:
            found = runtime.directory.anyones_page(db, filters, sort=order, cursor=after, limit=PAGE_SIZE)
        except ValidationFailed:
            return None
        more = f"?{urlencode([*query, ('after', found.next_cursor)])}" if found.next_cursor else None
        context = {
            "offers": [_card(o) for o in found.items],
            "more": more,
            "first_page": f"?{urlencode(query)}" if after else None,
            "chosen": chosen,
            "purposes": {slug: p.label for slug, p in PURPOSES.items()},
            "kinds": KINDS,
            "fields": {name: spec.title for name, spec in CATALOGUE.items()},
            "retentions": RETENTIONS,
            "durations": DURATIONS,
            "sorts": {s.value: label for s, label in SORTS.items()},
        }
        return _shareable("directory.html", context)

    def page(db: Session, current: LiveSession) -> Response:
        key = urlencode([*query, ("after", after or "")])
        html = runtime.directory_pages.find(key, lambda: shared(db), session=db)
        if html is None:
            return _broken(request, runtime)
        filled = runtime.vault.filled(db, current.customer_id)
        return PAGES.respond(request, _personal(html, filled), secure=runtime.settings.secure_cookies)

    answer = await portal_read(request, runtime, page)
    if answer is None:
        raise LoginRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    return answer


def _shareable(template: str, context: dict[str, Any]) -> tuple[str, ...]:
    """A page as anyone sees it, cut where each customer's own part goes: its HTML in pieces, with
    between each two the name of the field whose "not filled in" note belongs there. The template
    marks those places with `unfilled(name)`; no text it shows can forge a mark (its "<" is escaped)."""
    names: list[str] = []

    def unfilled(name: str) -> Markup:
        names.append(name)
        return Markup(_MARK)  # noqa: S704 - our constant, no text from anyone

    first, *rest = PAGES.text(template, {**context, "unfilled": unfilled}).split(_MARK)
    return (first, *(part for pair in zip(names, rest, strict=True) for part in pair))


def _personal(shared: tuple[str, ...], filled: frozenset[str]) -> str:
    """A shared page (`_shareable`) for a customer who filled in these fields."""
    return "".join(
        piece if at % 2 == 0 else ("" if piece in filled else _UNFILLED) for at, piece in enumerate(shared)
    )


def _card(offer: DirectoryOffer) -> dict[str, Any]:
    per_field = offer.value_per_field_month
    return {
        "id": str(offer.offer_id),
        "brand": offer.brand,
        "title": offer.title,
        "description": offer.description,
        "value_text": offer.value_text,
        "per_field": f"{per_field.amount} {per_field.scale}" if per_field else None,
        "fields": offer.fields,
        "purposes": "; ".join(p.label for p in offer.purposes),
        "duration": offer.grant_duration_days,
        "retention": offer.retention_days,
        "recipients": ", ".join(offer.recipients) or "nobody else",
        "record": offer.record.summary,
        "history": offer.record.history,
    }


@router.get("/compare")
async def compare(
    request: Request,
    runtime: RuntimeDep,
    offer: Annotated[list[str], Query(max_length=10)] = [],  # noqa: B006
) -> Response:
    """2 to 4 ticked offers side by side."""
    secure = runtime.settings.secure_cookies
    try:
        ids = [UUID(item) for item in offer]
    except ValueError:
        return _broken(request, runtime)

    def side_by_side(db: Session, current: LiveSession) -> Response:
        try:
            comparison = runtime.directory.compare(db, current.customer_id, ids)
        except ValidationFailed:
            context: dict[str, Any] = {
                "title": "Tick 2 to 4 offers to compare",
                "message": "Go back to the directory and tick between two and four different offers.",
            }
            return render(request, "error.html", context, status=422, secure=secure)
        except BrokerError:
            return render(request, "error.html", _NOT_THERE, status=404, secure=secure)
        context = {"comparison": comparison, "cards": [_card(o) for o in comparison.offers]}
        return render(request, "directory_compare.html", context, secure=secure)

    answer = await portal_read(request, runtime, side_by_side)
    if answer is None:
        raise LoginRequired(str(request.url.path) + f"?{request.url.query}")
    return answer


def _offer_page(
    request: Request,
    runtime: RuntimeDep,
    offer: DirectoryOffer,
    *,
    message: str | None = None,
    status: int = 200,
    ticked: dict[str, Any] | None = None,
    sealing: dict[str, Any] | None = None,
) -> Response:
    """The offer's page; `sealing`: the customer's profile is in self-custody, and this is what their
    browser needs to seal the grant to the brand (`Custody.sealing`)."""
    ticked = ticked or {"fields": [], "purposes": [], "special": False}
    context = {
        "held": sealing is not None,
        "sealable": sealing is None or bool(sealing["keys"]),
        "held_consent": None if sealing is None else json.dumps(sealing, separators=(",", ":")),
        "offer": offer,
        "card": _card(offer),
        "multiple": len(offer.purposes) > 1,
        "special": [f.title for f in offer.fields if f.special_category],
        "ticked": ticked,
        "message": message,
    }
    return render(
        request, "directory_offer.html", context, status=status, secure=runtime.settings.secure_cookies
    )


@router.get("/offers/{offer_id}")
async def offer_page(offer_id: UUID, request: Request, runtime: RuntimeDep) -> Response:
    """One listed offer, with the choices of its consent screen and an Accept button."""

    def one(db: Session, current: LiveSession) -> Response:
        try:
            offer = runtime.directory.one(db, current.customer_id, offer_id)
        except BrokerError:
            return render(
                request, "error.html", _NOT_THERE, status=404, secure=runtime.settings.secure_cookies
            )
        return _offer_page(request, runtime, offer, sealing=_sealing(db, runtime, current.customer_id, offer))

    answer = await portal_read(request, runtime, one)
    if answer is None:
        raise LoginRequired(request.url.path)
    return answer


def _sealing(
    db: Session, runtime: Runtime, customer_id: UUID, offer: DirectoryOffer
) -> dict[str, Any] | None:
    """For a profile in self-custody, what the browser needs to seal the offer's grant; else None."""
    if not runtime.vault.is_held(db, customer_id):
        return None
    row = db.get(Offer, offer.offer_id)
    assert row is not None  # the listed offer was just read
    return runtime.custody.sealing(db, customer_id, row, [f.name for f in offer.fields])


@router.post("/offers/{offer_id}")
def accept(
    offer_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    fields: Annotated[list[str], Form(max_length=len(CATALOGUE))] = [],  # noqa: B006
    purposes: Annotated[list[str], Form(max_length=len(PURPOSES))] = [],  # noqa: B006
    special_consent: Annotated[str, Form(max_length=3)] = "",
    grant_id: Annotated[str, Form(max_length=40)] = "",
    sealed: Annotated[str, Form(max_length=60_000)] = "",
) -> Response:
    """Accept the offer with the ticked choices; then its grant's page. In self-custody the browser
    seals the grant to the brand first (`grant_id`, `sealed`: `static/held.js`)."""
    customer = db.get(Customer, session.customer_id)
    if customer is None:
        raise LoginRequired(request.url.path)
    choice = {"fields": fields, "purposes": purposes, "special": special_consent == "yes"}
    try:
        with undone_if_refused(db):
            try:
                started = StartGrant(
                    fields=fields,
                    purposes=purposes,
                    special_category_consent=choice["special"],
                    grant_id=grant_id or None,
                    sealed=json.loads(sealed) if sealed else None,
                )
            except ValidationError:  # a name longer than any field's or purpose's: none of this offer's
                raise ValidationFailed("Choose among this offer's fields and purposes.") from None
            except ValueError:  # `sealed` is not JSON: the page's script did not write it
                raise ValidationFailed(_UNSEALED) from None
            grant = runtime.directory.start(db, customer, offer_id, started)
    except BrokerError as exc:
        try:
            offer = runtime.directory.one(db, customer.id, offer_id)
        except BrokerError:
            secure = runtime.settings.secure_cookies
            return render(request, "error.html", _NOT_THERE, status=exc.status, secure=secure)
        message = _UNSEALED if _about_sealing(exc) else exc.detail
        sealing = _sealing(db, runtime, customer.id, offer)
        return _offer_page(
            request, runtime, offer, message=message, status=exc.status, ticked=choice, sealing=sealing
        )
    return RedirectResponse(f"/portal/grants/{grant.id}", status_code=303)


_UNSEALED = (
    "Your profile is in your custody: unlock it with your passkey so that your browser seals what you "
    "share to this brand, then accept again."
)


def _about_sealing(refused: BrokerError) -> bool:
    """Whether the refusal is about the sealed copy the page's script makes (not the customer's choice)."""
    errors = refused.extensions.get("errors", [])
    return any(str(e.get("pointer", "")).startswith(("/sealed", "/grant_id")) for e in errors)
