"""The auditor's replay: run a recorded history against the current code.

A history that replays without divergence shows that the code in hand makes
exactly the decisions the recorded ticket made (the policy snapshot is in the
history's input, so the policy of that day is what the replay uses).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field, computed_field
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from starter.client.errors import DecisionsDiffer, HistoryDiverged
from starter.client.histories import run_id_of
from starter.runtime.codec import UNDECRYPTABLE
from starter.runtime.decisions import DecisionVerdict, check_decisions
from starter.runtime.sdk_private import workflow_type_name
from starter.runtime.temporal import WORKFLOWS, replayer

REPLAY_TIMEOUT_S = 120


class ReplayReport(BaseModel):
    """A replay without divergence (a divergence raises HistoryDiverged, which names the event)."""

    workflow_id: str
    events: int
    ok: bool
    error: str | None = None


class RunVerdict(BaseModel):
    """One run of one workflow, replayed against the code in hand: passed, or where and why it did not."""

    workflow_id: str
    run_id: str | None = None
    workflow_type: str | None = None
    source: str = Field(description="where the history came from: a file, or `server`")
    events: int = 0
    passed: bool
    divergence: str | None = Field(None, description="the event (id and type) and the SDK's reason")
    unreadable: str | None = Field(None, description="not a history this code can replay, and why")
    integrity: str | None = Field(None, description="what the export folder's signed manifest says of the file")
    tampered: bool = Field(False, description="changed after export, not listed, or under a failed signature")
    decisions: DecisionVerdict | None = Field(None, description="its decisions recomputed from its recorded inputs "
                                                                "(a run that replayed)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> str:
        """passed, tampered, diverged, decisions_differ or unreadable (in that order of precedence)."""
        if self.tampered:
            return "tampered"
        if self.divergence is not None:
            return "diverged"
        if self.decisions is not None and self.decisions.differences:
            return "decisions_differ"
        return "unreadable" if self.unreadable is not None else "passed"


class ReplayAudit(BaseModel):
    """`escalation audit replay`: every run of every history asked for, one verdict each."""

    histories: int
    passed: int
    diverged: int
    unreadable: int
    events: int
    seconds: float
    per_second: float
    tampered: int = 0
    decisions_differ: int = Field(0, description="runs that replayed but whose recorded decisions the rules do not make")
    decisions_checked: int = Field(0, description="runs whose decisions were recomputed (tickets)")
    manifests: list[dict[str, Any]] = Field(default_factory=list, description="the signed manifests checked")
    verdicts: list[RunVerdict]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.passed == self.histories and not self.tampered


# ----- the export format ---------------------------------------------------------------------------------------------
# `ticket history` writes every run of a workflow, oldest first: {"workflow_id", "runs": [{"run_id", "events"}]}.
# A single run as Temporal writes it ({"events": [...]}, e.g. `temporal workflow show --output json`) is read too.


def histories_in(document: Any, default_id: str) -> list[WorkflowHistory]:
    """The runs of one export (either format), oldest first; ValueError names what is wrong."""
    if not isinstance(document, dict):
        raise ValueError("not a Temporal history export (`escalation ticket history ID`): not a JSON object")
    if "runs" in document:
        runs = document["runs"]
        if not isinstance(runs, list) or not runs:
            raise ValueError("`runs` must be a non-empty list of histories")
        wid = str(document.get("workflow_id") or default_id)
        return [_history(wid, run, f"runs[{i}]") for i, run in enumerate(runs)]
    return [_history(default_id, document, "the history")]


def _history(workflow_id: str, events_json: Any, where: str) -> WorkflowHistory:
    try:
        history = WorkflowHistory.from_json(workflow_id, events_json)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{where}: not a Temporal history export (`escalation ticket history ID`): {exc}") from None
    if not history.events:
        raise ValueError(f"{where}: the history has no events")
    return history


def workflow_type_of(history: WorkflowHistory) -> str:
    """The history's workflow type; ValueError when it does not begin with a start event or the code lacks it."""
    first = history.events[0] if history.events else None
    if first is None or not first.HasField("workflow_execution_started_event_attributes"):
        raise ValueError("the history does not begin with the workflow's start event")
    kind = first.workflow_execution_started_event_attributes.workflow_type.name
    known = registered_types()
    if kind not in known:
        raise ValueError(f"the history is of a {kind!r} workflow; this code runs: {', '.join(sorted(known))}")
    return kind


# ----- replay --------------------------------------------------------------------------------------------------------

Sourced = tuple[str, WorkflowHistory | ValueError]  # (where it came from, the history or why it could not be read)


async def replay_all(histories: AsyncIterator[Sourced], progress: Callable[[RunVerdict], None] | None = None,
                     *, decisions: bool = True) -> ReplayAudit:
    """Replay every history with one replayer (the worker's workflow types, sandbox and data converter): a history
    that cannot be replayed is reported, not raised, and the others go on. With `decisions`, each run that replayed
    has its decisions recomputed from its recorded inputs (starter.runtime.decisions); a difference fails it."""
    verdicts: list[RunVerdict] = []
    started = time.perf_counter()
    pending: dict[int, tuple[str, str]] = {}  # id(history) -> (source, type), for the histories pushed

    async def replayable() -> AsyncIterator[WorkflowHistory]:
        async for source, item in histories:
            verdict = _unreadable(source, item)
            if verdict is None:
                assert isinstance(item, WorkflowHistory)
                pending[id(item)] = (source, workflow_type_of(item))
                yield item
            else:
                _record(verdicts, verdict, progress)

    async with replayer().workflow_replay_iterator(replayable()) as results:
        iterator = aiter(results)
        while True:
            try:
                result = await asyncio.wait_for(anext(iterator), REPLAY_TIMEOUT_S)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise ValueError(f"a replay did not finish within {REPLAY_TIMEOUT_S}s (a malformed history?)") from None
            h = result.history
            source, kind = pending.pop(id(h))
            reason = None if result.replay_failure is None else str(result.replay_failure)
            keyless = reason if reason is not None and UNDECRYPTABLE in reason else None  # a key missing: not a divergence
            failure = None if reason is None or keyless else diverged_at(h, reason)
            checked = await decisions_of(h) if decisions and reason is None else None
            # a ticket whose decisions could not be checked is not passed (an auditor cannot vouch for it)
            unchecked = checked.not_checked if checked is not None and checked.check_failed else None
            _record(verdicts, RunVerdict(workflow_id=h.workflow_id, run_id=run_id_of(h), workflow_type=kind,
                                         source=source, events=len(h.events),
                                         passed=reason is None and unchecked is None and (checked is None or checked.clean),
                                         divergence=failure, unreadable=keyless or unchecked, decisions=checked), progress)
    seconds = time.perf_counter() - started
    return ReplayAudit(histories=len(verdicts), passed=sum(v.passed for v in verdicts),
                       diverged=sum(v.divergence is not None for v in verdicts),
                       unreadable=sum(v.unreadable is not None for v in verdicts),
                       decisions_differ=sum(v.verdict == "decisions_differ" for v in verdicts),
                       decisions_checked=sum(v.decisions is not None and v.decisions.checked for v in verdicts),
                       events=sum(v.events for v in verdicts), seconds=round(seconds, 3),
                       per_second=round(len(verdicts) / seconds, 1) if seconds > 0 else 0.0, verdicts=verdicts)


async def decisions_of(history: WorkflowHistory) -> DecisionVerdict:
    """The run's decision check; a failure of the check itself is reported on the run (not raised: the audit goes
    on), as not checked, with the reason; the run is then not passed."""
    try:
        return (await check_decisions(history)).verdict()
    except Exception as exc:
        kind = workflow_type_of(history)
        return DecisionVerdict(workflow_type=kind, checked=False, check_failed=True,
                               not_checked=f"decisions not checked: the check failed ({type(exc).__name__}: {exc})")


def _unreadable(source: str, item: WorkflowHistory | ValueError) -> RunVerdict | None:
    """None for a history this code can replay; otherwise its verdict, saying why not."""
    if not isinstance(item, WorkflowHistory):
        return RunVerdict(workflow_id=source, source=source, passed=False, unreadable=str(item))
    try:
        workflow_type_of(item)
        return None
    except ValueError as exc:
        return RunVerdict(workflow_id=item.workflow_id, run_id=run_id_of(item), source=source,
                          events=len(item.events), passed=False, unreadable=str(exc))


def _record(verdicts: list[RunVerdict], verdict: RunVerdict, progress: Callable[[RunVerdict], None] | None) -> None:
    verdicts.append(verdict)
    if progress is not None:
        progress(verdict)


async def replay(history_json: dict[str, Any], workflow_id: str) -> ReplayReport:
    """Every run of one export through replay_all: ValueError when it cannot be read, HistoryDiverged (naming the
    event) when a run diverges, DecisionsDiffer (naming the events) when its decisions are not the rules'."""
    histories = histories_in(history_json, workflow_id)

    async def each() -> AsyncIterator[Sourced]:
        for h in histories:
            yield "export", h

    audit = await replay_all(each())
    failed = next((v for v in audit.verdicts if not v.passed), None)
    if failed is not None and failed.divergence is not None:
        raise HistoryDiverged(failed.divergence)
    if failed is not None and failed.decisions is not None and failed.decisions.differences:
        raise DecisionsDiffer(differences_text(failed.workflow_id, failed.decisions))
    if failed is not None:
        raise ValueError(failed.unreadable or "not replayable")
    return ReplayReport(workflow_id=workflow_id, events=audit.events, ok=True)


def differences_text(workflow_id: str, decisions: DecisionVerdict, shown: int = 10) -> str:
    """The differences, one per line, each naming its event."""
    lines = [f"the decisions recorded in {workflow_id} are not the rules' ({len(decisions.differences)} differ):"]
    lines += [f"  event {d.event_id} ({d.event_type}) {d.decision}: history {d.recorded}; rules {d.computed}"
              for d in decisions.differences[:shown]]
    if len(decisions.differences) > shown:
        lines.append(f"  ... and {len(decisions.differences) - shown} more")
    return "\n".join(lines)


# The SDK names the event when it can ("... for event HistoryEvent(id: 137, WorkflowExecutionUpdateAccepted)");
# otherwise it names the values that differ ("scheduled event 'notify_v0' does not match ... 'notify'").
_NAMED_EVENT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
_QUOTED = re.compile(r"'([^'\s]{1,200})'")
_SDK_MESSAGE = re.compile(r'message: "(.*?)", source')


def diverged_at(history: WorkflowHistory, failure: str) -> str:
    """What an auditor needs from a divergence: the workflow, the event (id and type) and the SDK's reason."""
    reason = m.group(1) if (m := _SDK_MESSAGE.search(failure)) else failure
    named = _NAMED_EVENT.search(reason)
    if named:
        where = f"event {named.group(1)} ({named.group(2)})"
    elif (event := _event_holding(history, _QUOTED.findall(reason))) is not None:
        where = f"event {event.event_id} ({event_type_name(event)})"
    else:
        where = "an event the SDK did not name"
    return f"the history of {history.workflow_id} diverges from this code at {where}: {reason}"


def _event_holding(history: WorkflowHistory, values: list[str]) -> HistoryEvent | None:
    """The first event that carries the most specific of `values` (the one fewest events carry)."""
    best: list[HistoryEvent] = []
    for value in values:
        needle = json.dumps(value)
        holding = [e for e in history.events if needle in json.dumps(MessageToDict(e))]
        if holding and (not best or len(holding) < len(best)):
            best = holding
    return best[0] if best else None


def event_type_name(event: HistoryEvent) -> str:
    """`ActivityTaskScheduled` for EVENT_TYPE_ACTIVITY_TASK_SCHEDULED (the SDK's spelling in its messages)."""
    words = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_")
    return "".join(w.capitalize() for w in words)


def registered_types() -> set[str]:
    """The workflow type names the worker runs (and so the replayer accepts)."""
    return {workflow_type_name(wf) for wf in WORKFLOWS}
