"""Settings from the environment: one place, shared by worker, API, CLI and dev stack."""

from __future__ import annotations

import sys
from functools import lru_cache

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    escalation_task_queue: str = "escalation"
    escalation_policy: str | None = None  # path; default config/policy.yaml
    escalation_outbox: str = "var/outbox.jsonl"
    escalation_log_level: str = "INFO"
    escalation_max_cached_workflows: int = 1000
    # HTTP API (starter/api.py)
    escalation_api_host: str = "127.0.0.1"  # 0.0.0.0 in a container
    escalation_api_port: int = 8000
    escalation_tokens_file: str | None = None  # YAML or JSON list of {name, role, token_sha256, tiers?, departments?}
    escalation_tokens: str | None = None  # the same content inline
    escalation_max_body_bytes: int = 256 * 1024  # larger requests get 413
    escalation_api_timeout_s: float = 10.0  # a Temporal call slower than this is a 503
    escalation_max_backdate_days: int = 30  # how far in the past a caller may set opened_at
    escalation_api_rate_per_s: float = Field(50.0, ge=0)  # per token (and per address for bad tokens); 0: no limit
    escalation_api_burst: int = Field(200, ge=1)  # requests a caller may send at once before the rate applies
    # Behind a reverse proxy: its addresses (comma-separated), so X-Forwarded-For names the real client (for the
    # per-address limit and the access log). Empty: the connecting address is the client.
    escalation_api_trusted_proxies: str = ""


class SettingsError(ValueError):
    """A bad environment variable, named with its value and what is allowed."""


@lru_cache(maxsize=1)
def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(
            f"{str(e['loc'][0]).upper()}={e.get('input')!r}: {e['msg']}" for e in exc.errors())) from None


def settings_or_exit() -> Settings:
    """For a process entry point: a bad setting is a one-line error and exit status 2, not a traceback."""
    try:
        return settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
