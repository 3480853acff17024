"""The portal's self-custody page: who holds the key to the profile, the move to the customer's key
(with the warning in plain words) and back, and unlocking with the recovery key. The work happens in
the browser (`static/held.js` over `/v1/me/custody`); this page only lays it out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from broker.portal.guards import PortalCustomer
from broker.portal.html import render
from broker.web.deps import DbSession, RuntimeDep

router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("/custody")
def custody_page(request: Request, customer: PortalCustomer, db: DbSession, runtime: RuntimeDep) -> Response:
    """Who holds the key, and the way to change it."""
    state = runtime.custody.view(db, customer.id)
    context = {
        "held": state["custody"] == "customer",
        "passkeys": state["passkeys"],
        "unsealable": sorted({g["brand_name"] for g in state["grants"] if not g["keys"]}),
    }
    return render(request, "custody.html", context, secure=runtime.settings.secure_cookies)
