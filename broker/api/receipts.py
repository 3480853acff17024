"""Consent receipts over HTTP: the customer's own (`/v1/me/receipts`) and a brand's grant's."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from broker.api.contract import problems
from broker.errors import InsufficientScope, NotAuthenticated, NotFound, ValidationFailed
from broker.receipts.schemas import ReceiptPage, ReceiptPublic
from broker.web.deps import BrandAccessDep, CurrentCustomer, DbSession, RuntimeDep

router = APIRouter(prefix="/v1", tags=["receipts"])

Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
_CUSTOMER: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
    422: problems("Bad cursor or filter", ValidationFailed),
}


@router.get("/me/receipts", operation_id="listMyReceipts", tags=["customer"], responses=_CUSTOMER)
def list_my_receipts(
    customer: CurrentCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    grant_id: Annotated[UUID | None, Query(description="only the receipts of this grant")] = None,
) -> ReceiptPage:
    """Your consent receipts, newest first: one for each grant given, amended, withdrawn or expired,
    each signed by the broker and with its audit entry proven against a signed checkpoint."""
    return runtime.receipts.for_customer(db, customer.id, cursor=cursor, limit=limit, grant_id=grant_id)


@router.get(
    "/me/receipts/{receipt_id}",
    operation_id="getMyReceipt",
    tags=["customer"],
    responses={**_CUSTOMER, 404: problems("No such receipt for this customer", NotFound)},
)
def get_my_receipt(
    receipt_id: UUID,
    customer: CurrentCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    response: Response,
    download: Annotated[
        bool, Query(description="answer as a file to save (Content-Disposition: attachment)")
    ] = False,
) -> ReceiptPublic:
    """One of your receipts as a self-contained bundle; check it offline with
    `consentry-audit receipt verify FILE`."""
    receipt = runtime.receipts.one_for_customer(db, customer.id, receipt_id)
    if download:
        filename = f"consent-receipt-{receipt.id}.json"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return receipt


@router.get(
    "/grants/{grant_id}/receipts",
    operation_id="listBrandGrantReceipts",
    tags=["brand"],
    responses={
        401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
        403: problems("The token lacks the scope grants:read", InsufficientScope),
        404: problems("No such grant for this brand", NotFound),
        422: problems("Bad cursor", ValidationFailed),
    },
)
def list_grant_receipts(
    grant_id: UUID,
    access: BrandAccessDep,
    db: DbSession,
    runtime: RuntimeDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> ReceiptPage:
    """The consent receipts of one of this brand's grants, newest first. Needs `grants:read`."""
    access.require("grants:read")
    return runtime.receipts.for_brand_grant(db, access.brand.id, grant_id, cursor=cursor, limit=limit)
