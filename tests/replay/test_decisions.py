"""Decision verification: a history whose recorded decisions were changed still replays (the SDK compares only the
kinds and order of commands), but recomputing the decisions from its recorded inputs with the pure core names the
changed event. No server: the replayer and the walk run in this process."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from starter.client.errors import DecisionsDiffer
from starter.runtime.decisions import check_decisions
from starter.runtime.replay import Sourced, histories_in, replay, replay_all

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).parent / "histories"
# Real delivery (prepare, then deliver), the escalation manager's rotation, an executive escalation: every
# kind of decision a ticket records.
PEOPLE_TOLD = HISTORIES / "people_told.json"


def load(path: Path = PEOPLE_TOLD) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def events(data: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data["runs"][0]["events"] if "runs" in data else data["events"]
    return found


def first(data: dict[str, Any], event_type: str, where: Any = lambda e: True) -> dict[str, Any]:
    return next(e for e in events(data) if e["eventType"] == event_type and where(e))


def payload(holder: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.b64decode(holder["data"]))
    return value


def set_payload(holder: dict[str, Any], value: Any) -> None:
    holder["data"] = base64.b64encode(json.dumps(value).encode()).decode()


async def audit(data: dict[str, Any], decisions: bool = True) -> Any:
    async def each() -> AsyncIterator[Sourced]:
        for h in histories_in(data, "people-told"):
            yield "test", h

    return await replay_all(each(), decisions=decisions)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_every_committed_history_verifies_clean(path: Path) -> None:
    for history in histories_in(load(path), path.stem):
        check = await check_decisions(history)
        assert not check.differences, check.differences
        kind = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        if kind == "Ticket":
            assert check.checked and check.decisions > 5
            timers = [s for s in check.steps if s.name == "timer"]
            assert timers, "every ticket waits on a deadline"
        else:
            assert not check.checked and f"decisions not checked (type {kind})" in (check.not_checked or "")


async def test_an_untouched_history_passes_replay_and_verification() -> None:
    report = await audit(load())
    (verdict,) = report.verdicts
    assert verdict.passed and verdict.verdict == "passed" and report.ok
    assert verdict.decisions is not None and verdict.decisions.checked and verdict.decisions.decisions >= 90
    assert report.decisions_checked == 1 and report.decisions_differ == 0


async def test_a_changed_timer_duration_replays_but_its_decision_differs() -> None:
    data = load()
    timer = first(data, "EVENT_TYPE_TIMER_STARTED")
    original = timer["timerStartedEventAttributes"]["startToFireTimeout"]
    timer["timerStartedEventAttributes"]["startToFireTimeout"] = "1800s"

    replayed = await audit(data, decisions=False)
    assert replayed.verdicts[0].passed, "the SDK's replay does not look at a timer's duration"

    report = await audit(data)
    (verdict,) = report.verdicts
    assert not verdict.passed and verdict.verdict == "decisions_differ" and not report.ok
    assert verdict.divergence is None and report.decisions_differ == 1
    assert verdict.decisions is not None
    (diff,) = verdict.decisions.differences
    assert (diff.event_id, diff.event_type, diff.decision) == (int(timer["eventId"]), "TimerStarted", "timer")
    assert "0:30:00" in diff.recorded, "what the history records"
    assert original == "899.987s", "the fixture: the first timer (a warning of customer_update's clock)"
    assert "0:14:59.987" in diff.computed and "warning of customer_update" in diff.computed, "what the rules make"


async def test_a_changed_actor_in_an_update_input_is_reported() -> None:
    data = load()
    accepted = first(data, "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED", lambda e: e[
        "workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["name"] == "acknowledge")
    holder = accepted["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["args"]["payloads"][0]
    action = payload(holder)
    assert action["actor"] == "agent:history"
    set_payload(holder, {**action, "actor": "agent:mallory"})

    assert (await audit(data, decisions=False)).verdicts[0].passed, "replay alone does not see it"
    with pytest.raises(DecisionsDiffer) as info:
        await replay(data, "people-told")
    assert info.value.code == "decisions_differ"
    assert "(WorkflowExecutionUpdateCompleted) update_answer" in info.value.message
    assert "actor: recorded agent:history, computed agent:mallory" in info.value.message, info.value.message
    assert "(WorkflowExecutionCompleted) final_state" in info.value.message, "the timeline of the final state too"


async def test_a_changed_recipient_of_a_notification_is_reported() -> None:
    data = load()
    scheduled = first(data, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED", lambda e: e[
        "activityTaskScheduledEventAttributes"]["activityType"]["name"] == "prepare_notification")
    holder = scheduled["activityTaskScheduledEventAttributes"]["input"]["payloads"][0]
    prepared = payload(holder)
    set_payload(holder, {**prepared, "roles": [*prepared["roles"], "vp_sales"]})

    report = await audit(data)
    decisions = report.verdicts[0].decisions
    assert decisions is not None
    diff = next(d for d in decisions.differences if d.event_id == int(scheduled["eventId"]))
    assert diff.event_type == "ActivityTaskScheduled" and diff.decision == "activity"
    assert "roles" in diff.recorded and "prepare_notification" in diff.computed


async def test_a_changed_search_attribute_and_final_state_are_reported() -> None:
    data = copy.deepcopy(load())
    completed = first(data, "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED")
    holder = completed["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]
    state = payload(holder)
    set_payload(holder, {**state, "escalation_count": state["escalation_count"] + 5})
    report = await audit(data)
    decisions = report.verdicts[0].decisions
    assert decisions is not None
    (diff,) = decisions.differences
    assert (diff.event_id, diff.decision) == (int(completed["eventId"]), "final_state")
    assert diff.recorded.startswith(f"escalation_count: recorded {state['escalation_count'] + 5}")


def test_the_cli_reports_differing_decisions_as_its_own_failure(tmp_path: Path) -> None:
    """`audit replay FILE --json`: one JSON document, the run's verdict `decisions_differ` naming the event, exit 9
    (not 2, bad input, nor 5, a divergence)."""
    data = load()
    timer = first(data, "EVENT_TYPE_TIMER_STARTED")
    timer["timerStartedEventAttributes"]["startToFireTimeout"] = "1800s"
    path = tmp_path / "people_told.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "starter.cli", "audit", "replay", str(path), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    report = json.loads(done.stdout)  # exactly one document
    assert (report["histories"], report["passed"], report["diverged"], report["decisions_differ"]) == (1, 0, 0, 1)
    (verdict,) = report["verdicts"]
    assert verdict["verdict"] == "decisions_differ" and not report["ok"]
    (diff,) = verdict["decisions"]["differences"]
    assert (diff["event_id"], diff["event_type"]) == (int(timer["eventId"]), "TimerStarted")

    text = subprocess.run([sys.executable, "-m", "starter.cli", "audit", "replay", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 9
    assert "DECISIONS people_told" in text.stdout and f"event {timer['eventId']} (TimerStarted) timer" in text.stdout


async def test_a_changed_target_in_a_recorded_policy_migration_is_reported() -> None:
    """The migration's new snapshot is an input: a Tier 1 target edited in it after the fact moves the due times the
    core computes, so the recorded timer and the migration's answer no longer match it."""
    data = load(HISTORIES / "policy_migrated.json")
    accepted = first(data, "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED", lambda e: e[
        "workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["name"] == "migrate_policy")
    holder = accepted["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["args"]["payloads"][0]
    move = payload(holder)
    assert move["policy"]["priorities"]["P1"]["tier"]["tier1"] in ("40m", "PT40M")
    move["policy"]["priorities"]["P1"]["tier"]["tier1"] = "35m"  # still breached before the resolve: same commands
    set_payload(holder, move)

    assert (await audit(data, decisions=False)).verdicts[0].passed, "replay alone does not see it"
    with pytest.raises(DecisionsDiffer) as info:
        await replay(data, "H-migrated")
    assert "update_answer" in info.value.message and "timer" in info.value.message, info.value.message


async def test_a_ticket_whose_decision_check_fails_is_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault in the check itself (injected here: the checker raises) must not read as a clean audit: the run
    replays under the SDK, but it is reported unreadable with the reason, and the audit does not pass."""
    import starter.runtime.replay as replay_module

    async def broken(history: Any, converter: Any = None) -> Any:
        raise RuntimeError("checker fault")

    clean = await audit(load())
    assert clean.passed == clean.histories >= 1
    monkeypatch.setattr(replay_module, "check_decisions", broken)
    report = await audit(load())
    (v, *_) = report.verdicts
    assert report.passed == 0 and report.unreadable == report.histories
    assert v.verdict == "unreadable" and v.divergence is None
    assert "the check failed (RuntimeError: checker fault)" in (v.unreadable or "")
    # without the decision check (asked for), the same run passes: only the SDK's replay was asked
    assert (await audit(load(), decisions=False)).passed == report.histories
