"""`consentry-audit verify` and `check-reads` against a fake auditor API: the whole log is downloaded and
hashed, and every way a server can lie (an edited, missing, duplicated or reordered entry, a forked or
rolled-back log, a checkpoint signed by someone else) fails with exit 1; not being able to ask exits 2."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from support import served
from typer.testing import CliRunner

from clients.auditor import (
    AuditorClient,
    AuditorState,
    Checkpoint,
    KeySource,
    Signer,
    consistency_proof,
    format_checkpoint,
    generate_private_key,
    leaf_hash,
    load_state,
    parse_private_key,
    root_hash,
    verify_log,
)
from clients.auditor.cli import app

ORIGIN = "consentry.example/audit"
TOKEN = "auditor-token-1"
URL = "https://consentry.example"
GRANT = "5b0f7a7e-6c1e-4c52-9d55-8a0d8f1e2b01"
BRAND = "0c8f4a4e-3d8b-4a9e-9f0a-1f6f1c6e7d21"

Page = dict[str, Any]


def make_entries(count: int, *, seed: int = 0) -> list[bytes]:
    """A realistic log: a grant created, then reads under it (RFC 8785 JSON, as the server writes)."""
    created: dict[str, Any] = {
        "v": 1,
        "kind": "grant.created",
        "at": "2026-11-23T10:00:00.000000Z",
        "actor": "customer",
        "brand": BRAND,
        "subject": "ab" * 16,
        "grant": GRANT,
        "offer": "7d3c1e9a-1111-4c52-9d55-8a0d8f1e2b01",
        "fields": ["email", "dietary"],
        "purpose": "newsletter",
        "expires_at": "2027-11-23T10:00:00.000000Z",
    }
    reads = [
        {
            "v": 1,
            "kind": "profile.read",
            "at": f"2026-11-23T10:{i // 60 % 60:02d}:{i % 60:02d}.{seed:06d}Z",
            "actor": "brand",
            "request_id": f"req-{seed}-{i}",
            "brand": BRAND,
            "subject": "ab" * 16,
            "grant": GRANT,
            "fields": ["email"],
            "purpose": "newsletter",
        }
        for i in range(1, count)
    ]
    return [rfc8785.dumps(entry) for entry in ([created, *reads] if count else [])]


@dataclass
class FakeAuditor:
    """The auditor API over `entries`, checkpoints signed by `signer`, as an httpx transport.

    `tamper` edits each entries page before it is sent; `served` replaces the entries served (not
    those the checkpoint covers), as a server that changed the log after signing would.
    """

    signer: Signer
    entries: list[bytes]
    origin: str = ORIGIN
    page_size: int = 7
    tamper: Callable[[Page], Page] | None = None
    served: list[bytes] | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def leaves(self) -> list[bytes]:
        return [leaf_hash(entry) for entry in self.entries]

    def transport(self) -> httpx.MockTransport:
        return served.consentry(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return problem(401, "Unauthorized", "the token is unknown or revoked")
        params = {name: int(value) for name, value in request.url.params.items()}
        match request.url.path:
            case "/v1/audit/key":
                return httpx.Response(200, text=self.signer.verifier_key() + "\n")
            case "/v1/audit/checkpoint":
                checkpoint = Checkpoint(self.origin, len(self.entries), root_hash(self.leaves))
                return httpx.Response(200, text=self.signer.sign(format_checkpoint(checkpoint)))
            case "/v1/audit/entries":
                return self.page(params["start"], params.get("end", len(self.entries)))
            case "/v1/audit/proofs/consistency":
                proof = consistency_proof(self.leaves, params["first"])
                return httpx.Response(200, json={**params, "proof": [b64(node) for node in proof]})
        return problem(404, "Not Found", request.url.path)

    def page(self, start: int, end: int) -> httpx.Response:
        entries = self.entries if self.served is None else self.served
        if start >= len(entries) or start > end:
            return problem(400, "Bad Request", f"no entries [{start}, {end})")
        stop = min(end, start + self.page_size)
        body: Page = {
            "start": start,
            "end": stop,
            "tree_size": len(entries),
            "entries": [{"index": i, "entry": b64(entries[i])} for i in range(start, stop)],
            "next": stop if stop < end else None,
        }
        return httpx.Response(200, json=self.tamper(body) if self.tamper else body)


def problem(status: int, title: str, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return parse_private_key(generate_private_key(ORIGIN))


@pytest.fixture
def server(signer: Signer) -> FakeAuditor:
    return FakeAuditor(signer, make_entries(30))


runner = CliRunner()


def run(server: FakeAuditor, *args: str) -> Any:
    base = ["--url", URL, "--token", TOKEN]
    command, *rest = args
    return runner.invoke(app, [command, *base, *rest], obj=server.transport())


def run_json(server: FakeAuditor, *args: str) -> tuple[int, dict[str, Any]]:
    result = run(server, *args, "--json")
    return result.exit_code, json.loads(result.stdout)


# The verification function


def test_verify_log_is_usable_without_the_cli(server: FakeAuditor, signer: Signer) -> None:
    pages: list[tuple[int, int]] = []
    with AuditorClient(URL, TOKEN, transport=server.transport()) as client:
        report = verify_log(
            client, key=signer.verifier, on_entries=lambda start, entries: pages.append((start, len(entries)))
        )
    assert report.verified, report.problems
    assert report.key_source is KeySource.PINNED
    assert report.checkpoint == Checkpoint(ORIGIN, 30, root_hash(server.leaves))
    assert report.entries == 30
    assert pages == [(0, 7), (7, 7), (14, 7), (21, 7), (28, 2)]
    assert report.new_state().tree_size == 30


def test_only_a_verified_log_gives_a_new_state(server: FakeAuditor) -> None:
    server.served = make_entries(30, seed=1)
    with AuditorClient(URL, TOKEN, transport=server.transport()) as client:
        report = verify_log(client)
    assert not report.verified
    with pytest.raises(ValueError, match="only a verified log"):
        report.new_state()


# The command: success


def test_a_log_matching_its_checkpoint_verifies(server: FakeAuditor, signer: Signer) -> None:
    result = run(server, "verify", "--key", signer.verifier_key())
    assert result.exit_code == 0, result.output
    assert "audit log verified: 30 entries" in result.stdout
    assert b64(root_hash(server.leaves)) in result.stdout
    assert "pinned" in result.stdout
    assert result.stderr == ""


def test_json_output_is_one_object(server: FakeAuditor, signer: Signer) -> None:
    code, document = run_json(server, "verify", "--key", signer.verifier_key())
    assert code == 0
    assert document | {"seconds": 0, "entries_per_second": 0} == {
        "verified": True,
        "url": URL,
        "origin": ORIGIN,
        "key": signer.verifier_key(),
        "key_source": "pinned",
        "tree_size": 30,
        "root_hash": b64(root_hash(server.leaves)),
        "previous_tree_size": None,
        "previous_root_hash": None,
        "entries": 30,
        "source": "json",  # this fake serves no tiles: verify falls back to the JSON pages
        "seconds": 0,
        "entries_per_second": 0,
        "state": None,
        "problems": [],
    }


def test_the_key_may_be_read_from_a_file(server: FakeAuditor, signer: Signer, tmp_path: Path) -> None:
    key_file = tmp_path / "log.vkey"
    key_file.write_text(signer.verifier_key() + "\n", encoding="utf-8")
    assert run(server, "verify", "--key", f"@{key_file}").exit_code == 0


def test_an_empty_log_verifies_without_asking_for_entries(signer: Signer) -> None:
    server = FakeAuditor(signer, [])
    code, document = run_json(server, "verify", "--key", signer.verifier_key())
    assert (code, document["tree_size"]) == (0, 0)
    assert [r.url.path for r in server.requests] == ["/v1/audit/checkpoint"]


def test_without_a_key_the_servers_key_is_trusted_on_first_use_and_remembered(
    server: FakeAuditor, signer: Signer, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    result = run(server, "verify", "--state", str(state))
    assert result.exit_code == 0, result.output
    assert "trusting the server's own key" in result.stderr
    assert "trusted on first use" in result.stdout
    remembered = load_state(state)
    assert remembered is not None and remembered.key == signer.verifier_key()
    code, document = run_json(server, "verify", "--state", str(state))
    assert (code, document["key_source"]) == (0, "state")
    assert [r.url.path for r in server.requests].count("/v1/audit/key") == 1


def test_the_state_file_round_trips_and_a_grown_log_must_extend_it(
    server: FakeAuditor, signer: Signer, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    assert run(server, "verify", "--key", signer.verifier_key(), "--state", str(state)).exit_code == 0
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["tree_size"] == 30 and saved["origin"] == ORIGIN and saved["key"] == signer.verifier_key()
    assert AuditorState.model_validate(saved).verified_checkpoint().size == 30

    server.entries += make_entries(25, seed=2)
    code, document = run_json(server, "verify", "--state", str(state))
    assert code == 0, document["problems"]
    assert (document["previous_tree_size"], document["tree_size"]) == (30, 55)
    asked = [r.url.params for r in server.requests if r.url.path.endswith("/consistency")]
    assert [(p["first"], p["second"]) for p in asked] == [("30", "55")]
    remembered = load_state(state)
    assert remembered is not None and remembered.tree_size == 55


def test_the_same_log_verifies_again_against_its_state(server: FakeAuditor, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert run(server, "verify", "--state", str(state)).exit_code == 0
    code, document = run_json(server, "verify", "--state", str(state))
    assert (code, document["previous_tree_size"], document["tree_size"]) == (0, 30, 30)


# The command: a lying server


def verified_state(server: FakeAuditor, tmp_path: Path) -> Path:
    state = tmp_path / "state.json"
    assert run(server, "verify", "--state", str(state)).exit_code == 0
    return state


def test_a_rolled_back_log_fails_and_keeps_the_state(server: FakeAuditor, tmp_path: Path) -> None:
    state = verified_state(server, tmp_path)
    before = state.read_bytes()
    server.entries = server.entries[:20]
    result = run(server, "verify", "--state", str(state))
    assert result.exit_code == 1
    assert "the log shrank" in result.stderr and "rolled back" in result.stderr
    assert state.read_bytes() == before


def test_a_forked_log_of_the_same_size_fails(server: FakeAuditor, tmp_path: Path) -> None:
    state = verified_state(server, tmp_path)
    before = state.read_bytes()
    server.entries[12] = make_entries(13, seed=9)[12]  # a different entry, honestly re-signed
    code, document = run_json(server, "verify", "--state", str(state))
    assert code == 1
    remembered = document["previous_root_hash"]
    assert document["problems"] == [
        f"the first 30 entries no longer hash to the root verified before ({remembered}): "
        "the log was rewritten or forked"
    ]
    assert state.read_bytes() == before


def test_a_forked_log_that_grew_fails_its_consistency_proof(server: FakeAuditor, tmp_path: Path) -> None:
    state = verified_state(server, tmp_path)
    server.entries[3] = make_entries(4, seed=9)[3]
    server.entries += make_entries(10, seed=3)
    code, document = run_json(server, "verify", "--state", str(state))
    assert code == 1
    assert len(document["problems"]) == 2
    assert "no longer hash to the root verified before" in document["problems"][0]
    assert "consistency proof from 30 to 40 entries does not verify" in document["problems"][1]


def test_an_edited_entry_does_not_hash_to_the_signed_root(server: FakeAuditor, signer: Signer) -> None:
    server.served = list(server.entries)
    server.served[17] = server.served[17].replace(b'"email"', b'"phone"')
    result = run(server, "verify", "--key", signer.verifier_key())
    assert result.exit_code == 1
    assert "not to the checkpoint's root" in result.stderr
    assert result.stdout == ""


def test_a_checkpoint_signed_by_another_key_fails(server: FakeAuditor, signer: Signer) -> None:
    server.signer = parse_private_key(generate_private_key(ORIGIN))
    result = run(server, "verify", "--key", signer.verifier_key())
    assert result.exit_code == 1
    assert "the checkpoint does not verify: no signature by a known key" in result.stderr


def test_a_key_other_than_the_remembered_one_fails(server: FakeAuditor, tmp_path: Path) -> None:
    state = verified_state(server, tmp_path)
    stranger = parse_private_key(generate_private_key(ORIGIN))
    result = run(server, "verify", "--key", stranger.verifier_key(), "--state", str(state))
    assert result.exit_code == 1
    assert "is not the key the state file trusts" in result.stderr


def test_a_checkpoint_for_another_origin_than_remembered_fails(server: FakeAuditor, tmp_path: Path) -> None:
    state = verified_state(server, tmp_path)
    server.origin = "elsewhere.example/audit"
    result = run(server, "verify", "--state", str(state))
    assert result.exit_code == 1
    assert "but the state file remembers the log 'consentry.example/audit'" in result.stderr


def drop(i: int) -> Callable[[Page], Page]:
    def tamper(page: Page) -> Page:
        items = page["entries"]
        return page | {"entries": items[:i] + items[i + 1 :], "end": page["end"] - 1}

    return tamper


def duplicate(page: Page) -> Page:
    items = page["entries"]
    return page | {"entries": [items[0], *items[:-1]]}


def swap(page: Page) -> Page:
    items = page["entries"]
    return page | {"entries": [items[1], items[0], *items[2:]]}


def with_item(change: dict[str, Any]) -> Callable[[Page], Page]:
    def tamper(page: Page) -> Page:
        return page | {"entries": [page["entries"][0] | change, *page["entries"][1:]]}

    return tamper


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (drop(3), "item 3 of the page of entries [0, 6) has index 4, not 3"),
        (lambda page: page | {"entries": page["entries"][:-1]}, "holds 6 entries, not 7"),
        (duplicate, "item 1 of the page of entries [0, 7) has index 0, not 1"),
        (swap, "has index 1, not 0: an entry is missing, duplicated or out of order"),
        (with_item({"entry": "not base64!"}), "entry 0 (item 0 of its page) is not standard base64"),
        (with_item({"index": "0"}), "has no integer 'index'"),
        (lambda page: page | {"start": 1}, "asked for entries [0, 30), the server answered"),
        (lambda page: page | {"end": 40}, "the server answered the page of entries [0, 40)"),
        (lambda page: page | {"next": None}, "says the next page starts at None, not 7"),
        (lambda page: page | {"tree_size": 3}, "says the log has 3 entries, fewer than its checkpoint's 30"),
        (lambda page: page | {"entries": {}}, "the entries page has no 'entries' list"),
    ],
)
def test_a_page_that_is_not_exactly_the_next_entries_fails(
    server: FakeAuditor, signer: Signer, tamper: Callable[[Page], Page], reason: str
) -> None:
    server.tamper = tamper
    result = run(server, "verify", "--key", signer.verifier_key())
    assert result.exit_code == 1, result.output
    assert reason in result.stderr


# The command: cannot ask


def test_a_refused_token_exits_2(server: FakeAuditor, signer: Signer) -> None:
    base = ["--url", URL, "--token", "wrong", "--key", signer.verifier_key()]
    result = runner.invoke(app, ["verify", *base], obj=server.transport())
    assert result.exit_code == 2
    assert "the server refused the token (401 Unauthorized: the token is unknown or revoked)" in result.stderr


def test_the_token_may_come_from_the_environment(server: FakeAuditor) -> None:
    env = {"CONSENTRY_AUDIT_TOKEN": TOKEN}
    result = runner.invoke(app, ["verify", "--url", URL], obj=server.transport(), env=env)
    assert result.exit_code == 0, result.output


def test_an_unreachable_server_exits_2() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = runner.invoke(app, ["verify", "--url", URL, "--token", TOKEN], obj=httpx.MockTransport(refuse))
    assert result.exit_code == 2
    assert "cannot reach https://consentry.example/v1/audit/key" in result.stderr


def test_a_server_error_exits_2() -> None:
    broken = httpx.MockTransport(lambda request: httpx.Response(503, text="down for maintenance"))
    result = runner.invoke(app, ["verify", "--url", URL, "--token", TOKEN], obj=broken)
    assert result.exit_code == 2
    assert "the server answered 503 Service Unavailable" in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["verify", "--url", "ftp://x", "--token", TOKEN], "not an http(s) URL"),
        (["verify", "--token", TOKEN], "Missing option '--url'"),
        (["verify", "--url", URL, "--token", TOKEN, "--key", "@/no/such/file"], "cannot read a key"),
        (["check-reads", "--url", URL, "--token", TOKEN, "--key", "nope"], "Invalid value for '--key'"),
    ],
)
def test_usage_errors_exit_2(args: list[str], reason: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert reason in result.stderr


def test_a_corrupt_state_file_is_a_usage_error(server: FakeAuditor, tmp_path: Path) -> None:
    state = verified_state(server, tmp_path)
    saved = json.loads(state.read_text(encoding="utf-8"))
    state.write_text(json.dumps(saved | {"tree_size": 31}), encoding="utf-8")
    result = run(server, "verify", "--state", str(state))
    assert result.exit_code == 2
    assert "not a usable consentry-audit state file" in result.stderr
    assert "differ from the remembered checkpoint's" in result.stderr


# check-reads over a verified log


def test_check_reads_passes_a_log_whose_reads_are_all_covered(server: FakeAuditor, signer: Signer) -> None:
    result = run(server, "check-reads", "--key", signer.verifier_key())
    assert result.exit_code == 0, result.output
    assert "29 profile reads, each covered by a live grant" in result.stdout


def test_check_reads_lists_an_uncovered_read(server: FakeAuditor, signer: Signer) -> None:
    revoked: dict[str, Any] = {
        "v": 1,
        "kind": "grant.revoked",
        "at": "2026-11-23T11:00:00.000000Z",
        "actor": "customer",
    }
    server.entries.insert(10, rfc8785.dumps(revoked | {"brand": BRAND, "subject": "ab" * 16, "grant": GRANT}))
    code, document = run_json(server, "check-reads", "--key", signer.verifier_key())
    assert code == 1
    assert document["verified"] is True
    assert document["reads"] == 29
    assert [v["index"] for v in document["violations"]] == list(range(11, 31))
    assert document["violations"][0] | {"at": None} == {
        "index": 11,
        "at": None,
        "grant": GRANT,
        "brand": BRAND,
        "fields": ["email"],
        "codes": ["grant_revoked"],
        "reason": "the grant was revoked at entry 10",
    }
    table = run(server, "check-reads", "--key", signer.verifier_key())
    assert "20 of 29 profile reads not covered" in table.stdout


def test_check_reads_fails_when_the_log_does_not_verify(server: FakeAuditor, signer: Signer) -> None:
    server.served = make_entries(30, seed=4)
    code, document = run_json(server, "check-reads", "--key", signer.verifier_key())
    assert (code, document["verified"], document["violations"]) == (1, False, [])


def test_pages_of_any_size_give_the_same_result(signer: Signer) -> None:
    entries = make_entries(200)
    for page_size in (1, 2, 3, 64, 199, 200, 10_000):
        server = FakeAuditor(signer, entries, page_size=page_size)
        assert run(server, "verify", "--key", signer.verifier_key()).exit_code == 0
