"""The SDK's webhook verifier (Standard Webhooks v1): a webhook is believed only with a matching
signature, a timestamp within the tolerance either way, and, given a replay cache, an id not accepted
before. Vectors from the Standard Webhooks reference library's tests."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from clients.brand import (
    MemoryReplayCache,
    WebhookEvent,
    WebhookReplayed,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

# standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py (test_sign_function)
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID, VECTOR_TIMESTAMP = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BODY = json.dumps(
    {
        "type": "grant.revoked",
        "timestamp": "2026-11-23T08:59:58.123456Z",
        "data": {"grant_id": "g-1", "subject": "s"},
    },
    separators=(",", ":"),
).encode()


def headers(
    *, body: bytes = BODY, at: datetime = NOW, message_id: str = "msg_1", secret: str = SECRET
) -> dict[str, str]:
    stamp = int(at.timestamp())
    signature = sign_webhook(secret=secret, message_id=message_id, timestamp=stamp, body=body)
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def test_signing_matches_the_reference_vector() -> None:
    signed = sign_webhook(
        secret=VECTOR_SECRET, message_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY
    )
    assert signed == VECTOR_SIGNATURE


def test_the_reference_vector_verifies_and_then_must_be_an_event() -> None:
    vector = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    at = datetime.fromtimestamp(VECTOR_TIMESTAMP, UTC)
    with pytest.raises(WebhookVerificationError, match="signature is valid but the body is not an event"):
        verify_webhook(secret=VECTOR_SECRET, headers=vector, body=VECTOR_BODY, now=at)
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(secret=VECTOR_SECRET, headers=vector, body=VECTOR_BODY.replace("2", "3"), now=at)


def test_a_valid_webhook_is_its_event() -> None:
    event = verify_webhook(secret=SECRET, headers=headers(), body=BODY, now=NOW)
    assert event == WebhookEvent(
        id="msg_1",
        type="grant.revoked",
        timestamp=datetime(2026, 11, 23, 8, 59, 58, 123456, tzinfo=UTC),
        data={"grant_id": "g-1", "subject": "s"},
        sent_at=NOW,
    )


def test_header_names_are_case_insensitive_and_the_secret_prefix_optional() -> None:
    shouted = {name.upper(): value for name, value in headers().items()}
    assert (
        verify_webhook(secret=SECRET.removeprefix("whsec_"), headers=shouted, body=BODY, now=NOW).id
        == "msg_1"
    )


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"grant.revoked", b"grant.created")
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(secret=SECRET, headers=headers(), body=tampered, now=NOW)


def test_a_signature_under_another_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(bytes(32)).decode()
    with pytest.raises(WebhookVerificationError, match="wrong secret"):
        verify_webhook(secret=SECRET, headers=headers(secret=other), body=BODY, now=NOW)


def test_a_signed_id_or_timestamp_cannot_be_changed() -> None:
    moved = headers() | {"webhook-id": "msg_2"}
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(secret=SECRET, headers=moved, body=BODY, now=NOW)
    later = headers() | {"webhook-timestamp": str(int(NOW.timestamp()) + 1)}
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(secret=SECRET, headers=later, body=BODY, now=NOW)


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(timedelta(minutes=-5, seconds=-1), "older than"), (timedelta(minutes=5, seconds=1), "in the future")],
)
def test_a_stale_or_future_timestamp_is_refused_even_when_signed(offset: timedelta, reason: str) -> None:
    with pytest.raises(WebhookVerificationError, match=reason):
        verify_webhook(secret=SECRET, headers=headers(at=NOW + offset), body=BODY, now=NOW)


def test_timestamps_at_the_edge_of_the_tolerance_pass_and_the_tolerance_is_configurable() -> None:
    for offset in (timedelta(minutes=-5), timedelta(minutes=5)):
        verify_webhook(secret=SECRET, headers=headers(at=NOW + offset), body=BODY, now=NOW)
    with pytest.raises(WebhookVerificationError, match="older than"):
        verify_webhook(
            secret=SECRET, headers=headers(at=NOW - timedelta(seconds=31)), body=BODY, now=NOW,
            tolerance=timedelta(seconds=30),
        )  # fmt: skip


def test_a_replayed_message_is_refused_as_a_replay() -> None:
    seen = MemoryReplayCache()
    verify_webhook(secret=SECRET, headers=headers(), body=BODY, now=NOW, seen=seen)
    with pytest.raises(WebhookReplayed) as replayed:
        verify_webhook(
            secret=SECRET, headers=headers(), body=BODY, now=NOW + timedelta(seconds=10), seen=seen
        )
    assert replayed.value.message_id == "msg_1" and isinstance(replayed.value, WebhookVerificationError)
    verify_webhook(secret=SECRET, headers=headers(message_id="msg_2"), body=BODY, now=NOW, seen=seen)


def test_a_forgery_does_not_use_up_its_id() -> None:
    seen = MemoryReplayCache()
    forged = headers(secret="whsec_" + base64.b64encode(bytes(32)).decode())
    with pytest.raises(WebhookVerificationError, match="wrong secret"):
        verify_webhook(secret=SECRET, headers=forged, body=BODY, now=NOW, seen=seen)
    assert verify_webhook(secret=SECRET, headers=headers(), body=BODY, now=NOW, seen=seen).id == "msg_1"


def test_the_replay_cache_forgets_ids_once_their_timestamps_are_stale_and_stays_bounded() -> None:
    seen = MemoryReplayCache(max_entries=2)
    assert seen.add("a", now=NOW, expires_at=NOW + timedelta(minutes=5))
    assert not seen.add("a", now=NOW + timedelta(minutes=4), expires_at=NOW + timedelta(minutes=9))
    assert seen.add("a", now=NOW + timedelta(minutes=6), expires_at=NOW + timedelta(minutes=11))
    assert seen.add("b", now=NOW, expires_at=NOW + timedelta(minutes=5))
    assert seen.add("c", now=NOW, expires_at=NOW + timedelta(minutes=5))
    assert len(seen) == 2


def test_any_matching_v1_signature_among_several_is_enough() -> None:
    valid = headers()["webhook-signature"]
    other = "v1," + base64.b64encode(bytes(32)).decode()
    several = " ".join([other, "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5B", "v2," + valid[3:], valid])
    assert verify_webhook(
        secret=SECRET, headers=headers() | {"webhook-signature": several}, body=BODY, now=NOW
    )
    only_wrong = " ".join([other, "v2," + valid[3:]])  # the right digest under another version does not count
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            secret=SECRET, headers=headers() | {"webhook-signature": only_wrong}, body=BODY, now=NOW
        )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"webhook-id": ""}, "missing"),
        ({"webhook-timestamp": ""}, "missing"),
        ({"webhook-signature": ""}, "missing"),
        ({"webhook-timestamp": "hello"}, "whole number"),
        ({"webhook-timestamp": "1763888400.5"}, "whole number"),
        ({"webhook-timestamp": "-1763888400"}, "whole number"),
        ({"webhook-signature": "v1"}, "no v1 signature"),
        ({"webhook-signature": "v1,"}, "no v1 signature"),
        ({"webhook-signature": "v1,not base64!"}, "no v1 signature"),
        ({"webhook-signature": "garbage"}, "no v1 signature"),
    ],
)
def test_malformed_headers_are_refused(changes: dict[str, str], reason: str) -> None:
    with pytest.raises(WebhookVerificationError, match=reason):
        verify_webhook(secret=SECRET, headers=headers() | changes, body=BODY, now=NOW)


def test_a_secret_that_is_not_base64_is_a_configuration_mistake() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        verify_webhook(secret="whsec_!!!", headers=headers(), body=BODY, now=NOW)
