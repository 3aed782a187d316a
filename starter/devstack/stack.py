"""`make run`: the whole system on one machine.

The Temporal dev server (SQLite file under var/, so tickets survive a restart;
our search attributes registered; namespace retention 30 days), the worker and
the HTTP API, each a child process. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from starter.devstack.devserver import DevServer, port_open, spawn, stop_process
from starter.runtime.logs import configure_logging
from starter.runtime.settings import settings

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"


def main() -> int:
    configure_logging()
    s = settings()
    _, _, port = s.temporal_address.rpartition(":")
    grpc_port = int(port or 7233)
    ui_port = int(os.environ.get("TEMPORAL_UI_PORT", "8233"))
    api_port = int(os.environ.get("ESCALATION_API_PORT", "8000"))
    for name, p in (("Temporal", grpc_port), ("Temporal Web UI", ui_port), ("API", api_port)):
        if port_open(p):
            print(f"error: port {p} ({name}) is already in use; stop what holds it or set "
                  f"TEMPORAL_ADDRESS / TEMPORAL_UI_PORT / ESCALATION_API_PORT", file=sys.stderr)
            return 2
    VAR.mkdir(exist_ok=True)
    server = DevServer(db_file=VAR / "temporal.db", port=grpc_port, ui_port=ui_port, log_file=VAR / "temporal.log",
                       namespace=s.temporal_namespace)
    print(f"starting Temporal dev server on {server.address} (SQLite {VAR / 'temporal.db'}) ...", flush=True)
    server.start()
    server.set_retention("720h")
    env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "TEMPORAL_NAMESPACE": s.temporal_namespace,
           "ESCALATION_OUTBOX": str(VAR / "outbox.jsonl"), "PYTHONUNBUFFERED": "1"}
    children = [spawn([sys.executable, "worker.py"], env, VAR / "worker.log")]
    token = _start_api(env, api_port, children)
    print("\n".join([
        "",
        "Escalation engine running:",
        f"  Temporal Web UI  {server.ui_url}",
        f"  Temporal gRPC    {server.address}   (namespace {s.temporal_namespace}, task queue {s.escalation_task_queue})",
        f"  HTTP API         http://localhost:{api_port}   (docs: http://localhost:{api_port}/docs)" if token else "",
        f"  dev token        export TOKEN={token}" if token else "",
        f"  logs             {VAR}/worker.log, {VAR}/api.log, {VAR}/temporal.log",
        f"  outbox           {VAR / 'outbox.jsonl'}",
        "Ctrl-C stops everything.",
    ]), flush=True)
    stopping = False

    def _on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        while not stopping:
            for proc in children:
                if proc.poll() is not None:
                    print(f"error: {proc.args!r} exited with {proc.returncode}; see the logs in {VAR}", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping ...", flush=True)
        for proc in reversed(children):
            stop_process(proc)
        server.stop()
        print("stopped.", flush=True)
    return 0


def _start_api(env: dict[str, str], port: int, children: list[subprocess.Popen[bytes]]) -> str | None:
    try:
        from starter.security.auth import dev_tokens
    except ImportError:  # the API is optional for the core stack
        return None
    tokens_file, token = dev_tokens(VAR)
    api_env = {**env, "ESCALATION_TOKENS_FILE": str(tokens_file), "ESCALATION_API_PORT": str(port)}
    children.append(spawn([sys.executable, "-m", "starter.http"], api_env, VAR / "api.log"))
    deadline = time.monotonic() + 30
    while not port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    return token


if __name__ == "__main__":
    sys.exit(main())
