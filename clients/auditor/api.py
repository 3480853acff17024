"""A typed client for Consentry's auditor API (`/v1/audit/...`), on httpx.

Every request carries the auditor token as `Authorization: Bearer`. Answers are checked against the
contract and returned decoded: entries and hashes as bytes, never base64. Failures form one tree::

    AuditorAPIError          the call did not return what the contract promises
    ├── ServerUnreachable    no answer at all: DNS, connection refused, timeout, TLS
    ├── IncompatibleServer   the server speaks no auditor API version this tool does: upgrade one
    ├── HTTPProblem          an error status; RFC 9457 problem details when the server sends them
    │   └── TokenRefused     401 or 403: the server refused the auditor token
    └── MalformedResponse    a 2xx answer that breaks the contract: not JSON, a missing field, bad base64

The first three say nothing about the log; a `MalformedResponse` is the server misbehaving, which a
verifier reports as a failed verification.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import quote

import httpx
import pydantic_core

from clients.auditor.tlog import Tile, TileError, bundle_leaf_hashes, decode_bundle, split_hashes
from clients.auditor.versions import API_VERSION_HEADER, API_VERSIONS, DISTRIBUTION, RELEASE

__all__ = [
    "AuditorAPIError",
    "AuditorClient",
    "EntriesPage",
    "HTTPProblem",
    "InclusionProof",
    "IncompatibleServer",
    "MalformedResponse",
    "ServerUnreachable",
    "TokenRefused",
]

_HASH_SIZE = 32


class AuditorAPIError(Exception):
    """The root of the auditor client's errors; the message says what went wrong."""


class ServerUnreachable(AuditorAPIError):
    """The request got no HTTP answer (DNS, connection, timeout, TLS)."""


class IncompatibleServer(AuditorAPIError):
    """The server serves none of the API versions this tool speaks (`server_versions`, empty when it
    names none): one of the two must be upgraded before anything can be verified."""

    def __init__(self, base_url: str, server_versions: list[str]) -> None:
        self.server_versions = server_versions
        ours = f"{DISTRIBUTION} {RELEASE} speaks Consentry API {', '.join(API_VERSIONS)}"
        if not server_versions:
            message = (
                f"the server at {base_url} does not say which Consentry API it serves (no version in a"
                f" {API_VERSION_HEADER} header): it is older than API versioning, not a Consentry server,"
                f" or a proxy drops the header; {ours}"
            )
        elif max(map(_numeric, server_versions)) > max(map(_numeric, API_VERSIONS)):
            message = (
                f"the server at {base_url} serves Consentry API {', '.join(server_versions)} only; {ours}:"
                f" upgrade it (pip install --upgrade {DISTRIBUTION})"
            )
        else:
            message = (
                f"the server at {base_url} serves Consentry API {', '.join(server_versions)} only; {ours}:"
                f" the server is older than this tool; install an earlier {DISTRIBUTION} to audit it"
            )
        super().__init__(message)


def _numeric(api_version: str) -> tuple[int, str]:
    """Order API versions by number ("10" after "9"); a version that is not a number sorts first."""
    number = api_version.isascii() and api_version.isdecimal()  # not "²", which isdigit() takes
    return (int(api_version), "") if number else (-1, api_version)


class HTTPProblem(AuditorAPIError):
    """The server answered with an error status, described by RFC 9457 problem details if it sent them."""

    def __init__(self, status: int, title: str, detail: str = "", type_: str = "about:blank") -> None:
        self.status, self.title, self.detail, self.type = status, title, detail, type_
        super().__init__(self._message())

    def _message(self) -> str:
        return f"the server answered {self.status} {self.title}" + (f": {self.detail}" if self.detail else "")


class TokenRefused(HTTPProblem):
    """401 or 403: the auditor token is unknown, revoked, or not an auditor's."""

    def _message(self) -> str:
        return f"the server refused the token ({super()._message().removeprefix('the server answered ')})"


class MalformedResponse(AuditorAPIError):
    """A successful answer that does not follow the auditor API contract."""


@dataclass(frozen=True, slots=True)
class EntriesPage:
    """One page of `GET /v1/audit/entries`: `entries[i]` is the bytes the server says sit at `indices[i]`.

    `end` is exclusive; `next` is where the following page starts, or None after the last one. The
    indices are returned as sent: checking that they count up from `start` is the verifier's job.
    """

    start: int
    end: int
    tree_size: int
    next: int | None
    indices: list[int]
    entries: list[bytes]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """`GET /v1/audit/proofs/inclusion`: the leaf hash at `index` and its RFC 9162 §2.1.3 path."""

    index: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]


class AuditorClient:
    """The auditor API of one Consentry server, authenticated with an auditor token.

    Pass `transport` to talk to something other than the network (tests use `httpx.MockTransport`).
    Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"{DISTRIBUTION}/{RELEASE}"},
            transport=transport,
            timeout=timeout,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    @property
    def base_url(self) -> str:
        """The server's base URL, as requests are built from it."""
        return str(self._http.base_url)

    def verifier_key(self) -> str:
        """`GET /v1/audit/key`: the log's verifier key string, unparsed, without its newline."""
        return _text(self._get("/v1/audit/key"), "the verifier key").removesuffix("\n")

    def checkpoint(self) -> str:
        """`GET /v1/audit/checkpoint`: the signed note of the latest checkpoint, unverified."""
        return _text(self._get("/v1/audit/checkpoint"), "the checkpoint")

    def entries(self, start: int, end: int | None = None) -> EntriesPage:
        """`GET /v1/audit/entries`: entries from `start` up to `end` exclusive, or fewer."""
        params = {"start": start} if end is None else {"start": start, "end": end}
        body = _json(self._get("/v1/audit/entries", params), "the entries page")
        items = body.get("entries")
        if not isinstance(items, list):
            raise MalformedResponse("the entries page has no 'entries' list")
        try:
            indices: list[int] = [item["index"] for item in items]
            entries = [binascii.a2b_base64(item["entry"], strict_mode=True) for item in items]
        except (TypeError, KeyError, ValueError):  # binascii.Error is a ValueError
            raise MalformedResponse(_first_bad_entry(items)) from None
        if not all(type(index) is int for index in indices):  # bool is an int subclass, and no index
            raise MalformedResponse(_first_bad_entry(items))
        next_start = body.get("next")
        if next_start is not None:
            next_start = _count(body, "next", "the entries page")
        return EntriesPage(
            start=_count(body, "start", "the entries page"),
            end=_count(body, "end", "the entries page"),
            tree_size=_count(body, "tree_size", "the entries page"),
            next=next_start,
            indices=indices,
            entries=entries,
        )

    def entry_bundle(self, index: int, width: int) -> list[bytes]:
        """`GET /v1/audit/tile/entries/<N>[.p/<W>]` (c2sp.org/tlog-tiles): the `width` entries of bundle
        `index`, that is entries index·256 … index·256 + width - 1."""
        tile = Tile(None, index, width)
        try:
            return decode_bundle(self._get(f"/v1/audit/{tile.path()}").content, width)
        except TileError as exc:
            raise MalformedResponse(f"{tile.path()}: {exc}") from None

    def entry_bundle_leaf_hashes(self, index: int, width: int) -> list[bytes]:
        """`entry_bundle`, as the RFC 9162 leaf hash of each entry rather than the entry (faster)."""
        tile = Tile(None, index, width)
        try:
            return bundle_leaf_hashes(self._get(f"/v1/audit/{tile.path()}").content, width)
        except TileError as exc:
            raise MalformedResponse(f"{tile.path()}: {exc}") from None

    def hash_tile(self, level: int, index: int, width: int) -> list[bytes]:
        """`GET /v1/audit/tile/<L>/<N>[.p/<W>]` (c2sp.org/tlog-tiles): the `width` hashes of the tile."""
        tile = Tile(level, index, width)
        try:
            return split_hashes(self._get(f"/v1/audit/{tile.path()}").content, width)
        except TileError as exc:
            raise MalformedResponse(f"{tile.path()}: {exc}") from None

    def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        """`GET /v1/audit/proofs/inclusion`: the proof that leaf `index` is in the tree of `tree_size`."""
        what = "the inclusion proof"
        body = _json(self._get("/v1/audit/proofs/inclusion", {"index": index, "tree_size": tree_size}), what)
        return InclusionProof(
            index=_count(body, "index", what),
            tree_size=_count(body, "tree_size", what),
            leaf_hash=_hash(body.get("leaf_hash"), f"{what}'s leaf_hash"),
            proof=_hashes(body, what),
        )

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """`GET /v1/audit/proofs/consistency`: RFC 9162 §2.1.4 proof that tree `second` extends `first`."""
        what = "the consistency proof"
        body = _json(self._get("/v1/audit/proofs/consistency", {"first": first, "second": second}), what)
        if (body.get("first"), body.get("second")) != (first, second):
            raise MalformedResponse(f"{what} is for sizes other than the {first} and {second} asked for")
        return _hashes(body, what)

    def disputes(self, status: str, cursor: str | None = None, limit: int = 50) -> dict[str, object]:
        """`GET /v1/audit/disputes`: one page of escalations in `status` ("all" for every one)."""
        params: dict[str, str | int] = {"status": status, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return _json(self._get("/v1/audit/disputes", params), "the list of escalated disputes")

    def dispute(self, escalation_id: str) -> dict[str, object]:
        """`GET /v1/audit/disputes/{id}`: an escalation with its file (the opening is logged) and,
        once decided, the decision's receipt bundle."""
        return _json(self._get(f"/v1/audit/disputes/{_segment(escalation_id)}"), "the escalation")

    def decide(self, escalation_id: str, outcome: str, reasons: str) -> tuple[dict[str, object], bool]:
        """`POST /v1/audit/disputes/{id}/decision`: the escalation as decided, and whether this call
        decided it (False: the same decision was made before)."""
        path = f"/v1/audit/disputes/{_segment(escalation_id)}/decision"
        response = self._send("POST", path, json={"outcome": outcome, "reasons": reasons})
        return _json(response, "the decision"), response.status_code == 201

    def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        return self._send("GET", path, params=params)

    def _send(
        self, method: str, path: str, *, params: Mapping[str, str | int] | None = None, json: object = None
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.RequestError as exc:
            raise ServerUnreachable(f"cannot reach {exc.request.url}: {exc}") from None
        self._check_api_version(response)
        if response.is_success:
            return response
        title, detail, type_ = _problem(response)
        error = TokenRefused if response.status_code in (401, 403) else HTTPProblem
        raise error(response.status_code, title, detail, type_)

    def _check_api_version(self, response: httpx.Response) -> None:
        """Refuse an answer from a server that speaks none of our API versions. An error answer without
        the header may come from a proxy in front of the server: it is reported as the error it is."""
        named = response.headers.get(API_VERSION_HEADER)
        if named is None and not response.is_success:
            return
        served = [v.strip() for v in (named or "").split(",") if v.strip()]
        if not set(served) & set(API_VERSIONS):
            raise IncompatibleServer(self.base_url, served)


def _segment(value: str) -> str:
    """An id as one path segment: nothing in it can reach another path."""
    return quote(value, safe="")


def _problem(response: httpx.Response) -> tuple[str, str, str]:
    """Title, detail and type of an error answer: its RFC 9457 problem if it has one, else the reason."""
    title, detail, type_ = response.reason_phrase, "", "about:blank"
    try:
        body = response.json()
    except ValueError:
        return title, detail, type_
    if isinstance(body, dict):
        title = body["title"] if isinstance(body.get("title"), str) else title
        detail = body["detail"] if isinstance(body.get("detail"), str) else detail
        type_ = body["type"] if isinstance(body.get("type"), str) else type_
    return title, detail, type_


def _text(response: httpx.Response, what: str) -> str:
    try:
        return response.content.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponse(f"{what} is not UTF-8 text") from None


def _json(response: httpx.Response, what: str) -> dict[str, object]:
    try:
        body = pydantic_core.from_json(response.content)  # twice as fast as json.loads on big pages
    except ValueError:
        raise MalformedResponse(f"{what} is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedResponse(f"{what} is not a JSON object")
    return body


def _count(body: dict[str, object], name: str, what: str) -> int:
    value = body.get(name)
    if type(value) is not int or value < 0:  # bool is an int subclass, and not a count
        raise MalformedResponse(f"{what}'s {name!r} is {value!r}, not a non-negative integer")
    return value


def _hash(value: object, what: str) -> bytes:
    try:
        digest = binascii.a2b_base64(value, strict_mode=True)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MalformedResponse(f"{what} is not standard base64") from None
    if len(digest) != _HASH_SIZE:
        raise MalformedResponse(f"{what} is {len(digest)} bytes, not a {_HASH_SIZE}-byte SHA-256 hash")
    return digest


def _hashes(body: dict[str, object], what: str) -> list[bytes]:
    proof = body.get("proof")
    if not isinstance(proof, list):
        raise MalformedResponse(f"{what} has no 'proof' list")
    return [_hash(value, f"{what}'s hash {i}") for i, value in enumerate(proof)]


def _first_bad_entry(items: list[object]) -> str:
    """Why the page's entries did not decode, naming the first bad one (the slow path of `entries`)."""
    for position, item in enumerate(items):
        if not isinstance(item, dict) or type(item.get("index")) is not int:
            return f"item {position} of the entries page has no integer 'index'"
        try:
            binascii.a2b_base64(item.get("entry"), strict_mode=True)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return f"entry {item['index']} (item {position} of its page) is not standard base64"
    return "the entries page is malformed"
