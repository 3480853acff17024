"""The brand API for webhooks: register, list, read and delete endpoints, rotate a secret, read the
delivery log. Scopes: `webhooks:write` to change, `webhooks:read` to look."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from broker.api.contract import problems
from broker.errors import (
    Conflict,
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    ValidationFailed,
)
from broker.web.deps import BrandAccessDep, BrandReadAccess, DbSession, ReadSession, RuntimeDep
from broker.webhooks.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookDeliveryPublic,
    WebhookPage,
    WebhookPublic,
)

router = APIRouter(prefix="/v1/webhooks", tags=["brand"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
    403: problems("The token lacks the scope webhooks:write (or webhooks:read)", InsufficientScope),
}
_ONE = {**_AUTH, 404: problems("No such webhook endpoint for this brand", NotFound)}
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="createWebhook",
    responses={
        **_AUTH,
        400: problems("The body is not JSON", MalformedRequest),
        409: problems("The brand already has the most endpoints allowed", Conflict),
        422: problems(
            "Invalid URL (not https, or resolving to a private address) or event type", ValidationFailed
        ),
    },
)
def create_webhook(
    body: WebhookCreate, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep, response: Response
) -> WebhookCreated:
    """Register an endpoint; the answer carries its signing secret, shown this once."""
    access.require("webhooks:write")
    registered = runtime.webhooks.register(db, access.brand.id, body)
    response.headers["Location"] = f"/v1/webhooks/{registered.endpoint.id}"
    public = WebhookPublic.of(registered.endpoint)
    return WebhookCreated(**public.model_dump(), secret=registered.secret)


@router.get(
    "", operation_id="listWebhooks", responses={**_AUTH, 422: problems("Bad cursor", ValidationFailed)}
)
def list_webhooks(
    access: BrandReadAccess, db: ReadSession, runtime: RuntimeDep, limit: Limit = 50, cursor: Cursor = None
) -> WebhookPage:
    """This brand's endpoints, newest first (keyset pagination)."""
    access.require("webhooks:read")
    found = runtime.webhooks.listing(db, access.brand.id, cursor=cursor, limit=limit)
    return WebhookPage(items=[WebhookPublic.of(e) for e in found.items], next_cursor=found.next_cursor)


@router.get("/{webhook_id}", operation_id="getWebhook", responses=_ONE)
def get_webhook(
    webhook_id: UUID, access: BrandReadAccess, db: ReadSession, runtime: RuntimeDep
) -> WebhookPublic:
    """One of this brand's endpoints; another brand's id answers 404."""
    access.require("webhooks:read")
    return WebhookPublic.of(runtime.webhooks.get(db, access.brand.id, webhook_id))


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="deleteWebhook", responses=_ONE
)
def delete_webhook(webhook_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> Response:
    """Remove an endpoint: nothing more is sent to it, and its delivery log goes too."""
    access.require("webhooks:write")
    runtime.webhooks.delete(db, access.brand.id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/secret", operation_id="rotateWebhookSecret", responses=_ONE)
def rotate_secret(
    webhook_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> WebhookCreated:
    """A new signing secret, shown this once; every attempt from now on is signed with it alone."""
    access.require("webhooks:write")
    rotated = runtime.webhooks.rotate_secret(db, access.brand.id, webhook_id)
    return WebhookCreated(**WebhookPublic.of(rotated.endpoint).model_dump(), secret=rotated.secret)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="listWebhookDeliveries",
    responses={**_ONE, 422: problems("Bad cursor", ValidationFailed)},
)
def list_deliveries(
    webhook_id: UUID,
    access: BrandReadAccess,
    db: ReadSession,
    runtime: RuntimeDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WebhookDeliveryPage:
    """The endpoint's delivery log, newest attempt first: status or error, duration, next try."""
    access.require("webhooks:read")
    found = runtime.webhooks.deliveries(db, access.brand.id, webhook_id, cursor=cursor, limit=limit)
    return WebhookDeliveryPage(
        items=[WebhookDeliveryPublic.of(a) for a in found.items], next_cursor=found.next_cursor
    )
