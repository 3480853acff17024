"""FastAPI application factory: wires routers, middleware and error handlers; nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from broker import logs
from broker.api import (
    accounts,
    audit,
    brand,
    contacts,
    contract,
    custody,
    directory,
    disputes,
    email,
    factors,
    feedback,
    health,
    intents,
    me,
    oauth,
    offers,
    preferences,
    receipts,
    recovery,
    retention,
    security,
    signin,
    value,
    webhooks,
)
from broker.db import ensure_migrated
from broker.errors import DatabaseNotMigrated
from broker.portal import account as portal_account
from broker.portal import authorize as portal_authorize
from broker.portal import custody as portal_custody
from broker.portal import directory as portal_directory
from broker.portal import email_pages
from broker.portal import errors as portal_errors
from broker.portal import grants as portal_grants
from broker.portal import intents as portal_intents
from broker.portal import login as portal_login
from broker.portal import logout as portal_logout
from broker.portal import password as portal_password
from broker.portal import preferences as portal_preferences
from broker.portal import profile as portal_profile
from broker.portal import recovery as portal_recovery
from broker.portal import security as portal_security
from broker.portal import sessions as portal_sessions
from broker.portal import signin_pages as portal_signin
from broker.runtime import Runtime, build_runtime
from broker.settings import Settings
from broker.signals import listen
from broker.versions import API_VERSION, API_VERSION_HEADER, RELEASE
from broker.web import problems
from broker.web.middleware import SEALING_BODY_BYTES, BodyLimitMiddleware, RequestContextMiddleware
from broker.web.routing import index_routes
from broker.web.threads import stop_request_threads

DESCRIPTION = f"""Consentry: a consumer-owned personal data vault and consent broker.

This is version {API_VERSION} of its HTTP API (the paths under `/v1`): every answer names the versions
the server serves in its `{API_VERSION_HEADER}` header, and the discovery metadata in
`consentry_api_versions`.

Every error is `application/problem+json` (RFC 9457) with a stable `type` URI under
`https://consentry.dev/problems/`.
"""


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, check_schema: bool = True
) -> FastAPI:
    """Build the application. Refuses to start on a database that is not migrated."""
    owned = runtime is None
    runtime = runtime or build_runtime(settings or Settings())
    if check_schema:
        try:
            ensure_migrated(runtime.engine)
        except DatabaseNotMigrated:
            if owned:
                runtime.dispose()
            raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings, sessions = runtime.settings, runtime.sessions
        periodic = [
            (settings.audit_checkpoint_interval_seconds, runtime.checkpoints.sign_periodically),
            (settings.lifecycle_interval_seconds, runtime.lifecycle.sweep_periodically),
            (settings.webhook_interval_seconds, runtime.webhook_delivery.deliver_periodically),
            (settings.mail_interval_seconds, runtime.mail_delivery.deliver_periodically),
        ]
        tasks = [asyncio.create_task(run(sessions, interval)) for interval, run in periodic if interval]
        # PostgreSQL: the brand cache and the directory's pages serve only while this process hears of
        # changes (broker.signals).
        watched = dict.fromkeys((runtime.oauth.clients.signals, *runtime.directory_pages.watched))
        tasks.append(asyncio.create_task(listen(*watched)))
        runtime.committer.start(sessions)
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Reads already queued are committed and answered; the threads are gone before the engine.
        await stop_request_threads(app)
        await runtime.committer.drained()
        await asyncio.to_thread(runtime.committer.stop)
        if owned:
            runtime.dispose()
        logs.flush()  # uvicorn ends the process by re-raising SIGTERM: no atexit flush follows

    app = FastAPI(
        lifespan=lifespan,
        title="Consentry",
        version=RELEASE,  # the release (VERSION); the API's version is in the description
        description=DESCRIPTION,
        separate_input_output_schemas=False,
        # Swagger UI and ReDoc load scripts from a CDN, which our CSP (rightly) forbids: the spec is
        # served at /openapi.json and committed as openapi/openapi.json.
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry would export every request (URL and query string included) to
        # a provider configured in the process, and asks whether one is, for every request: off. An
        # operator who wants traces wraps the ASGI app in middleware that redacts what they must.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    # Browsers read the portal (and its consent screen): their errors are pages, every other path's
    # are problem+json.
    pages = dict.fromkeys(portal_errors.PAGE_PREFIXES, portal_errors.error_page)
    problems.install(app, pages=pages)
    portal_errors.install(app)
    # FastAPI tries the routers in order (`index_routes` below passes over those that cannot match), so
    # the paths called most (a brand's reads and tokens, a customer's grants) come first; no two
    # routers' paths overlap.
    app.include_router(health.router)
    app.include_router(oauth.router)
    app.include_router(brand.router)
    app.include_router(me.router)
    app.include_router(custody.router)
    app.include_router(preferences.router)
    app.include_router(contacts.brand_router)
    app.include_router(contacts.customer_router)
    app.include_router(contacts.auditor_router)
    app.include_router(feedback.customer_router)
    app.include_router(feedback.brand_router)
    app.include_router(intents.customer_router)
    app.include_router(intents.brand_router)
    app.include_router(accounts.router)
    app.include_router(signin.router)
    app.include_router(factors.router)
    app.include_router(email.router)
    app.include_router(security.router)
    app.include_router(recovery.router)
    app.include_router(offers.router)
    app.include_router(directory.router)
    app.include_router(directory.brand_router)
    app.include_router(audit.router)
    app.include_router(receipts.router)
    app.include_router(value.brand_router)
    app.include_router(value.customer_router)
    app.include_router(value.auditor_router)
    app.include_router(disputes.router)
    app.include_router(webhooks.router)
    app.include_router(retention.brand_router)
    app.include_router(retention.acknowledgement_router)
    app.include_router(retention.auditor_router)
    app.include_router(portal_authorize.router)
    app.include_router(portal_logout.router)
    app.include_router(portal_login.router)
    app.include_router(portal_grants.router)
    app.include_router(portal_directory.router)
    app.include_router(portal_profile.router)
    app.include_router(portal_custody.router)
    app.include_router(portal_preferences.router)
    app.include_router(portal_intents.router)
    app.include_router(portal_account.router)
    app.include_router(portal_signin.router)
    app.include_router(portal_security.router)
    app.include_router(email_pages.router)
    app.include_router(portal_sessions.router)
    app.include_router(portal_password.router)
    app.include_router(portal_recovery.router)
    app.mount("/portal/static", StaticFiles(directory=str(files("broker.portal") / "static")), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/portal/", status_code=307)

    index_routes(app)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return contract.document_problems(generate_openapi())

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=runtime.settings.max_body_bytes,
        pages=pages,
        wider={"/v1/me/custody/": SEALING_BODY_BYTES},
    )
    app.add_middleware(RequestContextMiddleware, hsts=runtime.settings.secure_cookies, pages=pages)
    return app
