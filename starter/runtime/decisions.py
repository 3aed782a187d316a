"""The auditor's decision check: recompute, with the pure core, every decision a ticket's history records.

Replay (replay.py) proves that the code issues the same *kinds* of commands in the same order; it does not look at
their values: a timer whose duration was changed, or an Update whose actor was changed, still replays. This walks a
Ticket run's events, takes what came from outside (the opening with its policy snapshot, each accepted Update with its
input, each Signal, each fired timer, each activity's result) as the recorded inputs, feeds them to the pure core
(`workflows.ticket`: open_ticket, step, catch_up, and the shell's own rules in `workflows.ticket.decide`) at their
recorded instants, and compares what the core decides with what the history records: every timer (its duration, so
its fire time), every activity's input (who is told what, prepared and delivered), every search attribute upsert,
every Update's answer, the children started, and the final state (or the state carried to the next run).

Time: `workflow.now()` inside a workflow task is the activation's timestamp, which Temporal's core SDK takes from
that task's WorkflowTaskStarted event; so each input is applied at the time of the WorkflowTaskStarted event of the
task that received it (tests/replay/test_decisions.py: every committed ticket history's timers match exactly).

Patches: `workflow.patched(id)` answers true in a run whose history holds that patch's marker (the SDK's replay
rule), so each run is recomputed on the path it took, old paths included.

Pure Python over the events (no server, no worker); only decoding payloads is async (the data converter's codec).
Other workflow types are reported as not checked.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from starter.runtime.temporal import data_converter
from workflows import ticket as core
from workflows.common import search_attributes as sa
from workflows.common.delivery import Message, Prepared
from workflows.common.policy import Policy, intern_policy
from workflows.postmortem import subjects as postmortem_subjects
from workflows.postmortem.state import postmortem_workflow_id
from workflows.survey import rules as survey
from workflows.ticket import decide
from workflows.ticket import workflow as shell
from workflows.ticket.views import DUPLICATE

CHECKED_TYPES = ("Ticket",)
SINGLE_BATCH_FLAG = 2  # the Python SDK's PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH logic flag
# Workflow time passes through a float (about 0.24 µs of precision at this epoch) and a timer is recorded to the
# microsecond: a recomputed duration may differ in its last microsecond. An auditor cares about far more than 1 ms.
TOLERANCE = timedelta(milliseconds=1)
SHOWN = 300  # characters of a recorded or computed value shown in a difference


class Difference(BaseModel):
    """One decision the history records that the pure core, fed the recorded inputs, does not make."""

    event_id: int | None = Field(description="the history event holding the decision (None: a decision never recorded)")
    event_type: str
    decision: str = Field(description="timer, activity, search_attributes, update_answer, child, completion, ...")
    recorded: str
    computed: str


class Step(BaseModel):
    """One event of the walk, as an auditor reads it: a recorded input or a recorded decision."""

    event_id: int
    event_type: str
    at: datetime = Field(description="the event's time")
    effective_at: datetime | None = Field(None, description="workflow time it took effect (its task's start)")
    role: str = Field(description="input or decision")
    name: str = Field(description="the Update, Signal, activity or child type; timer; search_attributes; ...")
    actor: str | None = None
    summary: str = ""
    value: Any = Field(None, description="the decoded input, result or command value (JSON)")
    answers: int | None = Field(None, description="a result's command: the event that scheduled or initiated it")


class Decided(BaseModel):
    """A timeline entry the rules recorded (who, when, why, rule, clock), with the event that caused it."""

    entry: core.TimelineEntry
    event_id: int = Field(description="the input (or, for the shell's own deadlines, the task) behind it")
    event_type: str
    noticed_at: datetime = Field(description="workflow time when the workflow applied it (a deadline applied late "
                                             "by a catch-up is recorded at its due time)")


class DecisionVerdict(BaseModel):
    """A run's decisions recomputed from its recorded inputs: checked (and the differences), or why not."""

    workflow_type: str
    checked: bool
    not_checked: str | None = Field(None, description="why the decisions were not checked")
    check_failed: bool = Field(False, description="a ticket's check could not be completed (its recorded inputs "
                               "unreadable, or the check itself failed): the run is not passed")
    decisions: int = Field(0, description="recorded decisions compared with the core's")
    differences: list[Difference] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what was not compared, and why")
    patches: list[str] = Field(default_factory=list, description="the patch markers in the run (its code path)")
    policy_version: str | None = None

    @property
    def clean(self) -> bool:
        return not self.differences


class DecisionCheck(DecisionVerdict):
    """The verdict with the walk itself (what the audit report is built from)."""

    steps: list[Step] = Field(default_factory=list, description="the walk: every input and decision, in order")
    timeline: list[Decided] = Field(default_factory=list, description="every timeline entry the rules recorded, "
                                                                        "unbounded (the state keeps only the latest)")
    final_state: dict[str, Any] | None = Field(None, description="the recomputed state at the run's end (JSON)")

    def verdict(self) -> DecisionVerdict:
        return DecisionVerdict.model_validate(self.model_dump(include=set(DecisionVerdict.model_fields)))


# ----- reading the events --------------------------------------------------------------------------------------------

# Events a workflow task's completion writes (its commands, and the Update protocol's messages).
_COMMANDS = {
    "marker_recorded_event_attributes", "workflow_execution_update_accepted_event_attributes",
    "workflow_execution_update_completed_event_attributes", "workflow_execution_update_rejected_event_attributes",
    "timer_started_event_attributes", "timer_canceled_event_attributes", "activity_task_scheduled_event_attributes",
    "activity_task_cancel_requested_event_attributes", "upsert_workflow_search_attributes_event_attributes",
    "workflow_properties_modified_event_attributes", "start_child_workflow_execution_initiated_event_attributes",
    "signal_external_workflow_execution_initiated_event_attributes",
    "request_cancel_external_workflow_execution_initiated_event_attributes",
    "workflow_execution_completed_event_attributes", "workflow_execution_failed_event_attributes",
    "workflow_execution_continued_as_new_event_attributes", "workflow_execution_canceled_event_attributes",
}


def attributes_name(e: HistoryEvent) -> str:
    name = e.WhichOneof("attributes")
    return name or ""


def event_type(e: HistoryEvent) -> str:
    """`TimerStarted` for timer_started_event_attributes (the SDK's and the Web UI's spelling)."""
    words = attributes_name(e).removesuffix("_event_attributes").split("_")
    return "".join(w.capitalize() for w in words)


def _at(e: HistoryEvent) -> datetime:
    return e.event_time.ToDatetime(tzinfo=UTC)


def workflow_time(e: HistoryEvent) -> datetime:
    """`workflow.now()` in the task this WorkflowTaskStarted event began: the SDK's own conversion (nanoseconds
    through a float), so recomputed instants match recorded ones to the microsecond."""
    return datetime.fromtimestamp(e.event_time.ToNanoseconds() / 1e9, UTC)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():.6f}s"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def differing(recorded: Any, computed: Any, path: str = "") -> list[str]:
    """Where `computed` differs from `recorded`, over the fields the recorded value has (a field added to a model
    since the history was written is not a difference: it was not part of the decision then)."""
    if isinstance(recorded, dict) and isinstance(computed, dict):
        out: list[str] = []
        for k, v in recorded.items():
            if k not in computed:
                if v not in (None, [], {}, ""):
                    out.append(f"{path}{k}: recorded {_short(v)}, computed nothing")
                continue
            out += differing(v, computed[k], f"{path}{k}.")
        return out
    if isinstance(recorded, list) and isinstance(computed, list):
        if len(recorded) != len(computed):
            return [f"{path.rstrip('.')}: recorded {len(recorded)} item(s), computed {len(computed)}"]
        out = []
        for i, (r, c) in enumerate(zip(recorded, computed, strict=True)):
            out += differing(r, c, f"{path}{i}.")
        return out
    if recorded != computed and not _same_instant(recorded, computed) and not _folded(recorded, computed) \
            and not _worded(path, recorded, computed):
        return [f"{path.rstrip('.') or 'value'}: recorded {_short(recorded)}, computed {_short(computed)}"]
    return []


TEXTS = ("summary", "reason")  # a timeline entry's words (not its actor, action, time, clock or due time)


def _folded(a: Any, b: Any) -> bool:
    """One text the other clipped ("…"): the state's bound folds older timeline entries; histories from before that
    bound kept them whole."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return short.endswith("…") and long.startswith(short[:-1])


def _worded(path: str, a: Any, b: Any) -> bool:
    """A timeline text that this code words at more length than the code that wrote the history (the longer one
    begins with the shorter): the same decision, explained further."""
    if path.rstrip(".").rpartition(".")[2] not in TEXTS or not (isinstance(a, str) and isinstance(b, str)):
        return False
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return long.startswith(short.removesuffix("…"))


def _same_instant(a: Any, b: Any) -> bool:
    """Two JSON datetimes naming one instant ("...Z" and "...+00:00")."""
    if not (isinstance(a, str) and isinstance(b, str)) or len(a) < 19 or a[10:11] != "T":
        return False
    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False


class _Decoded:
    """Every payload and failure of a run, decoded once up front (the codec is async; the walk is not)."""

    def __init__(self) -> None:
        self.values: dict[int, list[Any]] = {}
        self.failures: dict[int, str] = {}

    def first(self, e: HistoryEvent) -> Any:
        values = self.values.get(e.event_id, [])
        return values[0] if values else None


async def _decode(history: WorkflowHistory, converter: DataConverter) -> _Decoded:
    out = _Decoded()

    async def put(e: HistoryEvent, payloads: Any) -> None:
        items = list(payloads)
        if items:
            out.values[e.event_id] = await converter.decode(items)

    async def failure(e: HistoryEvent, f: Failure) -> None:
        copy = Failure()
        copy.CopyFrom(f)
        out.failures[e.event_id] = str(await converter.decode_failure(copy))

    for e in history.events:
        kind = attributes_name(e)
        if not kind:
            continue
        a: Any = getattr(e, kind)
        if kind == "workflow_execution_started_event_attributes" or kind == "workflow_execution_signaled_event_attributes":
            await put(e, a.input.payloads)
        elif kind == "workflow_execution_update_accepted_event_attributes":
            await put(e, a.accepted_request.input.args.payloads)
        elif kind == "workflow_execution_update_completed_event_attributes":
            if a.outcome.HasField("success"):
                await put(e, a.outcome.success.payloads)
            elif a.outcome.HasField("failure"):
                await failure(e, a.outcome.failure)
        elif kind == "activity_task_scheduled_event_attributes":
            await put(e, a.input.payloads)
        elif kind == "activity_task_completed_event_attributes":
            await put(e, a.result.payloads)
        elif kind in ("activity_task_failed_event_attributes", "activity_task_timed_out_event_attributes"):
            await failure(e, a.failure)
        elif kind == "start_child_workflow_execution_initiated_event_attributes":
            await put(e, a.input.payloads)
        elif kind == "workflow_execution_completed_event_attributes":
            await put(e, a.result.payloads)
        elif kind == "workflow_execution_continued_as_new_event_attributes":
            await put(e, a.input.payloads)
        elif kind == "workflow_execution_failed_event_attributes":
            await failure(e, a.failure)
    return out


def _search_attributes(indexed: Any) -> dict[str, object]:
    """Search attribute values as recorded (JSON payloads with their type in the metadata; never encoded)."""
    return {name: json.loads(p.data) if p.data else None for name, p in indexed.items()}


def _patches(history: WorkflowHistory) -> set[str]:
    found: set[str] = set()
    for e in history.events:
        if e.HasField("marker_recorded_event_attributes"):
            details = e.marker_recorded_event_attributes.details
            for key in ("patch-data", "patch_data"):
                if key in details and details[key].payloads:
                    found.add(str(json.loads(details[key].payloads[0].data).get("id")))
    return found


# ----- the shell, recomputed -------------------------------------------------------------------------------------------


@dataclass
class _Expected:
    """A command the shell issues, computed: compared with the recorded one it is matched to."""

    kind: str  # timer | activity | child | complete | continue_as_new
    name: str
    value: Any
    key: str | None = None  # an activity's idempotency key: matched by it first
    deadline: core.Deadline | None = None
    on_result: Callable[[Any, str | None, bool], None] | None = None  # (result, failure, started) for activities
    why: str = ""


@dataclass
class _Run:
    """TicketWorkflow's shell, step by step, over the pure core: the same rules, fed recorded inputs."""

    policy: Policy
    patches: set[str]
    now: datetime
    state: core.TicketState
    published: dict[str, object]
    pending: list[core.Effect] = field(default_factory=list)
    expected: list[_Expected] = field(default_factory=list)
    in_flight: int = 0
    changed: bool = False
    closed_phase: bool = False  # the main loop has ended (the ticket closed)
    survey_asked: bool = False
    awaiting_child: bool = False  # after closing, the run awaits a child's start
    finished: bool = False
    late_replies: list[core.CustomerReply] = field(default_factory=list)
    opened_now: bool = False
    figures_forced: bool = False  # publish_figures was applied (the metrics' backfill)
    published_in_task: list[dict[str, object]] = field(default_factory=list)  # each upsert this task computed

    def patched(self, patch: str) -> bool:
        return patch in self.patches

    def publish_figures(self) -> bool:
        """The shell's publish_figures: the figures' attributes and memo are not checked, only the answer."""
        was_on = self.figures_forced or self.patched(shell.METRICS_FIGURES)
        self.figures_forced = True
        return not was_on

    # the shell's _apply_due / _apply / _act
    def apply_due(self) -> None:
        out = decide.due_caught_up(self.state, self.now, self.policy,
                                   supersede=lambda: self.patched(shell.SUPERSEDE_DUE_WARNINGS),
                                   acted_at=lambda: self.patched(shell.CATCH_UP_ACTED_AT))
        if out is not None:
            self.state = out.state
            self.pending += out.effects

    def apply(self, event: core.Event) -> list[core.TimelineEntry]:
        seen = self.state.seq
        self.apply_due()
        out = core.step(self.state, event, self.now, self.policy)
        self.state, self.changed = out.state, True
        self.pending += out.effects
        return decide.added_since(self.state, seen)

    def repeated(self, event: core.Event) -> bool:
        return (isinstance(event, core.CustomerReply) and core.reply_seen(self.state, event.message_id)
                and self.patched(shell.DEDUPLICATE_REPLIES))

    def act(self, event: core.Event) -> Any:
        if self.repeated(event):
            return decide.action_answer(self.state, DUPLICATE, [], self.now, small=True)
        added = self.apply(event)
        return decide.action_answer(self.state, event.type, added, self.now,
                                    small=self.patched(shell.SMALL_ACTION_ANSWER))

    def migrate(self, inp: core.MigratePolicy) -> Any:
        """The shell's migrate_policy: the old policy's due deadlines first, then the move to the new snapshot."""
        self.apply_due()
        out = core.migrate(self.state, self.policy, inp.policy, self.now, inp.actor, inp.reason, inp.from_version)
        self.state, self.policy, self.changed = out.state, intern_policy(inp.policy), True
        return out.plan

    def customer_replied(self, e: core.CustomerReply) -> None:
        if self.state.closed:
            self.late_replies.append(e)
            return
        if self.repeated(e):
            return
        with contextlib.suppress(core.Rejected):  # a signal cannot be refused: the shell logs and ignores it
            self.apply(e)

    def incident(self, e: core.IncidentNotice) -> None:
        if self.state.closed:
            return
        with contextlib.suppress(core.Rejected):
            self.apply(e)

    # the shell's main loop, one iteration (woken by a change, an effect to carry out, or its timer)
    def iterate(self, continues: bool) -> None:
        # A timer this task started is cancelled by this iteration: the core SDK drops a timer started and
        # cancelled in one activation, so the history holds only the last one.
        self.expected = [x for x in self.expected if x.kind != "timer"]
        self.changed = False
        self.apply_due()
        self.publish()
        self.send()
        if self.state.closed:
            self.closed_phase = True
            return
        if continues and self.idle():
            self.expected.append(_Expected("continue_as_new", "Ticket", core.TicketInput(
                ticket=self.state.ticket, policy=self.policy, state=self.state), why="the history grew long"))
            self.finished = True
            return
        wait = decide.next_wait(self.state, self.policy, self.now)
        if wait is not None:
            self.expected.append(_Expected("timer", "timer", wait[0], deadline=wait[1],
                                           why=f"{wait[1].kind} of {wait[1].clock or 'the reopen window'}"))

    def idle(self) -> bool:
        return not self.pending and not self.in_flight

    def publish(self) -> None:
        values = core.search_attributes(self.state)
        if self.published.get(sa.INCIDENT.name) and sa.INCIDENT.name not in values and self.patched(
                shell.CLEAR_INCIDENT):
            values[sa.INCIDENT.name] = ""
        if any(self.published.get(k) != v for k, v in values.items()):
            self.published = values
            self.published_in_task.append(values)

    # carrying out effects (the shell's _carry_out and its branches)
    def send(self) -> None:
        for effect in self.pending:
            self.carry_out(effect)
        self.pending = []

    def activity(self, name: str, value: Any, key: str | None, on_result: Callable[[Any, str | None, bool], None],
                 why: str) -> None:
        self.in_flight += 1

        def done(result: Any, failure: str | None, started: bool) -> None:
            self.in_flight -= 1
            on_result(result, failure, started)

        self.expected.append(_Expected("activity", name, value, key=key, on_result=done, why=why))

    def carry_out(self, effect: core.Effect) -> None:
        if isinstance(effect, core.Notify):
            self.notify(effect)
        elif isinstance(effect, core.EnrolSponsorship):
            if self.patched(shell.SPONSORSHIP):
                self.activity("enrol_sponsorship", effect, None, lambda r, f, _: self.enrolled(effect, r, f),
                              f"enrol {effect.account_id}" if hasattr(effect, "account_id") else "sponsorship")
        elif isinstance(effect, core.StartPostmortem):
            if self.patched(shell.POSTMORTEMS) and self.state.postmortem_id is None:
                inp = postmortem_subjects.for_ticket(self.state, self.policy)
                pm_id = postmortem_workflow_id("ticket", inp.subject_id)
                self.child("PostmortemWorkflow", inp, lambda: self.set_state(
                    core.postmortem_started(self.state, pm_id, self.now)), "a severe ticket's post-mortem")
        else:
            self.activity("assign_escalation_manager", effect, None, lambda r, f, _: self.manager(effect, r, f),
                          "whose turn among the escalation managers")

    def set_state(self, state: core.TicketState, changed: bool = True) -> None:
        self.state = state
        self.changed = self.changed or changed

    def notify(self, n: core.Notify) -> None:
        why = f"{n.kind} to {', '.join(n.recipients)}"
        if not self.patched(shell.REAL_DELIVERY):
            self.activity("notify", n, n.key, lambda r, f, _: self.failed(f, lambda why: core.notification_failed(
                self.state, n, self.now, why)), why)
            return
        self.activity("prepare_notification", core.prepare_input(self.state, n, self.now), n.key,
                      lambda r, f, _: self.prepared(n, r, f), why)

    def prepared(self, n: core.Notify, result: Any, failure: str | None) -> None:
        if failure is not None:
            self.set_state(core.notification_failed(self.state, n, self.now, failure))
            return
        prepared = Prepared.model_validate(result)
        self.set_state(core.notification_prepared(self.state, n, prepared, self.now))
        for m in prepared.messages:
            self.deliver(m)

    def deliver(self, m: Message) -> None:
        self.activity("deliver", m, m.key, lambda r, f, _: self.failed(f, lambda why: core.delivery_failed(
            self.state, m, self.now, why)), f"{m.kind} to {m.recipient_id} ({m.channel.value})")

    def failed(self, failure: str | None, record: Callable[[str], core.TicketState]) -> None:
        """A delivery that failed in the end is recorded on the timeline; one that succeeded changes nothing."""
        if failure is not None:
            self.set_state(record(failure))

    def enrolled(self, e: core.EnrolSponsorship, result: Any, failure: str | None) -> None:
        if failure is not None:
            self.set_state(core.sponsorship_not_enrolled(self.state, e, self.now, failure))
        else:
            self.set_state(core.sponsorship_enrolled(self.state, e, result, self.now))

    def manager(self, e: core.FindEscalationManager, result: Any, failure: str | None) -> None:
        manager, why = (None, failure) if failure is not None else (result, "no escalation manager on duty")
        if self.state.closed or self.state.escalation_manager is not None:
            return
        if manager is None:
            self.set_state(core.no_manager_found(self.state, e, self.now, why or ""))
            return
        self.apply(core.AssignManager(actor="system:rotation", manager=manager))

    def child(self, name: str, value: BaseModel, then: Callable[[], None], why: str) -> None:
        self.in_flight += 1

        def done(result: Any, failure: str | None, started: bool) -> None:
            self.in_flight -= 1
            then()

        self.expected.append(_Expected("child", name, value, on_result=done, why=why))

    # after the main loop: the survey, late replies, completion
    def after_close(self) -> None:
        """The shell after its main loop: the survey started (awaited), then one late reply at a time opens its
        follow-up (each start awaited), and it completes once idle."""
        if self.awaiting_child:
            return
        if not self.survey_asked:
            self.survey_asked = True
            if self.patched(shell.SURVEYS):
                inp = survey.survey_input(self.state, self.policy, self.now)
                if inp is not None:
                    self.awaiting_child = True
                    self.child("SurveyWorkflow", inp, lambda: self.started(
                        survey.survey_started(self.state, inp, self.now)), "the satisfaction survey")
                    return
        while not self.finished:
            if self.late_replies:
                if self.follow_up(self.late_replies.pop(0)):
                    return
                continue
            if self.idle():
                self.expected.append(_Expected("complete", "Ticket", self.state, why="closed, every notification out"))
                self.finished = True
            return

    def started(self, state: core.TicketState) -> None:
        """A child the run awaited has started (the shell records it without waking its loop)."""
        self.awaiting_child = False
        self.set_state(state, changed=False)

    def follow_up(self, reply: core.CustomerReply) -> bool:
        """True when a follow-up is started (and awaited); before its patch the reply was only logged."""
        if not self.patched(shell.FOLLOW_UP_FROM_LATE_REPLY):
            return False
        follow = core.follow_up_ticket(self.state, reply, self.now)
        self.awaiting_child = True
        self.child("Ticket", core.TicketInput(ticket=follow, policy=self.policy), lambda: self.started(
            core.follow_up_opened(self.state, reply, follow.id, self.now)), "a late reply's follow-up")
        return True


# ----- the walk ------------------------------------------------------------------------------------------------------


class _Walk:
    def __init__(self, history: WorkflowHistory, decoded: _Decoded) -> None:
        self.h = history
        self.d = decoded
        self.check = DecisionCheck(workflow_type="Ticket", checked=True)
        self.run: _Run | None = None
        self.task_started: HistoryEvent | None = None
        self.by_scheduled: dict[int, _Expected] = {}  # a recorded command's event id -> the computed one it matched
        self.seen_seq = 0  # the last timeline entry collected
        self.single_batch = any(SINGLE_BATCH_FLAG in e.workflow_task_completed_event_attributes.sdk_metadata.lang_used_flags
                                for e in history.events if e.HasField("workflow_task_completed_event_attributes"))

    def differ(self, e: HistoryEvent | None, decision: str, recorded: Any, computed: Any) -> None:
        self.check.differences.append(Difference(
            event_id=None if e is None else e.event_id, event_type="" if e is None else event_type(e),
            decision=decision, recorded=_short(_json(recorded)), computed=_short(_json(computed))))

    def step(self, e: HistoryEvent, role: str, name: str, now: datetime | None, actor: str | None = None,
             summary: str = "", value: Any = None, answers: int | None = None) -> None:
        self.check.steps.append(Step(event_id=e.event_id, event_type=event_type(e), at=_at(e), effective_at=now,
                                     role=role, name=name, actor=actor, summary=summary, value=_json(value),
                                     answers=answers))

    def collect(self, e: HistoryEvent) -> None:
        """The timeline entries recorded since the last call, attributed to `e`."""
        run = self.run
        if run is None:
            return
        for entry in run.state.timeline:
            if entry.seq > self.seen_seq:
                self.check.timeline.append(Decided(entry=entry, event_id=e.event_id, event_type=event_type(e),
                                                   noticed_at=run.now))
        self.seen_seq = max(self.seen_seq, run.state.seq)

    def walk(self) -> DecisionCheck:
        events = list(self.h.events)
        self.check.patches = sorted(_patches(self.h))
        inputs: list[HistoryEvent] = []
        i = 0
        started: HistoryEvent | None = None
        while i < len(events):
            e = events[i]
            kind = attributes_name(e)
            if kind == "workflow_task_started_event_attributes":
                started = e
            elif kind == "workflow_task_completed_event_attributes":
                j = i + 1
                while j < len(events) and attributes_name(events[j]) in _COMMANDS:
                    j += 1
                assert started is not None
                self.task_started = started
                self.task(workflow_time(started), inputs, events[i + 1:j])
                inputs = []
                i = j
                continue
            elif kind in ("workflow_task_failed_event_attributes", "workflow_task_timed_out_event_attributes",
                          "workflow_task_scheduled_event_attributes"):
                pass
            elif kind in ("workflow_execution_terminated_event_attributes", "workflow_execution_timed_out_event_attributes"):
                self.step(e, "input", event_type(e), None, summary="ended from outside: no decision of the workflow")
            elif kind != "workflow_execution_started_event_attributes" or i:
                inputs.append(e)
            i += 1
        if self.run is not None:
            self.check.final_state = self.run.state.model_dump(mode="json")
        return self.check

    # one workflow task: its inputs applied at its start, its commands compared with the computed ones
    def task(self, now: datetime, inputs: list[HistoryEvent], commands: list[HistoryEvent]) -> None:
        if self.run is None:
            self.open(now)  # a new _Run: now set, nothing expected yet but the opening's own
        else:
            self.run.now, self.run.expected, self.run.published_in_task = now, [], []
        run = self.run
        assert run is not None
        timer_fired = False
        updates = [c for c in commands if c.HasField("workflow_execution_update_accepted_event_attributes")]
        answers = {c.workflow_execution_update_completed_event_attributes.meta.update_id: c for c in commands
                   if c.HasField("workflow_execution_update_completed_event_attributes")}
        continues = any(c.HasField("workflow_execution_continued_as_new_event_attributes") for c in commands)
        signals = [x for x in inputs if x.HasField("workflow_execution_signaled_event_attributes")]
        # The SDK applies an activation's Signals and Updates first; before its single-batch flag it also let the
        # workflow run once between them and the other jobs (activity results, timers), so the main loop may act
        # on the Update before an activity's result arrives in the same task.
        task_event = self.task_started or (inputs[-1] if inputs else self.h.events[0])
        for e in signals:
            self.signal(e, now)
            self.collect(e)
        for e in updates:
            self.update(e, answers, now)
            self.collect(e)
        if (signals or updates) and not self.single_batch:
            self.wake(run, continues, timer_fired=False)
            self.collect(task_event)
        # A child's start wakes its waiter in one step, an activity's result in two (the activity handle is a task
        # of its own): in one run of the workflow the child's continuation comes first.
        children = [e for e in inputs if e.HasField("child_workflow_execution_started_event_attributes")
                    or e.HasField("start_child_workflow_execution_failed_event_attributes")]
        fired: HistoryEvent | None = None
        for e in children + [e for e in inputs if e not in signals and e not in children]:
            if self.other_input(e, now):
                timer_fired, fired = True, e
            self.collect(e)
        self.wake(run, continues, timer_fired)
        self.collect(fired or task_event)
        self.compare(commands, run)

    @staticmethod
    def wake(run: _Run, continues: bool, timer_fired: bool) -> None:
        """The workflow runs until it waits again: the main loop iterates if something woke it, then (once closed)
        the survey, late replies and completion."""
        if not run.closed_phase and not run.finished and (run.opened_now or run.changed or run.pending or timer_fired):
            run.opened_now = False
            run.iterate(continues)
        if run.closed_phase and not run.finished:
            run.after_close()

    def open(self, now: datetime) -> None:
        first = self.h.events[0]
        a = first.workflow_execution_started_event_attributes
        inp = core.TicketInput.model_validate(self.d.first(first))
        patches = set(self.check.patches)
        published = _search_attributes(a.search_attributes.indexed_fields)
        self.check.policy_version = inp.policy.version()
        if inp.state is None:
            opened = core.open_ticket(inp.ticket, inp.policy, now, opened_by=inp.opened_by, handoff=inp.handoff,
                                      customer_notices=shell.CUSTOMER_NOTICES in patches,
                                      find_manager=shell.ESCALATION_MANAGERS in patches)
            state, pending = opened.state, list(opened.effects)
            summary = f"opened {inp.ticket.id} ({inp.ticket.priority}) under policy {self.check.policy_version}"
        else:
            state, pending = inp.state, []
            summary = f"continued {inp.ticket.id} as new (the state carried over)"
        recorded_version = self.recorded_policy_version(published)
        if recorded_version is not None and recorded_version != state.policy_version:
            # The version is a hash of the Policy model's dump: a model that gained fields since hashes the same
            # snapshot differently. The snapshot's rules are what is checked; its recorded name is kept.
            self.check.notes.append(f"policy version: the history names {recorded_version}; this code hashes the "
                                    f"same snapshot as {state.policy_version} (the Policy model has changed since)")
            state = state.model_copy(update={"policy_version": recorded_version})
            self.check.policy_version = recorded_version
        self.run = _Run(policy=inp.policy, patches=patches, now=now, state=state, published=published,
                        pending=pending, opened_now=True)
        if inp.state is not None:
            self.seen_seq = inp.state.seq  # carried over: collected in the run before
        self.collect(first)
        if inp.state is None and inp.ticket.opened_at > now + shell.CLOCK_SKEW:  # the shell refuses to run it
            self.run.finished = True
            self.run.expected.append(_Expected("fail", "Ticket", f"opened_at {inp.ticket.opened_at.isoformat()} is in "
                                                                 f"the future", why="opened in the future"))
        self.step(first, "input", "opening", now, actor=inp.opened_by or core.OPENER, summary=summary,
                  value={"ticket": inp.ticket.id, "policy_version": self.check.policy_version,
                         "continued": inp.state is not None})

    def recorded_policy_version(self, published: dict[str, object]) -> str | None:
        """The policy version the history names: set at start, or in the first upsert of the opening task."""
        if isinstance(v := published.get(sa.POLICY_VERSION.name), str):
            return v
        for e in self.h.events:
            if e.HasField("upsert_workflow_search_attributes_event_attributes"):
                fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
                if sa.POLICY_VERSION.name in fields:
                    return str(json.loads(fields[sa.POLICY_VERSION.name].data))
        return None

    def signal(self, e: HistoryEvent, now: datetime) -> None:
        run = self.run
        assert run is not None
        name = e.workflow_execution_signaled_event_attributes.signal_name
        raw = self.d.first(e)
        try:
            if name == "customer_replied":
                reply = core.CustomerReply.model_validate(raw)
                self.step(e, "input", name, now, actor=reply.actor, value=raw)
                run.customer_replied(reply)
            elif name == "incident":
                notice = core.IncidentNotice.model_validate(raw)
                self.step(e, "input", name, now, actor=notice.actor, summary=notice.kind, value=raw)
                run.incident(notice)
            else:
                self.step(e, "input", name, now, summary="a signal this workflow has no handler for", value=raw)
        except ValidationError as exc:
            self.differ(e, "signal", raw, f"not a {name} this code reads: {exc.errors()[0]['msg']}")

    def update(self, e: HistoryEvent, answers: dict[str, HistoryEvent], now: datetime) -> None:
        run = self.run
        assert run is not None
        a = e.workflow_execution_update_accepted_event_attributes
        name = a.accepted_request.input.name
        raw = self.d.first(e)
        answer_event = answers.get(a.accepted_request.meta.update_id or a.protocol_instance_id)
        try:
            if name == "incident_resolution":
                notice = core.IncidentNotice.model_validate(raw)
                actor = notice.actor
                run.incident(notice)
                computed: Any = core.resolved_by(run.state, notice.actor)
            elif name == "migrate_policy":
                move = core.MigratePolicy.model_validate(raw)
                actor = move.actor
                self.validate_migration(e, move)
                computed = run.migrate(move)
            elif name == "publish_figures":
                actor = str(raw)
                computed = run.publish_figures()
            elif name in core.ACTIONS:
                event = core.ACTIONS[name].model_validate(raw)
                actor = event.actor
                self.validate(e, event)
                computed = run.act(event)  # type: ignore[arg-type]
            else:
                self.differ(e, "update", name, "no such Update on this workflow")
                return
        except ValidationError as exc:
            self.differ(e, "update", raw, f"not a {name} this code reads: {exc.errors()[0]['msg']}")
            return
        except core.Rejected as exc:
            computed = f"rejected: {exc.message}"
        self.step(e, "input", name, now, actor=actor, value=raw)
        self.check.decisions += 1
        if answer_event is None:
            self.differ(e, "update_answer", "no answer in the same task", _json(computed))
            return
        if answer_event.workflow_execution_update_completed_event_attributes.outcome.HasField("failure"):
            recorded: Any = f"rejected: {self.d.failures.get(answer_event.event_id, '')}"
            if recorded != computed:
                self.differ(answer_event, "update_answer", recorded, computed)
            return
        recorded = self.d.first(answer_event)
        self.step(answer_event, "decision", f"{name} answer", now, value=recorded)
        computed_json = _json(computed)
        if isinstance(recorded, dict) and isinstance(computed_json, dict) and not recorded.keys() <= computed_json.keys():
            older = sorted(recorded.keys() - computed_json.keys())
            note = f"Update answers of an older shape: {', '.join(older)} not compared (the rest is)"
            if note not in self.check.notes:
                self.check.notes.append(note)
            recorded = {k: v for k, v in recorded.items() if k in computed_json}
        for diff in differing(recorded, computed_json)[:5]:
            self.differ(answer_event, "update_answer", diff, f"the core's answer to {name} by {actor}")

    def validate(self, e: HistoryEvent, event: Any) -> None:
        """The Update's validator, as the shell runs it (deadlines caught up on a copy): an action the rules refuse
        would never have been accepted."""
        self._validated(e, f"{event.type} by {event.actor}", lambda state, policy: core.check(state, event, policy))

    def validate_migration(self, e: HistoryEvent, move: core.MigratePolicy) -> None:
        """migrate_policy's validator, as the shell runs it: a move the rules refuse would never have been accepted."""
        self._validated(e, f"migrate_policy by {move.actor}",
                        lambda state, policy: core.check_migration(state, move.policy, move.from_version))

    def _validated(self, e: HistoryEvent, what: str, check: Callable[[core.TicketState, Policy], None]) -> None:
        run = self.run
        assert run is not None
        state = run.state
        if core.next_due(state, run.now, run.policy) is not None:
            state = core.catch_up(state, run.now, run.policy).state
        try:
            check(state, run.policy)
        except core.Rejected as exc:
            self.differ(e, "update", f"{what} accepted", f"rejected by the rules: {exc.message}")

    def other_input(self, e: HistoryEvent, now: datetime) -> bool:
        """An input other than a Signal: True when it is the loop's timer firing."""
        kind = attributes_name(e)
        a = getattr(e, kind)
        if kind == "timer_fired_event_attributes":
            self.step(e, "input", "timer fired", now, summary=f"timer {a.timer_id}")
            return True
        scheduled = getattr(a, "scheduled_event_id", None) if kind.startswith("activity_task_") else None
        if scheduled is not None and kind != "activity_task_started_event_attributes":
            expected = self.by_scheduled.pop(scheduled, None)
            failure = None
            result: Any = None
            if kind == "activity_task_completed_event_attributes":
                result = self.d.first(e)
            elif kind == "activity_task_canceled_event_attributes":
                failure = "canceled"
            else:
                failure = self.d.failures.get(e.event_id, "failed")
            name = expected.name if expected else "activity"
            self.step(e, "input", f"{name} result", now, summary=failure or "", value=result, answers=scheduled)
            if expected is not None and expected.on_result is not None:
                expected.on_result(result, failure, True)
            return False
        if kind in ("child_workflow_execution_started_event_attributes",
                    "start_child_workflow_execution_failed_event_attributes"):
            expected = self.by_scheduled.pop(a.initiated_event_id, None)
            self.step(e, "input", f"{expected.name if expected else 'child'} started", now,
                      summary="already started" if "failed" in kind else "", answers=a.initiated_event_id)
            if expected is not None and expected.on_result is not None:
                expected.on_result(None, None, True)
        return False

    # the commands of one task, each matched to a computed one
    def compare(self, commands: list[HistoryEvent], run: _Run) -> None:
        expected = list(run.expected)
        last_timer: _Expected | None = None
        for c in commands:
            kind = attributes_name(c)
            a = getattr(c, kind)
            if kind == "timer_started_event_attributes":
                recorded = a.start_to_fire_timeout.ToTimedelta()
                match = self.take(expected, "timer", "timer", None) or last_timer
                last_timer = match or last_timer
                self.check.decisions += 1
                fires = run.now + recorded
                self.step(c, "decision", "timer", run.now, summary=f"fires at {fires.isoformat()}" + (
                    f" ({match.why}, due {match.deadline.at.isoformat()})" if match and match.deadline else ""),
                    value={"duration": _json(recorded), "fires_at": fires.isoformat()})
                if match is None:
                    self.differ(c, "timer", f"{recorded} (fires at {fires.isoformat()})",
                                "no timer: the core has no deadline ahead")
                elif abs(match.value - recorded) > TOLERANCE:
                    assert match.deadline is not None
                    self.differ(c, "timer", f"{recorded} (fires at {fires.isoformat()})",
                                f"{match.value} (fires at {match.deadline.at.isoformat()}: {match.why})")
            elif kind == "activity_task_scheduled_event_attributes":
                self.command(c, expected, "activity", a.activity_type.name, self.d.first(c))
            elif kind == "start_child_workflow_execution_initiated_event_attributes":
                self.command(c, expected, "child", a.workflow_type.name, self.d.first(c))
            elif kind == "upsert_workflow_search_attributes_event_attributes":
                self.check.decisions += 1
                values = _search_attributes(a.search_attributes.indexed_fields)
                self.step(c, "decision", "search_attributes", run.now, value=values)
                computed = run.published_in_task or [run.published]  # (legacy order: one upsert per wake-up)
                for name, value in values.items():
                    if name in sa.BY_NAME and all(p.get(name) != value for p in computed):  # not the SDK's own
                        self.differ(c, "search_attributes", f"{name}={value!r}",
                                    f"{name}={computed[-1].get(name)!r}")
            elif kind in ("workflow_execution_completed_event_attributes",
                          "workflow_execution_continued_as_new_event_attributes"):
                which = "complete" if "completed" in kind else "continue_as_new"
                self.command(c, expected, which, "Ticket", self.d.first(c))
            elif kind == "workflow_execution_failed_event_attributes":
                self.check.decisions += 1
                recorded_failure = self.d.failures.get(c.event_id, "")
                match = self.take(expected, "fail", "Ticket", None)
                if match is None or match.value != recorded_failure:
                    self.differ(c, "completion", f"failed: {recorded_failure}",
                                f"failed: {match.value}" if match else "the rules do not fail this ticket here")
        for left in expected:
            if left.kind != "timer" or not any(c.HasField("timer_started_event_attributes") for c in commands):
                self.differ(commands[-1] if commands else None, left.kind,
                            "nothing recorded in this workflow task", f"{left.name}: {left.why}")

    def comparable(self, c: HistoryEvent, recorded: dict[str, Any], computed: dict[str, Any],
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The parts of a command's value that are decisions. An idempotency key names a command, and its format
        has changed over versions without a patch (replay does not compare it): a differing one is noted. A policy
        snapshot handed on (a follow-up ticket, the next run) is compared with the run's own, as recorded."""
        recorded, computed = dict(recorded), dict(computed)
        if "key" in recorded and recorded.get("key") != computed.get("key"):
            note = "idempotency keys in an older format (not compared)"
            if note not in self.check.notes:
                self.check.notes.append(note)
            recorded.pop("key")
        if "policy" in recorded:
            own = (self.d.first(self.h.events[0]) or {}).get("policy")
            handed = recorded.pop("policy")
            if handed != own and not self.current_policy(handed):  # after a migration: the snapshot in force
                self.differ(c, "policy", "a policy snapshot other than the run's own", "the run's own snapshot")
            computed.pop("policy", None)
        return recorded, computed

    def current_policy(self, handed: Any) -> bool:
        """Whether a snapshot handed on is the one the run holds now (a migrated ticket hands on its new policy)."""
        run = self.run
        try:
            return run is not None and Policy.model_validate(handed).version() == run.policy.version()
        except ValidationError:
            return False

    def take(self, expected: list[_Expected], kind: str, name: str, key: str | None) -> _Expected | None:
        same = [x for x in expected if x.kind == kind and x.name == name]
        pick = next((x for x in same if key is not None and x.key == key), same[0] if same else None)
        if pick is not None:
            expected.remove(pick)
        return pick

    def command(self, c: HistoryEvent, expected: list[_Expected], kind: str, name: str, recorded: Any) -> None:
        key = recorded.get("key") if isinstance(recorded, dict) else None
        match = self.take(expected, kind, name, key if isinstance(key, str) else None)
        self.check.decisions += 1
        self.step(c, "decision", name, self.run.now if self.run else None, summary=match.why if match else "",
                  value=recorded)
        if match is None:
            self.differ(c, kind, f"{name}: {_short(recorded)}", f"no {name} at this point")
            return
        if match.on_result is not None:
            self.by_scheduled[c.event_id] = match
        computed = _json(match.value)
        if isinstance(recorded, dict) and isinstance(computed, dict):
            recorded, computed = self.comparable(c, recorded, computed)
        for diff in differing(recorded, computed)[:5]:
            self.differ(c, kind if kind != "complete" else "final_state", diff, f"{name}: {match.why}")


async def check_decisions(history: WorkflowHistory, converter: DataConverter | None = None) -> DecisionCheck:
    """Recompute a run's decisions from its recorded inputs and compare (see the module's docstring)."""
    first = history.events[0] if history.events else None
    kind = first.workflow_execution_started_event_attributes.workflow_type.name if first is not None and \
        first.HasField("workflow_execution_started_event_attributes") else "unknown"
    if kind not in CHECKED_TYPES:
        return DecisionCheck(workflow_type=kind, checked=False,
                             not_checked=f"decisions not checked (type {kind}): only tickets' decisions are recomputed")
    decoded = await _decode(history, converter or data_converter())
    try:
        return _Walk(history, decoded).walk()
    except (ValidationError, ValueError, KeyError) as exc:
        return DecisionCheck(workflow_type=kind, checked=False, check_failed=True,
                             not_checked=f"decisions not checked: the recorded inputs could not be read ({exc})")
