"""The portal's scripts: first-party files only, none inline, each tag carrying the Subresource
Integrity of the very bytes served (a script changed on the server's disk, or on the way, does not run)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi.testclient import TestClient

TEMPLATES = Path(__file__).resolve().parents[3] / "broker" / "portal" / "templates"
_TAG = re.compile(r"<script\b[^>]*>", re.IGNORECASE)


def test_no_template_writes_a_script_tag_of_its_own() -> None:
    for template in TEMPLATES.glob("*.html"):
        assert not _TAG.search(template.read_text()), f"{template.name}: use {{{{ script(name) }}}}"


def test_every_script_served_matches_its_integrity(client: TestClient, customer: str) -> None:
    seen = set()
    for path in ("/portal/login", "/portal/security", "/portal/custody"):
        page = client.get(path)
        assert page.status_code == 200, path
        tags = _TAG.findall(page.text)
        assert tags, path
        for tag in tags:
            src = re.search(r'src="([^"]+)"', tag)
            integrity = re.search(r'integrity="sha384-([^"]+)"', tag)
            assert src and src.group(1).startswith("/portal/static/") and integrity, tag
            served = client.get(src.group(1))
            assert served.status_code == 200
            assert base64.b64decode(integrity.group(1)) == hashlib.sha384(served.content).digest(), tag
            seen.add(src.group(1))
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert seen == {"/portal/static/passkeys.js", "/portal/static/held.js", "/portal/static/vendor/jose.js"}
