"""The one `Stack`: the Temporal dev server, the worker(s) and the HTTP API, each a child process, in one directory.

`make run` (`main` below), the bench (bench/run.py, bench/api_bench.py) and the tests (tests/conftest.py's
session stack, tests/support/api.py's live API, the CLI end-to-end test) all start the system through it, so
how the pieces are started, wired together (environment), waited for and stopped is written once:

    with Stack(home, task_queue="e2e").running() as stack:          # dev server + worker
        with stack.running_api(tokens_file=...) as api:             # + the HTTP API, for a while
            httpx.get(f"{api.base_url}/readyz")

Everything a run writes (SQLite file when `persistent`, logs, outbox, dev tokens) lands in `home`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ListWorkersRequest

from starter.devstack.devserver import DevServer, free_port, port_open, run_to_end, spawn, stop_process
from starter.devstack.mailserver import MailServer
from starter.runtime.codec import dev_key_file
from starter.runtime.logs import configure_logging
from starter.runtime.settings import Settings, settings
from starter.runtime.temporal import DEFAULT_TASK_QUEUE, connect

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"
WORKER = ["worker.py"]  # the composition root, run as the program it is (nothing imports it)
API = ["-m", "starter.http"]
START_TIMEOUT_S = 60.0


class Child:
    """A child process of the stack (worker, API) in its own session, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.name = name
        self.log_file = log_file
        self.proc = spawn([sys.executable, *args], env, log_file, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def check(self) -> None:
        """Raise, with the end of its log, if it has exited."""
        if self.proc.poll() is not None:
            tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; end of {self.log_file}:\n{tail}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)


@dataclass(frozen=True)
class Api:
    base_url: str
    port: int
    token: str | None  # the dev admin token, when the stack wrote the tokens file itself
    process: Child


class Stack:
    """Dev server + workers + API as child processes; `running()` / `running_api()` start and stop them.

    `persistent`: the dev server keeps its data in `home/temporal.db` (SQLite, WAL), else in memory.
    `env`: settings for every child (a value of None unsets a variable inherited from this process)."""

    def __init__(self, home: Path, *, persistent: bool = False, port: int | None = None, ui_port: int | None = None,
                 headless: bool = True, namespace: str = "default", task_queue: str | None = None,
                 env: Mapping[str, str | None] | None = None, retention: str | None = None,
                 ui_codec_endpoint: str | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.server = DevServer(db_file=home / "temporal.db" if persistent else None, port=port, ui_port=ui_port,
                                headless=headless, log_file=home / "temporal.log", namespace=namespace,
                                ui_codec_endpoint=ui_codec_endpoint)
        self.task_queue = task_queue or DEFAULT_TASK_QUEUE
        self.retention = retention
        self.extra_env = dict(env or {})
        self.children: list[Child] = []
        self.api: Api | None = None

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def namespace(self) -> str:
        return self.server.namespace

    @property
    def outbox(self) -> Path:
        return self.home / "outbox.jsonl"

    def env(self, **extra: str | None) -> dict[str, str]:
        """The environment of a process (worker, API, CLI, a test's subprocess) that should use this stack."""
        env: dict[str, str | None] = {
            # the audit archive (written by the worker's scheduled run) and the key signing it: the stack's own,
            # unless the operator chose others
            "ESCALATION_ARCHIVE_DIR": str(self.home / "archive"),
            "ESCALATION_AUDIT_SIGNING_KEY": str(self.home / "audit-signing.key"),
            **os.environ, "TEMPORAL_ADDRESS": self.address, "TEMPORAL_NAMESPACE": self.namespace,
            "ESCALATION_TASK_QUEUE": self.task_queue, "ESCALATION_OUTBOX": str(self.outbox), "PYTHONUNBUFFERED": "1",
            **self.extra_env, **extra}
        return {k: v for k, v in env.items() if v is not None}

    # ----- starting the pieces ------------------------------------------------------------------------------

    def start_server(self) -> None:
        self.server.start(timeout=START_TIMEOUT_S)
        if self.retention:
            self.server.set_retention(self.retention)

    def start_worker(self, *, args: list[str] | None = None, task_queue: str | None = None, name: str = "worker",
                     log_name: str | None = None, env: Mapping[str, str | None] | None = None) -> Child:
        """`python worker.py` (or `args`) polling `task_queue`; returns once the server sees it poll."""
        queue = task_queue or self.task_queue
        child = Child(name, args or WORKER, self.env(ESCALATION_TASK_QUEUE=queue, **(env or {})),
                      self.home / (log_name or f"{name.replace(' ', '-')}.log"))
        self.children.append(child)
        # worker.py heartbeats every 3 s; /readyz counts it from its first heartbeat (other programs: their polls)
        run_to_end(_until_polled(self.address, self.namespace, queue, child, heartbeat=args is None))
        return child

    def start_api(self, *, port: int | None = None, tokens_file: Path | None = None, task_queue: str | None = None,
                  log_file: Path | None = None, env: Mapping[str, str | None] | None = None) -> Api:
        """`python -m starter.http` on loopback; returns once it listens. Without `tokens_file`, the dev tokens in
        `home` (created once; `Api.token` is the admin token)."""
        from starter.security.auth import dev_tokens  # only a stack with an API needs the security layer

        token = None
        if tokens_file is None:
            tokens_file, token = dev_tokens(self.home)
        port = port or free_port()
        child = Child("api", API, self.env(
            ESCALATION_TASK_QUEUE=task_queue or self.task_queue, ESCALATION_TOKENS_FILE=str(tokens_file),
            ESCALATION_TOKENS=None, ESCALATION_API_HOST="127.0.0.1", ESCALATION_API_PORT=str(port), **(env or {})),
            log_file or self.home / "api.log")
        self.children.append(child)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open(port):
            child.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API did not listen on {port} within {START_TIMEOUT_S:.0f} s; see {child.log_file}")
            time.sleep(0.05)
        self.api = Api(base_url=f"http://127.0.0.1:{port}", port=port, token=token, process=child)
        return self.api

    # ----- stopping -----------------------------------------------------------------------------------------

    def stop_child(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)
        if self.api is not None and self.api.process is child:
            self.api = None

    def stop(self) -> None:
        """Every child, the last started first (the API before the worker it relies on), then the server."""
        for child in reversed(list(self.children)):
            self.stop_child(child)
        self.server.stop()

    def exited(self) -> Child | None:
        """A child that has exited on its own, if any."""
        return next((c for c in self.children if c.returncode is not None), None)

    # ----- as context managers ------------------------------------------------------------------------------

    @contextmanager
    def running(self, *, worker: bool = True, api: bool = False) -> Iterator[Stack]:
        """The dev server, then (by default) a worker, optionally the API (dev tokens); everything stops on exit."""
        try:
            self.start_server()
            if worker:
                self.start_worker()
            if api:
                self.start_api()
            yield self
        finally:
            self.stop()

    @contextmanager
    def running_api(self, *, port: int | None = None, tokens_file: Path | None = None, task_queue: str | None = None,
                    log_file: Path | None = None, env: Mapping[str, str | None] | None = None) -> Iterator[Api]:
        """The API (as `start_api`) for the length of the block."""
        api = self.start_api(port=port, tokens_file=tokens_file, task_queue=task_queue, log_file=log_file, env=env)
        try:
            yield api
        finally:
            self.stop_child(api.process)


async def _until_polled(address: str, namespace: str, task_queue: str, child: Child, *, heartbeat: bool = False) -> None:
    """A started worker has not necessarily reached the server yet: wait until the server lists its poller (and,
    with `heartbeat`, its first worker heartbeat), so that nothing (a test of /readyz, the bench's first batch)
    races the worker's first poll."""
    client = await connect(address, namespace)
    request = DescribeTaskQueueRequest(namespace=namespace, task_queue=TaskQueue(name=task_queue),
                                       task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
    workers = ListWorkersRequest(namespace=namespace, query=f"TaskQueue = '{task_queue}'")
    started = datetime.now(UTC) - timedelta(seconds=1)  # a dead worker's old heartbeats do not count

    async def heartbeats() -> bool:
        return any(w.worker_heartbeat.heartbeat_time.ToDatetime(tzinfo=UTC) >= started
                   for w in (await client.workflow_service.list_workers(workers)).workers_info)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (await client.workflow_service.describe_task_queue(request)).pollers or (heartbeat and not await heartbeats()):
        child.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker polled {task_queue!r} within {START_TIMEOUT_S:.0f} s; see {child.log_file}")
        await asyncio.sleep(0.1)


# ----- `make run` ---------------------------------------------------------------------------------------------


def main() -> int:
    """`make run`: the whole system on one machine, until Ctrl-C.

    The dev server keeps its SQLite file under var/ (tickets survive a restart; closed tickets' histories are kept
    30 days), the worker and the HTTP API run beside it; their logs and the outbox are in var/ too."""
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
    home = Path(os.environ.get("ESCALATION_RUN_DIR") or VAR)  # another folder: a second stack, or a test's
    mail = None if s.escalation_smtp_url else MailServer(home / "mail", port=int(os.environ.get("ESCALATION_MAIL_PORT", "0")))
    env = {"ESCALATION_SMTP_URL": mail.url} if mail else {}
    env.update(codec_env(s, ui_port))
    env.update(worker_metrics_env(s))
    stack = Stack(home, persistent=True, port=grpc_port, ui_port=ui_port, headless=False,
                  namespace=s.temporal_namespace, task_queue=s.escalation_task_queue, retention="720h", env=env,
                  ui_codec_endpoint=f"http://localhost:{api_port}/codec")
    print(f"starting Temporal dev server on {stack.address} (SQLite {stack.server.db_file}), the worker and the API ...",
          flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    try:
        if mail:
            mail.start()
        with stack.running() as running:
            api = running.start_api(port=api_port)
            archiving = archive_schedule(running)
            print(banner(running, api.port, api.token, s, mail).replace("\nIn another terminal", f"\n{archiving}"
                                                                          "\nIn another terminal", 1), flush=True)
            supervisor = Supervisor(running, api_port)
            while not stopping.wait(0.5):
                if (failure := supervisor.check()) is not None:
                    print(f"error: {failure}", file=sys.stderr, flush=True)
                    return 1
            print("stopping ...", flush=True)
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if mail:
            mail.stop()
    print("stopped.", flush=True)
    return 0


class Supervisor:
    """`make run` keeps the worker and the API up: one that exits (a crash, a SIGKILL, the OOM killer) is started
    again, with a line naming it, its exit status and its log. It gives up (`check` returns why; `make run` exits 1)
    when one of them exited MAX_CRASHES times within CRASH_WINDOW_S (a crash loop a restart will not fix), or when
    the dev server itself died (everything depends on it; its SQLite file keeps the tickets for the next run)."""

    MAX_CRASHES = 5
    CRASH_WINDOW_S = 60.0

    def __init__(self, stack: Stack, api_port: int) -> None:
        self.stack = stack
        self.api_port = api_port
        self.crashes: dict[str, list[float]] = {}

    def check(self) -> str | None:
        server = self.stack.server.process
        if server is not None and server.poll() is not None:
            return (f"the Temporal dev server exited with {_status(server.returncode)}; see {self.stack.server.log_file}"
                    f" (its data stay in {self.stack.server.db_file})")
        for child in [c for c in self.stack.children if c.returncode is not None]:
            now = time.monotonic()
            recent = [t for t in self.crashes.get(child.name, []) if now - t < self.CRASH_WINDOW_S] + [now]
            self.crashes[child.name] = recent
            self.stack.stop_child(child)
            if len(recent) >= self.MAX_CRASHES:
                return (f"the {child.name} exited with {_status(child.returncode)}, {len(recent)} times within "
                        f"{self.CRASH_WINDOW_S:.0f} s; giving up; see {child.log_file}")
            print(f"warning: the {child.name} exited with {_status(child.returncode)} ({len(recent)} time(s) in the "
                  f"last {self.CRASH_WINDOW_S:.0f} s); restarting it; see {child.log_file}", file=sys.stderr, flush=True)
            try:
                if child.name == "api":
                    self.stack.start_api(port=self.api_port)
                else:
                    self.stack.start_worker()
                print(f"the {child.name} is running again", file=sys.stderr, flush=True)
            except (RuntimeError, TimeoutError) as exc:  # exited again at once: counted at the next check
                print(f"warning: restarting the {child.name} failed: {exc}", file=sys.stderr, flush=True)
        return None


def _status(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"status {returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return f"status {returncode}"


def archive_schedule(stack: Stack) -> str:
    """The daily Schedule that archives closed workflows before the 30 days' retention deletes them: created, or
    brought up to date, by the same command the compose file's `archive-schedule` service runs."""
    done = subprocess.run([sys.executable, "-m", "starter.cli", "audit", "schedule", "--if-missing"], cwd=ROOT, env=stack.env(),
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"warning: the audit archive's schedule was not created: {done.stderr.strip()}"
    first = done.stdout.strip().splitlines()[0] if done.stdout.strip() else "created"
    return f"  audit archive    {first}\n                   into {stack.env()['ESCALATION_ARCHIVE_DIR']}"


def codec_env(s: Settings, ui_port: int) -> dict[str, str]:
    """Payload encryption for `make run`: a development key ring under var/ made on first run (kept: the histories
    in var/temporal.db are encrypted with it), unless ESCALATION_CODEC_KEYS is set; the Web UI's origin may call the
    API's codec endpoint."""
    env = {"ESCALATION_CODEC_CORS_ORIGINS": f"http://localhost:{ui_port},http://127.0.0.1:{ui_port}"}
    if not s.escalation_codec_keys:
        key_file = Path(s.escalation_codec_key_file)
        env["ESCALATION_CODEC_KEY_FILE"] = str(dev_key_file(key_file if key_file.is_absolute() else ROOT / key_file))
    return env


WORKER_METRICS_PORT = 9464  # Prometheus's customary exporter port


def worker_metrics_env(s: Settings) -> dict[str, str]:
    """`make run`'s worker serves Prometheus metrics on 9464, unless ESCALATION_WORKER_METRICS_PORT names another
    port; a port already taken is left alone (the banner says the worker's metrics are off)."""
    if s.escalation_worker_metrics_port is not None:
        return {}
    return {} if port_open(WORKER_METRICS_PORT) else {"ESCALATION_WORKER_METRICS_PORT": str(WORKER_METRICS_PORT)}


def _metrics_line(stack: Stack, api_port: int) -> str:
    port = stack.env().get("ESCALATION_WORKER_METRICS_PORT")
    worker = (f"worker http://localhost:{port}/metrics" if port
              else f"worker: off (port {WORKER_METRICS_PORT} was taken; set ESCALATION_WORKER_METRICS_PORT)")
    return f"  Prometheus       API http://localhost:{api_port}/metrics; {worker}"


def _mail_line(mail: MailServer | None, s: Settings) -> str:
    if mail:
        return (f"  mail             every mail kept in {mail.handler.folder}/ (SMTP {mail.url}; "
                "ESCALATION_SMTP_URL for a real server)")
    server = (s.escalation_smtp_url or "").rpartition("@")[2]  # never the credentials
    return f"  mail             sent through {server}"


def _keys_line(s: Settings) -> str:
    return "ESCALATION_CODEC_KEYS" if s.escalation_codec_keys else str(Path(s.escalation_codec_key_file))


def banner(stack: Stack, api_port: int, token: str | None, s: Settings, mail: MailServer | None = None) -> str:
    """What is running where, and the exports a second terminal needs (the CLI, the README's curl lines): the API's
    address and token always, the Temporal connection and task queue when they are not the defaults."""
    exports = [f"API=http://localhost:{api_port}", f"TOKEN={token}"]
    for name, value in (("temporal_address", s.temporal_address), ("temporal_namespace", s.temporal_namespace),
                        ("escalation_task_queue", s.escalation_task_queue)):
        if value != Settings.model_fields[name].default:
            exports.append(f"{name.upper()}={value}")
    return "\n".join([
        "",
        "Escalation engine running:",
        f"  Temporal Web UI  {stack.server.ui_url}",
        f"  Temporal gRPC    {stack.address}   (namespace {stack.namespace}, task queue {stack.task_queue})",
        f"  HTTP API         http://localhost:{api_port}   (docs: http://localhost:{api_port}/docs)",
        f"  logs             {stack.home}/worker.log, {stack.home}/api.log, {stack.home}/temporal.log",
        f"  outbox           {stack.outbox}",
        f"  payload keys     {_keys_line(s)}; Web UI decoding: sign in at http://localhost:{api_port}/v1/session",
        _mail_line(mail, s),
        _metrics_line(stack, api_port),
        "In another terminal (the CLI and the README's examples use these):",
        f"  export {' '.join(exports)}",
        "Ctrl-C stops everything.",
    ])


if __name__ == "__main__":
    sys.exit(main())
