"""The customer API: the logged-in customer's own profile, export and deletion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status
from fastapi.responses import JSONResponse

from broker.api.deps import SESSION_COOKIE, CurrentCustomer, DbSession, RuntimeDep
from broker.api.schemas import ProfilePublic

router = APIRouter(prefix="/v1/me", tags=["customer"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in, or the session has ended"},
    403: {"description": "Cross-site request refused"},
}
_WRITE: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    400: {"description": "The body is not JSON"},
    409: {"description": "Another account uses this email"},
    413: {"description": "The body is over 64 KiB"},
    422: {"description": "Unknown field or invalid value; `errors` points at each"},
}


@router.get("/profile", operation_id="getMyProfile", responses=_AUTH)
def get_profile(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> ProfilePublic:
    """The profile, decrypted for its owner, with derived fields."""
    return ProfilePublic.model_validate(runtime.profiles.read(db, customer))


# The vault validates profile values (one set of rules and messages); the body is parsed as a JSON
# object here and documented with the catalogue's schema.
ProfileBody = Annotated[dict[str, Any], Body(description="Profile fields; see ProfileFields")]
_PROFILE_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProfileFields"}}},
    }
}


@router.put("/profile", operation_id="replaceMyProfile", responses=_WRITE, openapi_extra=_PROFILE_SCHEMA)
def replace_profile(
    body: ProfileBody, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ProfilePublic:
    """Replace the whole profile: fields left out are removed (email is required)."""
    return ProfilePublic.model_validate(runtime.profiles.replace(db, customer, body))


@router.patch("/profile", operation_id="updateMyProfile", responses=_WRITE, openapi_extra=_PROFILE_SCHEMA)
def patch_profile(
    body: ProfileBody, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ProfilePublic:
    """Change some fields (JSON merge patch): given fields change, null removes one, others stay."""
    return ProfilePublic.model_validate(runtime.profiles.patch(db, customer, body))


@router.get(
    "/export",
    operation_id="exportMyData",
    responses={
        **_AUTH,
        200: {"content": {"application/json": {}}, "description": "Everything we hold, as JSON"},
    },
)
def export(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> JSONResponse:
    """Download everything held about you as one JSON document."""
    document = runtime.profiles.export(db, customer)
    return JSONResponse(
        document, headers={"Content-Disposition": 'attachment; filename="consentry-export.json"'}
    )


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, operation_id="deleteMe", responses=_AUTH)
def delete_me(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> Response:
    """Delete the account for good: the data key is destroyed, every session ends at once."""
    runtime.accounts.delete(db, customer)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=runtime.settings.secure_cookies
    )
    return response
