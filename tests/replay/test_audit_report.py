"""The audit report, from a history alone (no server, no worker): decisions with who, when, why, rule and clock
(lateness), notifications with their deliveries, the policy version and the verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from starter.runtime.replay import histories_in
from starter.runtime.report import build_report, render_html, render_text

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).parent / "histories"


async def report_of(name: str):  # type: ignore[no-untyped-def]
    data = json.loads((HISTORIES / f"{name}.json").read_text(encoding="utf-8"))
    return await build_report(name, [(name, h) for h in histories_in(data, name)])


async def test_breaches_carry_their_rule_clock_and_lateness() -> None:
    r = await report_of("bot_hand_off_in_the_past")
    assert r.verdict == "passed" and r.ticket_id == "H-bot-past" and r.status == "closed"
    assert r.policy_version == "default@35ce9580d2f2", "the version the history names"
    breach = next(d for d in r.decisions if d.what == "sla_breached" and d.clock == "acknowledge")
    assert (breach.who, breach.rule, breach.lateness) == ("system:sla", "priorities.P1", "1h")
    escalated = next(d for d in r.decisions if d.what == "escalated")
    assert escalated.rule == "clocks.acknowledge.on_breach" and escalated.event_type == "WorkflowTaskStarted"
    opened = next(d for d in r.decisions if d.what == "opened")
    assert opened.who == "agent:olga" and opened.applied_late_by == "2h", "opened in the past: applied later"
    assert [n.outcome for n in r.notifications] == ["outbox"] * 6, "before real delivery: the outbox"
    assert r.runs[0].decisions_verified == 19


async def test_every_notification_with_who_it_reached_and_each_delivery() -> None:
    r = await report_of("severe_ticket_resolved")
    escalation = next(n for n in r.notifications if n.kind == "escalation")
    assert escalation.roles == ["escalation_manager", "tier3_lead", "engineering_manager", "tier:tier3"]
    assert escalation.reached == ["mia (email)", "leo (email)", "raj (email)"]
    assert [(d.recipient, d.outcome) for d in escalation.deliveries] == [
        ("mia", "delivered"), ("leo", "delivered"), ("raj", "delivered")]
    stakeholders = next(n for n in r.notifications if n.kind == "stakeholders")
    assert "csm: account cust-42: no csm" in stakeholders.unreached
    who = [(d.who, d.what) for d in r.decisions]
    assert ("system:rotation", "escalation_manager_assigned") in who and ("customer", "reopened") in who
    text = render_text(r)
    assert "verdict: PASSED" in text and "leo (email): delivered" in text and "[rule postmortems]" in text


def test_the_cli_prints_the_report_and_the_verdict_of_a_changed_history(tmp_path: Path) -> None:
    data = json.loads((HISTORIES / "people_told.json").read_text(encoding="utf-8"))
    timer = next(e for e in data["events"] if e["eventType"] == "EVENT_TYPE_TIMER_STARTED")
    timer["timerStartedEventAttributes"]["startToFireTimeout"] = "1800s"
    path = tmp_path / "people_told.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "starter.cli", "audit", "report", str(path), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "decisions_differ"
    assert f"event {timer['eventId']} (TimerStarted) timer" in report["runs"][0]["differences"][0]
    assert any(d["what"] == "acknowledged" and d["who"] == "agent:history" for d in report["decisions"])

    intact = subprocess.run([sys.executable, "-m", "starter.cli", "audit", "report",
                             str(HISTORIES / "people_told.json")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert intact.returncode == 0, intact.stderr
    assert "verdict: PASSED" in intact.stdout and "Notifications" in intact.stdout
    other = subprocess.run([sys.executable, "-m", "starter.cli", "audit", "report",
                            str(HISTORIES / "survey_answered.json")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "reads ticket histories" in other.stderr


async def test_a_terminated_ticket_is_reported_from_what_its_history_holds() -> None:
    """Terminated mid-life (no completion): the decisions up to then are verified and reported."""
    data = json.loads((HISTORIES / "people_told.json").read_text(encoding="utf-8"))
    events = data["events"]
    end = max(i for i, e in enumerate(events[:150]) if e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED") + 1
    while events[end]["eventType"] not in ("EVENT_TYPE_WORKFLOW_TASK_SCHEDULED", "EVENT_TYPE_ACTIVITY_TASK_STARTED"):
        end += 1  # the task's commands
    terminated = {"eventId": str(end + 1), "eventTime": events[end - 1]["eventTime"],
                  "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED",
                  "workflowExecutionTerminatedEventAttributes": {"reason": "operator", "identity": "ops"}}
    cut = {"events": [*events[:end], terminated]}
    r = await build_report("cut", [("cut", h) for h in histories_in(cut, "cut")])
    assert r.verdict == "passed" and r.status == "open", "not closed: it was terminated"
    assert r.runs[0].decisions_verified > 20 and not r.runs[0].differences
    assert any(d.what == "acknowledged" for d in r.decisions) and r.notifications


async def test_a_migrated_tickets_report_names_the_policy_in_force_at_the_end() -> None:
    r = await report_of("policy_migrated")
    moved = next(d for d in r.decisions if d.what == "policy_migrated")
    assert r.policy_version is not None and f"-> {r.policy_version}" in moved.why, (r.policy_version, moved.why)


async def test_a_deadline_caught_up_after_an_outage_shows_its_due_time_and_when_the_system_acted() -> None:
    # the committed history of patch `catch-up-acted-at`: the worker was away about 12 s across a 3 s deadline
    r = await report_of("caught_up_after_outage")
    assert r.verdict == "passed" and r.ticket_id == "H-caught-up" and r.status == "closed"
    first, second = [d for d in r.decisions if d.what == "escalated"]
    assert first.clock == "acknowledge" and first.due_at is not None and first.lateness != "0s"
    assert (first.at - first.due_at).total_seconds() > 10, "stamped when the system acted, not at its due time"
    assert second.clock == "tier" and second.due_at == first.at + timedelta(seconds=6), "Tier 2's 6 s from then"
    assert second.lateness == "0s", "and Tier 2's own deadline on time"
    page = render_html(r, generated_at=first.at)
    assert page.count('class="num late">19s<') == 2, "the caught-up breach and its escalation are shown late"
    assert 'class="num late">0s<' not in page and page.count('class="num">0s<') >= 2, "on time is not shown late"
