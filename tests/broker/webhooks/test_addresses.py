"""Webhooks never go to private networks (SSRF): refused at registration with a 422 saying why, and
again at every delivery, which connects to the address it vetted (a name that rebinds gains nothing).

These tests run with the default settings (no private targets) and an injected resolver."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from support.core import bearer
from support.oauth import BrandCredentials, authorized
from support.webhooks import hook_token, register

from broker.app import create_app
from broker.runtime import Runtime
from broker.webhooks.addresses import Refused, refusal, vet

PUBLIC = "93.184.216.34"


class Dns:
    """An injected resolver: names map to the addresses given, anything else does not resolve."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {
            "localhost": ["127.0.0.1", "::1"],
            "intranet.grocer.example": ["10.20.30.40"],
            "split.grocer.example": [PUBLIC, "192.168.1.10"],
            "hooks.grocer.example": [PUBLIC],
        }

    def __call__(self, host: str, port: int) -> Sequence[str]:
        if host not in self.names:
            raise OSError(f"{host}: name or service not known")
        return self.names[host]


@pytest.fixture
def dns() -> Dns:
    return Dns()


@pytest.fixture
def client(runtime: Runtime, dns: Dns) -> Iterator[TestClient]:
    """The app, its webhooks resolving names with `dns` (the notice subscriber keeps the original)."""
    resolving = dataclasses.replace(runtime, webhooks=dataclasses.replace(runtime.webhooks, resolve=dns))
    with TestClient(create_app(runtime=resolving), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/", "https://"),
        ("https://127.0.0.1/", "loopback"),
        ("https://localhost/hooks", "resolves to 127.0.0.1, which is a loopback address"),
        ("https://[::1]/", "loopback"),
        ("https://10.0.0.1/", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::ffff:127.0.0.1]/", "loopback address (127.0.0.1) in an IPv6 form"),
        (
            "https://[64:ff9b::a9fe:a9fe]/",
            "link-local address (cloud metadata lives there) (169.254.169.254)",
        ),
        ("https://[2002:a00:1::]/", "private address (10.0.0.1) in an IPv6 form"),
        ("https://2130706433/", "is the address 127.0.0.1, which is a loopback address"),
        ("https://0177.0.0.1/", "127.0.0.1"),
        ("https://0x7f.1/", "127.0.0.1"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://224.0.0.251/", "multicast"),
        ("https://100.64.0.1/", "shared (CGNAT)"),
        ("https://240.0.0.1/", "reserved"),
        ("https://intranet.grocer.example/", "resolves to 10.20.30.40, which is a private address"),
        ("https://split.grocer.example/", "resolves to 192.168.1.10"),
        ("https://nowhere.grocer.example/", "does not resolve"),
        ("https://user:pass@hooks.grocer.example/", "user name or password"),
        ("https://hooks.grocer.example:99999/", "not valid"),
    ],
)
def test_a_webhook_url_that_leads_to_a_private_address_is_refused_saying_why(
    client: TestClient, brand: BrandCredentials, url: str, why: str
) -> None:
    response = client.post("/v1/webhooks", json={"url": url}, headers=bearer(hook_token(client, brand)))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://consentry.dev/problems/validation"
    assert problem["errors"][0]["pointer"] == "/url" and why in problem["detail"], problem["detail"]
    assert client.get("/v1/webhooks", headers=bearer(hook_token(client, brand))).json()["items"] == []


def test_a_public_https_url_is_accepted(client: TestClient, brand: BrandCredentials) -> None:
    created = register(client, hook_token(client, brand), "https://hooks.grocer.example/consentry?k=1")
    assert created["url"] == "https://hooks.grocer.example/consentry?k=1"


def test_every_global_address_passes_and_mapped_forms_of_public_ones_too() -> None:
    for address in ("8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"):
        assert vet(f"https://[{address}]/" if ":" in address else f"https://{address}/", allow_private=False)
    with pytest.raises(Refused, match="a documentation address"):
        vet("https://[2001:db8::1]/", allow_private=False)
    assert refusal(ipaddress.ip_address("192.0.2.1")) is not None  # documentation range


def test_delivery_vets_again_and_connects_to_the_vetted_address_with_the_name_in_host_and_sni(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    dns: Dns,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    delivery = dataclasses.replace(
        runtime.webhook_delivery, resolve=dns, transport=httpx.MockTransport(answer)
    )
    register(
        client, hook_token(client, brand), "https://hooks.grocer.example/consentry", events=["grant.created"]
    )
    authorized(client, brand, offer)
    assert delivery.deliver_due(runtime.sessions) == 1
    [request] = seen
    assert request.url.host == PUBLIC and request.url.path == "/consentry" and request.url.scheme == "https"
    assert request.headers["host"] == "hooks.grocer.example"
    assert request.extensions["sni_hostname"] == "hooks.grocer.example"


def test_a_name_that_rebinds_to_a_private_address_after_registration_is_not_sent_to(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    dns: Dns,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    delivery = dataclasses.replace(
        runtime.webhook_delivery, resolve=dns, transport=httpx.MockTransport(answer)
    )
    token = hook_token(client, brand)
    endpoint = register(client, token, "https://hooks.grocer.example/", events=["grant.created"])
    dns.names["hooks.grocer.example"] = ["169.254.169.254"]
    authorized(client, brand, offer)
    assert delivery.deliver_due(runtime.sessions) == 1
    assert seen == []
    [attempt] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(token)).json()["items"]
    assert attempt["status_code"] is None and attempt["error"].startswith("refused:")
    assert "169.254.169.254" in attempt["error"] and attempt["next_attempt_at"] is not None


def test_redirects_are_not_followed(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    dns: Dns,
) -> None:
    seen: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"location": "http://169.254.169.254/latest/meta-data"})

    delivery = dataclasses.replace(
        runtime.webhook_delivery, resolve=dns, transport=httpx.MockTransport(redirect)
    )
    token = hook_token(client, brand)
    endpoint = register(client, token, "https://hooks.grocer.example/", events=["grant.created"])
    authorized(client, brand, offer)
    delivery.deliver_due(runtime.sessions)
    assert [r.url.host for r in seen] == [PUBLIC]
    [attempt] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(token)).json()["items"]
    assert attempt["status_code"] == 307 and attempt["next_attempt_at"] is not None


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("fec0::1", "site-local"),  # deprecated (RFC 3879); Python's is_global says True
        ("feff::1", "site-local"),
        ("3ffe::1", "6bone"),  # returned (RFC 3701)
        ("192.88.99.1", "6to4 relay"),  # deprecated anycast (RFC 7526)
        ("192.0.0.8", "IETF protocol assignments"),
        ("3fff::1", "documentation"),  # RFC 9637
        ("5f00::1", "reserved"),
        ("::10.0.0.1", "reserved"),  # the deprecated IPv4-compatible form
        ("::ffff:192.168.0.1", "private address (192.168.0.1) in an IPv6 form"),
        ("2002:c0a8:101::", "private address (192.168.1.1) in an IPv6 form"),
        ("64:ff9b::c0a8:101", "private address (192.168.1.1) in an IPv6 form"),
        ("64:ff9b::c058:6301", "6to4 relay"),  # NAT64 of a deprecated IPv4 range
        ("64:ff9b:1::a00:1", "local-use NAT64"),  # RFC 8215
    ],
)
def test_every_non_global_range_is_refused_deprecated_ones_included(address: str, why: str) -> None:
    with pytest.raises(Refused, match=re.escape(why)):
        vet(f"https://[{address}]/" if ":" in address else f"https://{address}/", allow_private=False)
