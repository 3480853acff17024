"""The auditor API: the log's key, signed checkpoints, entries, RFC 9162 proofs, and C2SP tlog-tiles.

Every endpoint but the key needs an auditor token, tiles included: they hold the same entries. A
parameter that is missing or not a whole number is a 400,
like a range the log does not have: both are requests to fix, not data that failed validation.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute

from broker.api.contract import problems
from broker.audit import reader, tiles
from broker.audit.schemas import ConsistencyProofPublic, EntriesPublic, InclusionProofPublic
from broker.errors import AuditRangeError, MalformedRequest, NotAuthenticated, NotFound
from broker.web.deps import CurrentAuditor, DbSession, RuntimeDep
from clients.auditor.tlog import MAX_ENTRY_SIZE, TileError
from clients.auditor.tlog.tiles import MAX_LEVEL, parse_index

_MAX = 2**63 - 1  # sizes and indices are BIGINT in the database


class _BadParametersAre400(APIRoute):
    """Turns FastAPI's 422 for unparsable parameters into a 400 `malformed-request` problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [_parameter_error(error) for error in exc.errors()]
                raise MalformedRequest("; ".join(e["detail"] for e in errors), errors=errors) from None

        return handle


def _parameter_error(error: Any) -> dict[str, str]:
    name = str(error["loc"][-1])
    if error["type"] == "missing":
        detail = f"{name} is required"
    elif error["type"] == "int_parsing":
        detail = f"{name} must be a whole number, not {error['input']!r}"
    elif error["type"] == "string_pattern_mismatch":  # only a tile index has a pattern: say what is wrong
        detail = _tile_index_error(str(error["input"]))
    else:
        detail = f"{name}: {str(error['msg']).lower()}"
    return {"pointer": f"/{name}", "detail": detail}


router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=_BadParametersAre400)

_AUTH: dict[int | str, dict[str, Any]] = {
    401: problems("No auditor token, or an unknown or revoked one", NotAuthenticated),
}
_RANGE: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    400: problems(
        "Not a whole number, or a range the log does not have; `detail` says what to ask",
        MalformedRequest,
        AuditRangeError,
    ),
}
_NOTE = "a C2SP signed note holding a C2SP tlog-checkpoint: origin, tree size, base64 root hash, signature"
_EXAMPLE_NOTE = (
    "broker.example/audit\n42\nUNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw=\n\n\u2014 broker.example/audit "
    "WC6fpIKIdnxVZ3MHZquDh+x3S8mtB/ZtvAve1BwdDrVcKBD5ztaMn956Y+2Vs/ozw/ueGaVXKWdkTyJIy9IjGD76lAs=\n"
)


def _text(description: str, example: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"text/plain": {"example": example}}}}


TreeSize = Annotated[int, Path(ge=0, le=_MAX, description="a tree size a checkpoint was signed at")]


@router.get(
    "/key",
    operation_id="getAuditKey",
    response_class=PlainTextResponse,
    responses={
        **_text(
            "The log's verifier key, `<name>+<hex key id>+<base64 key>`, then a newline",
            "broker.example/audit+582e9fa4+AXqP4w2W3JlrPL/lbA+n6B6WVYGHi8XcAkAl/DJHJWB9\n",
        ),
    },
)
def get_key(runtime: RuntimeDep) -> PlainTextResponse:
    """The Ed25519 verifier key (C2SP signed-note format) that every checkpoint is signed with.

    Public, unlike the rest of the auditor API: customers and brands check the proofs in their access
    logs with it. Pin it once; a checkpoint that does not verify with the pinned key is not ours."""
    return PlainTextResponse(runtime.checkpoints.verifier_key() + "\n")


@router.get(
    "/checkpoint",
    operation_id="getAuditCheckpoint",
    response_class=PlainTextResponse,
    responses={**_AUTH, **_text(f"The current checkpoint: {_NOTE}", _EXAMPLE_NOTE)},
)
def get_checkpoint(_: CurrentAuditor, db: DbSession, runtime: RuntimeDep) -> PlainTextResponse:
    """A checkpoint of the log as it is now, signed on the spot if the log grew since the last one."""
    return PlainTextResponse(runtime.checkpoints.current(db).note)


@router.get(
    "/checkpoints/{tree_size}",
    operation_id="getAuditCheckpointAt",
    response_class=PlainTextResponse,
    responses={
        **_AUTH,
        400: problems("Not a whole number, or out of range", MalformedRequest),
        **_text(f"The checkpoint signed at this size: {_NOTE}", _EXAMPLE_NOTE),
        404: problems("No checkpoint was signed at this tree size", NotFound),
    },
)
def get_checkpoint_at(
    tree_size: TreeSize, _: CurrentAuditor, db: DbSession, runtime: RuntimeDep
) -> PlainTextResponse:
    """A checkpoint signed earlier, at exactly this tree size (every one is kept)."""
    return PlainTextResponse(runtime.checkpoints.get(db, tree_size).note)


@router.get("/entries", operation_id="listAuditEntries", responses=_RANGE)
def list_entries(
    _: CurrentAuditor,
    db: DbSession,
    start: Annotated[int, Query(ge=0, le=_MAX, description="first index")] = 0,
    end: Annotated[
        int | None, Query(ge=0, le=_MAX, description="index after the last; default: the log's size")
    ] = None,
) -> EntriesPublic:
    """Entries `[start, end)` with their exact bytes, at most 10,000 a page; follow `next` for more."""
    return reader.read_entries(db, start, end)


@router.get("/proofs/inclusion", operation_id="getInclusionProof", responses=_RANGE)
def get_inclusion_proof(
    _: CurrentAuditor,
    db: DbSession,
    index: Annotated[int, Query(ge=0, le=_MAX, description="the entry's index")],
    tree_size: Annotated[int, Query(ge=0, le=_MAX, description="the size of a checkpoint's tree")],
) -> InclusionProofPublic:
    """The audit path proving entry `index` is in the tree of the first `tree_size` entries."""
    return reader.read_inclusion_proof(db, index, tree_size)


@router.get("/proofs/consistency", operation_id="getConsistencyProof", responses=_RANGE)
def get_consistency_proof(
    _: CurrentAuditor,
    db: DbSession,
    first: Annotated[int, Query(ge=0, le=_MAX, description="the older tree's size")],
    second: Annotated[int, Query(ge=0, le=_MAX, description="the newer tree's size")],
) -> ConsistencyProofPublic:
    """The proof that the tree of `second` entries extends the tree of `first` (no entry changed)."""
    return reader.read_consistency_proof(db, first, second)


# C2SP tlog-tiles (https://c2sp.org/tlog-tiles)

# Tiles hold the log's entries, which only auditors may read, so every response carries an auditor
# token: `private` keeps shared caches (a CDN, a proxy) from handing one auditor's tile to anyone who
# asks for the URL; the auditor's own cache or mirror keeps a full tile for ever, as it never changes.
FULL_TILE_CACHE = "private, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "private, max-age=60"  # the right edge: a wider partial or the full tile replaces it
_TILE = (
    "`<N>` is the tile index in groups of three digits, all but the last prefixed with `x` "
    "(1234067 is `x001/x234/067`); `.p/<W>` (1..255) asks for the first W of a partial tile"
)
_TILE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    400: problems("Not a tile path of c2sp.org/tlog-tiles; `detail` says why", MalformedRequest),
    404: problems("The log does not reach this tile (or this width of it) yet", NotFound),
}
# Exactly the paths of c2sp.org/tlog-tiles: no leading x000 group, a partial width of 1..255.
_TILE_INDEX = (
    r"^(x(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})/(x[0-9]{3}/)*)?[0-9]{3}"
    r"(\.p/([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$"
)
TileIndex = Annotated[
    str,
    Path(
        description=_TILE,
        examples=["000", "x001/x234/067", "001.p/17"],
        pattern=_TILE_INDEX,
        max_length=40,
    ),
]


def _octets(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                "Cache-Control": {
                    "description": f"`{FULL_TILE_CACHE}` for a full tile, `{PARTIAL_TILE_CACHE}` "
                    "for a partial one",
                    "schema": {"type": "string"},
                }
            },
        }
    }


def _tile_response(data: bytes | None, width: int, what: str) -> Response:
    if data is None:
        raise NotFound(f"the audit log does not reach {what} yet: fetch the checkpoint for its size")
    partial = width < 256
    headers = {"Cache-Control": PARTIAL_TILE_CACHE if partial else FULL_TILE_CACHE}
    return Response(data, media_type="application/octet-stream", headers=headers)


def _tile_index_error(index: str) -> str:
    try:
        parse_index(index)
    except TileError as exc:
        return str(exc)
    return f"{index!r} is not a tile index of c2sp.org/tlog-tiles"


def _parse_index(index: str) -> tuple[int, int]:
    try:
        return parse_index(index)
    except TileError as exc:
        raise MalformedRequest(str(exc), errors=[{"pointer": "/index", "detail": str(exc)}]) from None


# Declared before the hash tiles, whose `{level}` would otherwise take "entries".
@router.get(
    "/tile/entries/{index:path}",
    operation_id="getAuditEntryBundle",
    response_class=Response,
    responses={**_TILE_ERRORS, **_octets(
        f"Entries N·256 … N·256 + W - 1, each a big-endian uint16 length (entries are at most "
        f"{MAX_ENTRY_SIZE:,} bytes) then the entry's exact bytes"
    )},
)  # fmt: skip
def get_entry_bundle(index: TileIndex, _: CurrentAuditor, db: DbSession) -> Response:
    """An entry bundle of c2sp.org/tlog-tiles: 256 consecutive entries (fewer at the log's edge)."""
    number, width = _parse_index(index)
    return _tile_response(tiles.entry_bundle(db, number, width), width, f"entry bundle {index}")


@router.get(
    "/tile/{level}/{index:path}",
    operation_id="getAuditHashTile",
    response_class=Response,
    responses={
        **_TILE_ERRORS,
        **_octets("The hashes of the tree nodes at height 8·L, positions N·256 … N·256 + W - 1, 32 bytes"),
    },
)
def get_hash_tile(
    level: Annotated[int, Path(ge=0, le=MAX_LEVEL, description="tile level L: nodes at height 8·L")],
    index: TileIndex,
    _: CurrentAuditor,
    db: DbSession,
) -> Response:
    """A hash tile of c2sp.org/tlog-tiles: level 0 holds the leaf hashes, level L the roots of the
    complete subtrees of 256^L leaves."""
    number, width = _parse_index(index)
    return _tile_response(tiles.hash_tile(db, level, number, width), width, f"hash tile {level}/{index}")
