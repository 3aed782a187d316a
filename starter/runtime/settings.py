"""Settings from the environment: one place, shared by worker, API, CLI and dev stack."""

from __future__ import annotations

import os
import secrets
import sys
import time
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # Each description is what `escalation worker --help` / `escalation api --help` print (the README's table too).
    temporal_address: str = Field("localhost:7233", description="Temporal frontend (gRPC)")
    temporal_namespace: str = Field("default", description="Temporal namespace")
    escalation_task_queue: str = Field("escalation", description="the worker's task queue")
    escalation_policy: str | None = Field(None, description="policy file used when opening tickets "
                                                            "(none: config/policy.yaml)")
    escalation_outbox: str = Field("var/outbox.jsonl", description="the notify activity's outbox")
    escalation_log_level: str = Field("INFO", description="log level (DEBUG, INFO, WARNING, ERROR)")
    escalation_max_cached_workflows: int = Field(1000, description="worker cache (about 150 KB of worker memory per "
                                                                   "cached ticket: bench/memory_per_ticket.py)")
    escalation_gc_young_objects: int = Field(
        0, ge=0, description="the worker's collector: objects allocated between young collections (0: Python's "
                             "default, 700; see starter/runtime/temporal.py: tune_gc)")
    escalation_worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="the worker's Prometheus endpoint (GET :PORT/metrics: the SDK's own "
                                          "metrics and the business counters); unset: none")
    escalation_worker_metrics_host: str = Field("0.0.0.0", description="the address the worker's metrics bind to")
    # Delivery (activities/delivery.py, activities/prepare.py)
    escalation_directory: str | None = Field(None, description="the directory: people, teams, accounts "
                                                               "(none: config/directory.yaml)")
    escalation_templates: str | None = Field(None, description="notification templates folder "
                                                               "(none: config/templates)")
    escalation_smtp_url: str | None = Field(None, description="smtp://user:pass@host:587?starttls=true or "
                                                              "smtps://host:465; none: mail is kept in the outbox "
                                                              "only (make run starts a local mail server)")
    escalation_mail_from: str = Field("Escalations <escalations@escalation.local>", description="the From address")
    escalation_mail_domain: str = Field("escalation.local", description="the right-hand side of Message-IDs")
    escalation_webhook_secret: str | None = Field(None, description="Standard Webhooks signing secret (whsec_...)")
    escalation_public_url: str = Field("http://localhost:8000", description="the API's address as people reach "
                                                                           "it (links in messages)")
    escalation_survey_secret: str | None = Field(None, description="signs survey links (worker and API must share "
                                                                   "it); none: read from ESCALATION_SURVEY_SECRET_FILE")
    escalation_survey_secret_file: str = Field("var/survey.secret", description="the survey signing key's file, "
                                                                                "made (random) on first use")
    escalation_customer_channels: str = Field("", description="where customers on other channels hear back: "
                                                               "scheme=URL pairs, comma-separated (tel=https://sms."
                                                               "example/hook,twitter=https://social.example/hook); "
                                                               "each gets a signed webhook with the handle in `to`")
    escalation_incident_fanout_concurrency: int = Field(20, ge=1, le=500, description="an incident's Signals to "
                                                                                    "its tickets in flight at once")
    escalation_incident_fanout_rate: float = Field(0.0, ge=0, description="an incident's Signals to its tickets per "
                                                                         "second, at most (0: unpaced)")
    escalation_kb_dir: str = Field("var/kb", description="the knowledge base: completed post-mortems' articles "
                                                         "(markdown files)")
    escalation_delivery_timeout_s: float = Field(15.0, description="one delivery attempt's time limit")
    escalation_archive_dir: str = Field("var/archive", description="the audit archive the daily Schedule writes closed "
                                                                   "workflows' histories to (on the worker's host)")
    escalation_audit_signing_key: str = Field("var/audit-signing.key", description="the operator's Ed25519 key that "
                                                                                 "signs exports' and the archive's "
                                                                                 "manifests (made on first use)")
    # Payload encryption (starter/runtime/codec.py): worker, API, CLI and replay must share the keys
    escalation_codec_keys: str | None = Field(None, description="payload encryption keys inline: {\"current\": ID, "
                                                                "\"keys\": {ID: base64, ...}}; none: read from "
                                                                "ESCALATION_CODEC_KEY_FILE")
    escalation_codec_key_file: str = Field("var/codec-keys.json", description="the payload encryption key ring's "
                                                                               "file (make run creates one)")
    escalation_codec_cors_origins: str = Field("http://localhost:8233,http://127.0.0.1:8233",
                                               description="the Temporal Web UI origins (comma-separated) allowed "
                                                           "to call the API's codec endpoint /codec")
    # HTTP API (starter/http)
    escalation_api_host: str = Field("127.0.0.1", description="where the HTTP API listens (0.0.0.0 in a container)")
    escalation_api_port: int = Field(8000, description="the HTTP API's port")
    escalation_tokens_file: str | None = Field(None, description="API bearer tokens: a YAML or JSON list of "
                                                                 "{name, role, token_sha256, tiers?, departments?}")
    escalation_tokens: str | None = Field(None, description="the same content inline")
    escalation_max_body_bytes: int = Field(256 * 1024, description="larger requests get 413")
    escalation_api_timeout_s: float = Field(10.0, description="a Temporal call slower than this is a 503")
    escalation_max_backdate_days: int = Field(30, description="how far in the past a caller may set opened_at")
    escalation_api_rate_per_s: float = Field(50.0, ge=0, description="requests per second per token (and per "
                                                                     "address for bad tokens); 0: no limit")
    escalation_api_burst: int = Field(200, ge=1, description="requests a caller may send at once before the "
                                                             "rate applies")
    escalation_api_max_in_flight: int = Field(16, ge=0, description="Temporal calls in flight at once per API "
                                                                   "process; beyond (after the queue wait): 503 "
                                                                   "overloaded with Retry-After; 0: no bound")
    escalation_api_queue_wait_ms: int = Field(100, ge=0, description="how long a request beyond the in-flight bound "
                                                                     "waits for a slot before it is shed")
    escalation_api_trusted_proxies: str = Field("", description="reverse proxies (comma-separated addresses) whose "
                                                                "X-Forwarded-For names the client; empty: the "
                                                                "connecting address is the client")

def customer_channels(s: Settings) -> dict[str, str]:
    """ESCALATION_CUSTOMER_CHANNELS as scheme -> URL; a malformed pair is a SettingsError naming it."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in s.escalation_customer_channels.split(","))):
        scheme, _, url = pair.partition("=")
        if not scheme.strip().isalnum() or not url.strip().startswith(("http://", "https://")):
            raise SettingsError(f"ESCALATION_CUSTOMER_CHANNELS={s.escalation_customer_channels!r}: {pair!r} is not "
                                "scheme=http(s)://URL (e.g. tel=https://sms.example/hook)")
        out[scheme.strip()] = url.strip()
    return out


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
    """For a process entry point: a bad setting is a one-line error and exit status 2, not a traceback (the payload
    encryption keys included: a worker or API without them would fail on its first payload)."""
    from starter.runtime.codec import keyring  # it reads these settings

    try:
        s = settings()
        keyring()
        return s
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def survey_secret(s: Settings | None = None) -> str:
    """The key that signs survey links: ESCALATION_SURVEY_SECRET, else the one in ESCALATION_SURVEY_SECRET_FILE (made
    once, random, readable by its owner only) so a worker and an API on one machine agree without configuration."""
    s = s or settings()
    if s.escalation_survey_secret:
        return s.escalation_survey_secret
    SURVEY_SECRET_FILE = Path(s.escalation_survey_secret_file)
    if not SURVEY_SECRET_FILE.exists():
        SURVEY_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(SURVEY_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
    for _ in range(50):  # the other process may still be writing it
        text = SURVEY_SECRET_FILE.read_text().strip()
        if text:
            return text
        time.sleep(0.01)
    raise SettingsError(f"{SURVEY_SECRET_FILE} is empty: remove it or set ESCALATION_SURVEY_SECRET")
