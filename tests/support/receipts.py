"""Test support for receipt bundles: the forgeries `consentry-audit receipt verify` must refuse, and
the deletion receipt a message carries."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

from clients.auditor import format_checkpoint, generate_private_key, parse_checkpoint, parse_private_key


def foreign_checkpoint(note: str) -> str:
    """The checkpoint of the signed `note`, signed instead by another key under the same log name: what
    an impostor log (or a forked view of this one) would show."""
    checkpoint = parse_checkpoint(note.split("\n\n")[0] + "\n")
    impostor = parse_private_key(generate_private_key(checkpoint.origin))
    return impostor.sign(format_checkpoint(checkpoint))


def forgeries(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Three copies of a receipt bundle, each tampered with in one way: a flipped byte of the signed
    payload, an edited decoded copy (a grant, or every grant, left out) and a foreign checkpoint."""
    header, payload, signature = bundle["jws"].split(".")
    flipped = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
    edited = {**bundle["receipt"], "grants": bundle["receipt"]["grants"][:-1]}
    return {
        "a flipped byte": {**bundle, "jws": f"{header}.{flipped}.{signature}"},
        "an edited copy": {**bundle, "receipt": edited},
        "a foreign checkpoint": {**bundle, "checkpoint": foreign_checkpoint(bundle["checkpoint"])},
    }


def attached_receipt(message: EmailMessage) -> dict[str, Any]:
    """The deletion receipt a message carries as its one attachment."""
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "consentry-deletion-receipt.json"
    assert attachment.get_content_type() == "application/json"
    found: dict[str, Any] = json.loads(attachment.get_payload(decode=True))
    return found
