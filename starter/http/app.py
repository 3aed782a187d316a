"""The HTTP JSON API: intake from every channel, agent actions, roles. A thin layer over EscalationClient.

`create_app()` builds the FastAPI application from the routers (starter/http/routers: one per domain), the
dependencies (deps.py), the error handlers (errors.py) and the request middleware; `serve()` runs it with uvicorn
(`escalation api`, `python -m starter.http`). Everything is under /v1; the OpenAPI schema is at /openapi.json, the
docs at /docs and /redoc.

Errors are JSON of one shape (`ErrorBody`):
    {"error": {"code": "...", "message": "...", "details": [...], "request_id": "..."}}
"""

from __future__ import annotations

import argparse
import logging
import re
import time
import uuid
from typing import Any

import structlog
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.http import console, prometheus
from starter.http.deps import ApiState, TicketClient, bind_policy
from starter.http.errors import STATUS_CODES, BodyTooLarge, ErrorBody, ErrorInfo, input_rejected, install_error_handlers
from starter.http.input_guard import InputGuard
from starter.http.routers import (
    actions,
    audit,
    codec,
    health,
    incidents,
    intake,
    metrics,
    policies,
    postmortems,
    sponsorships,
    surveys,
    tickets,
)
from starter.runtime.settings import Settings, settings_or_exit
from starter.runtime.settings import settings as default_settings
from starter.security.auth import TokenStore, load_tokens
from workflows.common.policy import Policy

log = structlog.get_logger("escalation.api")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# ----- middleware: request id, body size limit, access log ----------------------------------


class RequestMiddleware:
    """Pure ASGI: gives each request an id (X-Request-ID), limits the body size (413), logs one access line."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        incoming = headers.get("x-request-id", "")
        rid = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                h = MutableHeaders(scope=message)
                h["X-Request-ID"] = rid
                total = (time.perf_counter() - started) * 1000
                temporal_ms = state.get("temporal_ms")
                timing = f"app;dur={total:.1f}" + (f", temporal;dur={temporal_ms:.1f}" if temporal_ms is not None else "")
                h["Server-Timing"] = timing
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        try:
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                code, msg = (413, f"request body larger than {self.max_body} bytes") if length.isdigit() else (
                    400, "invalid Content-Length")
                body = ErrorBody(error=ErrorInfo(code=STATUS_CODES[code], message=msg, request_id=rid))
                await JSONResponse(body.model_dump(mode="json"), status_code=code, headers={"Connection": "close"})(
                    scope, receive, send_wrapper)
                return
            await self.app(scope, limited_receive, send_wrapper)
        finally:
            log.info("request", request_id=rid, method=scope.get("method"), path=scope.get("path"), status=status,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2), principal=state.get("principal"),
                     temporal_ms=round(state["temporal_ms"], 2) if "temporal_ms" in state else None,
                     client=(scope.get("client") or ("?",))[0])


# ----- the application ----------------------------------------------------------------------

DESCRIPTION = """\
Open tickets from other systems (idempotent on the caller's id), take them in from every
channel, act on them as an agent, list them, and export their histories.

**Authentication**: `Authorization: Bearer <token>`. Roles: `intake` (open tickets, intake,
relay customer replies), `agent` (read, list and act on tickets in its tiers and departments;
relay customer replies), `supervisor` (an agent's rights everywhere, plus assignment and
escalation into the executive tier), `auditor` (read-only, including histories), `admin`
(everything). The actor recorded in a ticket's timeline is the token's principal, e.g.
`agent:alice`.

**Errors** are JSON of one shape:
`{"error": {"code": "...", "message": "...", "details": [{"loc": [...], "message": "...",
"type": "...", "allowed": [...]}], "request_id": "..."}}`. Every response carries `X-Request-ID`
(send one to correlate) and `Server-Timing`.
"""


def _serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI and ReDoc from a pinned PyPI package, not a CDN: /docs and /redoc work without internet."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/static/docs", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - docs",
                                   swagger_js_url="/static/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static/docs/swagger-ui.css",
                                   swagger_favicon_url="/static/docs/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url="/static/docs/redoc.standalone.js", redoc_favicon_url="/static/docs/favicon.png",
                              with_google_fonts=False)


def create_app(settings: Settings | None = None, *, client: TicketClient | None = None,
               tokens: TokenStore | None = None, policy: Policy | None = None) -> FastAPI:
    """The API. Without arguments: settings, tokens and policy from the environment; Temporal connected on first use.

    `client`: any implementation of the client's interface (deps.TicketClient), e.g. a fake in tests."""
    s = settings or default_settings()
    if policy is None:
        if client is not None:
            policy = client.policy
        else:
            from starter.runtime.policy_file import load_policy

            policy = load_policy(s.escalation_policy)
    if tokens is None:
        tokens = load_tokens(s.escalation_tokens_file, s.escalation_tokens, policy)
        if not len(tokens):
            log.warning("no_api_tokens", hint="set ESCALATION_TOKENS_FILE or ESCALATION_TOKENS; every request gets 401")

    app = FastAPI(title="Escalation engine API", version="1.0.0", description=DESCRIPTION, docs_url=None, redoc_url=None,
                  dependencies=[Depends(bind_policy)], openapi_tags=[
        {"name": "tickets", "description": "open, read and list tickets"},
        {"name": "actions", "description": "agent actions: sent to the ticket's workflow as Updates; each returns the new view"},
        {"name": "intake", "description": "one endpoint per channel, each taking that channel's own payload"},
        {"name": "incidents", "description": "outages: one incident per service, many linked tickets, one "
                                             "communication plan"},
        {"name": "postmortems", "description": "what severe escalations and incidents end in: steps, action items, "
                                               "a knowledge-base article"},
        {"name": "sponsorships", "description": "the executive sponsorship program, one per customer account"},
        {"name": "surveys", "description": "satisfaction surveys: the customer's signed link (no bearer token)"},
        {"name": "audit", "description": "auditors: replay recorded histories against the code"},
        {"name": "codec", "description": "decrypted payloads for the Temporal Web UI (auditors, admins; a session cookie)"},
        {"name": "metrics", "description": "escalation metrics over a time window (Prometheus: GET /metrics)"},
        {"name": "health", "description": "liveness and readiness"},
    ])
    app.state.api = ApiState(s, policy, tokens, client)
    _serve_docs_offline(app)
    app.add_middleware(InputGuard, reject=input_rejected)  # inside the size limit: added before it
    app.add_middleware(RequestMiddleware, max_body=s.escalation_max_body_bytes)
    app.add_middleware(prometheus.LatencyMiddleware)  # outside the size limit: a 413 is measured too
    app.add_middleware(codec.CodecCors, allowed=codec.origins(s.escalation_codec_cors_origins))  # outermost
    install_error_handlers(app)
    for router in (health.router, tickets.router, actions.router, intake.router, incidents.router, postmortems.router,
                   sponsorships.router, surveys.router, audit.router, policies.router, codec.router, metrics.router):
        app.include_router(router)
    console.mount(app)  # the agents' web console under /console (starter/http/console)
    _document_policy(app, policy)
    return app


def _document_policy(app: FastAPI, policy: Policy) -> None:
    """The OpenAPI document with the policy's tiers and departments as the list filters' enums."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI.openapi builds it once and keeps it there
            tickets.policy_enums(FastAPI.openapi(app), policy.tier_ids(), policy.department_ids())
        return app.openapi_schema or {}
    app.openapi = openapi  # type: ignore[method-assign]


# ----- running ------------------------------------------------------------------------------


def serve(host: str | None = None, port: int | None = None) -> None:
    """Run the API with uvicorn (`escalation api`); host and port default to ESCALATION_API_HOST/PORT."""
    import uvicorn

    from starter.runtime.logs import configure_logging

    s = settings_or_exit()
    configure_logging(s.escalation_log_level)
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request, with its id
    app = create_app(s)
    host, port = host or s.escalation_api_host, port or s.escalation_api_port
    log.info("api_starting", host=host, port=port, temporal=s.temporal_address, task_queue=s.escalation_task_queue)
    proxies = s.escalation_api_trusted_proxies.strip()
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None, server_header=False,
                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None, timeout_graceful_shutdown=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m starter.http", description="serve the escalation HTTP API")
    parser.add_argument("--host", help="default: ESCALATION_API_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default: ESCALATION_API_PORT (8000)")
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
