"""The portal's account page: export everything, and delete the account (saying what that means,
with a typed confirmation). Both need a fresh sign-in, asked for inline (`step_up`)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from broker.portal.guards import LoggedIn, PortalCustomer, PostedForm
from broker.portal.html import render
from broker.portal.step_up import step_up_context
from broker.receipts.deletion import DELETION_KEPT
from broker.receipts.models import DeletionReceipt
from broker.usecases.account_deletion import RECEIPT_FILE, receipt_file, receipt_path
from broker.web.deps import DbSession, RuntimeDep, clear_session_cookie

router = APIRouter(prefix="/portal", include_in_schema=False)
log = logging.getLogger(__name__)

HERE = "/portal/account"
DELETE_PHRASE = "delete my account"


@router.get("/account")
def account_page(
    request: Request, session: LoggedIn, db: DbSession, runtime: RuntimeDep, reauth: str | None = None
) -> Response:
    """Export, and deleting the account (with what it means, and a typed confirmation); both need a
    fresh sign-in, asked for inline."""
    context = {"message": None, "typed": "", **step_up_context(db, runtime, session, HERE, reauth)}
    return render(request, "account.html", context, secure=runtime.settings.secure_cookies)


@router.post("/account/delete")
def delete_account(
    request: Request,
    session: PostedForm,
    customer: PortalCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    confirm: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Delete the account for good, once the customer typed the phrase."""
    step_up = step_up_context(db, runtime, session, HERE, "needed")
    if not step_up["fresh"]:
        context = {"message": step_up["reauth_message"], "typed": confirm, **step_up}
        return render(request, "account.html", context, status=403, secure=runtime.settings.secure_cookies)
    if confirm.strip().lower() != DELETE_PHRASE:
        context = {"message": f"Type “{DELETE_PHRASE}” exactly to confirm.", "typed": confirm, **step_up}
        return render(request, "account.html", context, status=422, secure=runtime.settings.secure_cookies)
    deleted = runtime.account_deletion.delete(db, customer)
    db.commit()  # the deletion and its receipt are final before the page says so
    try:
        mail = runtime.account_deletion.hand_over(db, deleted).mail
    except Exception as exc:  # the deletion is committed: the page says so, and where the receipt waits
        # The error's text may carry the receipt's id, the capability to download it: its type only.
        log.error("a deletion receipt could not be proven after the deletion: %s", type(exc).__name__)
        db.rollback()
        mail = None
    context = {
        "receipt": receipt_path(deleted.receipt_id),
        "minutes": RECEIPT_MINUTES,
        "mail": mail.value if mail is not None else "pending",
    }
    response = render(request, "deleted.html", context, secure=runtime.settings.secure_cookies)
    clear_session_cookie(response, runtime.settings)
    return response


RECEIPT_MINUTES = DELETION_KEPT // timedelta(minutes=1)  # how long the goodbye page's link works


@router.get("/deleted/{receipt_id}/receipt")
def deletion_receipt(receipt_id: UUID, request: Request, db: DbSession, runtime: RuntimeDep) -> Response:
    """The deletion receipt, as a file to keep, for the hour after the deletion. Its random id is the
    only key (the account, and so any login, is gone); after the hour the link is dead: the receipt
    names the brands the person dealt with."""
    row = db.get(DeletionReceipt, receipt_id)
    if row is None or runtime.clock() - row.issued_at > DELETION_KEPT:
        runtime.receipts.forget_deletions(db)
        context = {
            "title": "This link has expired",
            "message": "A deletion receipt can be downloaded for an hour after the deletion.",
        }
        return render(request, "error.html", context, status=404, secure=runtime.settings.secure_cookies)
    bundle = runtime.receipts.deletion_bundle(db, receipt_id)
    return Response(
        receipt_file(bundle),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{RECEIPT_FILE}"',
            "Cache-Control": "no-store",
        },
    )
