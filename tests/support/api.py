"""Helpers for the HTTP API tests: tokens for every role, an in-process app (on the session stack or on the
in-memory client), a live uvicorn."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from starter.client import EscalationClient
from starter.http.app import create_app
from starter.runtime.directory_file import directory_reader, macros
from starter.runtime.policy_file import load_policy
from starter.runtime.settings import Settings
from starter.security.auth import TokenStore, hash_token, parse_entries
from tests.support.fake_client import FakeTicketClient

ROOT = Path(__file__).resolve().parents[2]

# name -> (role, tiers, departments)
PRINCIPALS: dict[str, tuple[str, list[str] | None, list[str] | None]] = {
    "admin": ("admin", None, None),
    "intake": ("intake", None, None),
    "supervisor": ("supervisor", None, None),
    "auditor": ("auditor", None, None),
    # in scope for the default route (tier1, general) and everything above it in general and billing
    "agent": ("agent", ["tier1", "tier2", "tier3", "executive"], ["general", "billing"]),
    # scoped elsewhere: tier2 networking only
    "netagent": ("agent", ["tier2"], ["networking"]),
    # a person of the directory (config/directory.yaml): an incident's commander must be one
    "mia": ("agent", ["tier1", "tier2", "tier3"], ["general"]),
    # a monitoring system's token: declares and reads the incidents of its services (MONITORED) only
    "monitor": ("monitoring", None, None),
}
MONITORED = ["checkout", "checkout-eu"]


@dataclass(frozen=True)
class Tokens:
    by_name: dict[str, str]

    def header(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.by_name[name]}"}

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for name, (role, tiers, depts) in PRINCIPALS.items():
            e: dict[str, Any] = {"name": name, "role": role, "token_sha256": hash_token(self.by_name[name])}
            if tiers is not None:
                e["tiers"] = tiers
            if depts is not None:
                e["departments"] = depts
            if role == "monitoring":
                e["services"] = MONITORED
            out.append(e)
        return out

    def yaml(self) -> str:
        return yaml.safe_dump(self.entries(), sort_keys=False)

    def store(self) -> TokenStore:
        return TokenStore(parse_entries(self.yaml(), "test"))


def make_tokens() -> Tokens:
    return Tokens({name: f"test-{name}-{uuid.uuid4().hex}" for name in PRINCIPALS})


def unique(prefix: str = "T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ticket_body(ticket_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": ticket_id, "subject": "Cannot log in to the dashboard", "customer_id": "cust-1",
                            "description": "Login page spins forever."}
    body.update(overrides)
    return body


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, err
    assert err["message"] and err["request_id"] == r.headers["x-request-id"]
    return err


async def open_ticket(http: httpx.AsyncClient, tokens: Tokens, **overrides: Any) -> dict[str, Any]:
    r = await http.post("/v1/tickets", json=ticket_body(unique(), **overrides), headers=tokens.header("admin"))
    assert r.status_code == 201, r.text
    return r.json()


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def in_process_app(stack: Any, tokens: Tokens, **settings: Any) -> Any:
    s = Settings(temporal_address=stack.address, escalation_task_queue=stack.task_queue, **settings)
    client = EscalationClient(stack.client, stack.policy, stack.task_queue,
                              rpc_timeout=timedelta(seconds=s.escalation_api_timeout_s), macros=macros(s),
                              directory=directory_reader(s))
    return create_app(s, client=client, tokens=tokens.store(), policy=stack.policy)


def fake_app(tokens: Tokens, client: FakeTicketClient | None = None, **settings: Any) -> Any:
    """The API app on the in-memory client (tests/support/fake_client.py): routing, validation, authorization and
    the client's rules, no Temporal. `settings`: Settings fields, e.g. the rate limit."""
    client = client or FakeTicketClient(load_policy())
    s = Settings(temporal_address="127.0.0.1:1", escalation_task_queue=client.task_queue, **settings)  # never dialled
    return create_app(s, client=client, tokens=tokens.store(), policy=client.policy)


def asgi_client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30)


@contextmanager
def live_api(stack: Any, tokens_file: Path, port: int | None = None, log_file: Path | None = None,
             rate_per_s: float = 0) -> Iterator[str]:
    """`python -m starter.http` on loopback against the session's stack; yields the base URL. The callers drive load
    with one token (schemathesis, the API bench): no per-token rate limit unless asked for."""
    env = {"ESCALATION_LOG_LEVEL": os.environ.get("TEST_API_LOG_LEVEL", "WARNING"),
           "ESCALATION_API_RATE_PER_S": str(rate_per_s)}
    with stack.stack.running_api(port=port, tokens_file=tokens_file, log_file=log_file, env=env) as api:
        yield api.base_url
