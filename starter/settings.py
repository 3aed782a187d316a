"""Settings from the environment: one place, shared by worker, API, CLI and dev stack."""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
