"""`make run` (starter/devstack/stack.py `main`) as the real program, on free ports in a temporary folder: a SIGKILLed
worker or API is started again (a line names it, its exit status and its log) and tickets still progress; /readyz
notices the dead worker within 15 s by its missing heartbeats and is ready again once it is back; a SIGKILLed dev
server makes `make run` exit non-zero."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from starter.devstack.devserver import free_port
from starter.devstack.stack import ROOT
from tests.conftest import TemporalStack
from tests.support.api import ticket_body, unique


def children(pid: int, marker: str) -> list[int]:
    """The processes under `pid` whose command line contains `marker` (no psutil: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat[1]) == pid and marker in cmd:
            found.append(int(entry.name))
    return found


def wait_for(check, timeout_s: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.25)
    return time.monotonic() - start


def start_make_run(tmp_path: Path, api_port: int) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """`python -m starter.devstack` (what `make run` runs) on free ports, its files in `tmp_path`."""
    env = {**os.environ, "ESCALATION_RUN_DIR": str(tmp_path), "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
           "TEMPORAL_UI_PORT": str(free_port()), "ESCALATION_API_PORT": str(api_port), "PYTHONUNBUFFERED": "1",
           "ESCALATION_TASK_QUEUE": "supervised"}
    for inherited in ("ESCALATION_TOKENS", "ESCALATION_TOKENS_FILE", "ESCALATION_OUTBOX", "ESCALATION_SMTP_URL"):
        env.pop(inherited, None)
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    run = subprocess.Popen([sys.executable, "-m", "starter.devstack"], cwd=ROOT, env=env, stdout=out.open("wb"),
                           stderr=err.open("wb"), start_new_session=True)
    wait_for(lambda: "Escalation engine running" in out.read_text() or run.poll() is not None, 120, "make run started")
    assert run.poll() is None, err.read_text()
    return run, out, err


@pytest.mark.chaos
def test_make_run_gives_up_on_a_worker_that_crashes_5_times_in_a_minute(tmp_path: Path) -> None:
    run, _, err = start_make_run(tmp_path, free_port())
    try:
        for n in range(1, 5):
            [worker] = children(run.pid, "worker.py")
            os.kill(worker, signal.SIGKILL)
            wait_for(lambda n=n: err.read_text().count("the worker is running again") == n, 60, f"restart {n}")  # type: ignore[misc]
        [worker] = children(run.pid, "worker.py")
        os.kill(worker, signal.SIGKILL)
        assert run.wait(timeout=60) == 1
        assert "the worker exited with status -9 (SIGKILL), 5 times within 60 s; giving up" in err.read_text()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(timeout=60)


def test_make_run_restarts_a_killed_worker_and_api_and_exits_non_zero_when_the_server_dies(tmp_path: Path) -> None:
    api_port = free_port()
    run, out, err = start_make_run(tmp_path, api_port)
    base = f"http://127.0.0.1:{api_port}"
    try:
        token = next(line.split("TOKEN=")[1].split()[0] for line in out.read_text().splitlines() if "TOKEN=" in line)
        auth = {"Authorization": f"Bearer {token}"}

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        def ticket_progresses() -> None:
            ticket_id = unique()
            r = httpx.post(f"{base}/v1/tickets", json=ticket_body(ticket_id), headers=auth, timeout=30)
            assert r.status_code == 201, r.text
            opened = r.json()["timeline"]
            r = httpx.post(f"{base}/v1/tickets/{ticket_id}/acknowledge", headers=auth, timeout=30)
            assert r.status_code == 200, r.text  # an Update: the worker ran it
            view = httpx.get(f"{base}/v1/tickets/{ticket_id}", headers=auth, timeout=30).json()
            assert len(view["timeline"]) > len(opened), "the acknowledgement is in the ticket"

        wait_for(ready, 20, "ready after start (the worker's first heartbeat)")
        ticket_progresses()

        # the worker, SIGKILLed: make run restarts it, ready again, tickets progress
        [worker] = children(run.pid, "worker.py")
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: "the worker exited with status -9 (SIGKILL)" in err.read_text(), 10, "the restart line")
        line = next(x for x in err.read_text().splitlines() if "the worker exited" in x)
        assert "restarting" in line and str(tmp_path / "worker.log") in line, line
        back = wait_for(ready, 60, "ready again after the restart")
        print(f"\nready again {back:.1f} s after the worker's restart line")
        assert children(run.pid, "worker.py") not in ([], [worker])
        ticket_progresses()

        # the API, SIGKILLed: restarted on the same port
        [api] = children(run.pid, "starter.http")
        os.kill(api, signal.SIGKILL)
        wait_for(lambda: "the api exited with status -9 (SIGKILL)" in err.read_text(), 10, "the API's restart line")
        wait_for(ready, 60, "the API answers again")
        ticket_progresses()
        assert run.poll() is None, "make run is still up"

        # the dev server, SIGKILLed: make run gives up, non-zero, saying why
        [server] = children(run.pid, "start-dev")
        os.kill(server, signal.SIGKILL)
        assert run.wait(timeout=60) == 1
        assert "the Temporal dev server exited with status -9 (SIGKILL)" in err.read_text(), err.read_text()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(timeout=60)


def test_readyz_notices_a_killed_worker_within_15_s_and_its_return(temporal_stack: TemporalStack) -> None:
    """Unsupervised (nothing restarts it): the worker's heartbeats stop, /readyz says so; a new worker, ready again.
    The pollers alone would have said "ready" for up to 2 minutes."""
    stack = temporal_stack.stack
    tq = f"ready-{unique()}"
    worker = stack.start_worker(task_queue=tq, name="readiness worker")
    with stack.running_api(task_queue=tq) as api:
        def ready() -> bool:
            return httpx.get(f"{api.base_url}/readyz", timeout=10).status_code == 200
        try:
            wait_for(ready, 15, "ready once the worker heartbeats")
            assert "1 heartbeating worker(s)" in httpx.get(f"{api.base_url}/readyz").json()["checks"]["worker"]
            os.killpg(worker.pid, signal.SIGKILL)
            worker.proc.wait()
            stack.children.remove(worker)
            noticed = wait_for(lambda: not ready(), 15, "/readyz noticed the dead worker")
            r = httpx.get(f"{api.base_url}/readyz")
            assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready", r.text
            print(f"\n/readyz not ready {noticed:.1f} s after the worker's SIGKILL")
            worker = stack.start_worker(task_queue=tq, name="readiness worker again")
            wait_for(ready, 15, "ready again with the new worker")
        finally:
            stack.stop_child(worker)
