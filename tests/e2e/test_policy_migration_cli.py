"""`escalation policy migrate` as an operator runs it: the CLI as a subprocess against the session's dev server and
worker (tests/conftest.py): the dry run's table and JSON change nothing, a policy lacking the ticket's tier exits 1
naming it, the real run moves the ticket."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TemporalStack

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "config" / "policy.yaml"

pytestmark = pytest.mark.asyncio(loop_scope="session")


def cli(stack: TemporalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=stack.env(ESCALATION_ACTOR="cli:ops"))


def shown(stack: TemporalStack, ticket_id: str) -> dict[str, Any]:
    done = cli(stack, "ticket", "show", ticket_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def test_dry_run_then_apply_through_the_cli(temporal_stack: TemporalStack, tmp_path: Path) -> None:
    tid = f"MIG-{uuid.uuid4().hex[:8]}"
    opened = cli(temporal_stack, "ticket", "open", "--id", tid, "--subject", "Dashboard login spins",
                 "--customer", "cust-7")
    assert opened.returncode == 0, opened.stderr
    before = shown(temporal_stack, tid)["policy_version"]
    longer = tmp_path / "policy-v2.yaml"
    text = POLICY.read_text(encoding="utf-8")
    assert "    resolution: 27h " in text
    longer.write_text(text.replace("    resolution: 27h ", "    resolution: 36h ", 1), encoding="utf-8")

    dry = cli(temporal_stack, "policy", "migrate", "--to", str(longer), "--ticket", tid, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "(dry run: nothing changed)" in dry.stdout
    row = next(line for line in dry.stdout.splitlines() if "resolution" in line)
    assert "27h -> 36h" in row and "would_apply" in dry.stdout and tid in dry.stdout, dry.stdout
    assert "1 would_apply" in dry.stdout
    as_json = cli(temporal_stack, "policy", "migrate", "--to", str(longer), "--ticket", tid, "--dry-run", "--json")
    report = json.loads(as_json.stdout)
    res = next(c for c in report["tickets"][0]["changes"] if c["clock"] == "resolution")
    assert report["dry_run"] and res["due_after"] > res["due_before"], report
    assert shown(temporal_stack, tid)["policy_version"] == before, "the dry run changed nothing"

    lacking = tmp_path / "policy-no-tier1.yaml"
    lacking.write_text(text.replace("tier1", "frontline"), encoding="utf-8")
    refused = cli(temporal_stack, "policy", "migrate", "--to", str(lacking), "--ticket", tid)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "rejected" in refused.stdout and "tier 'tier1'" in refused.stdout and "frontline" in refused.stdout

    applied = cli(temporal_stack, "policy", "migrate", "--to", str(longer), "--ticket", tid, "--reason", "P3 longer")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "applied" in applied.stdout and "dry run" not in applied.stdout
    view = shown(temporal_stack, tid)
    assert view["policy_version"] == report["to_version"] != before
    entry = next(e for e in view["timeline"] if e["action"] == "policy_migrated")
    assert entry["actor"] == "cli:ops" and entry["reason"] == "P3 longer"

    usage = cli(temporal_stack, "policy", "migrate", "--to", str(longer))
    assert usage.returncode == 2 and "--ticket" in usage.stderr
