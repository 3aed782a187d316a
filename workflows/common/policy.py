"""The escalation policy: the company's escalation document, made executable.

A pydantic model, validated as a whole (cross references included), hashed
into a version so a ticket carries the exact snapshot that governs it. Reading
the YAML file is I/O and lives in `starter.policy_file`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from workflows.common.calendar import BusinessCalendar
from workflows.common.vocabulary import (
    PRIORITIES,
    Channel,
    ClockName,
    Duration,
    Priority,
    Slug,
    Status,
    Trigger,
    format_duration,
)

Percent = Annotated[int, Field(ge=1, le=99)]
# Sets serialise sorted, so the policy hash is the same in every process.
TriggerSet = Annotated[frozenset[Trigger], PlainSerializer(sorted, return_type=list)]
StatusSet = Annotated[frozenset[Status], PlainSerializer(sorted, return_type=list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    id: Slug
    name: str
    # Where the tier clock starts: on entering the tier, or on the acknowledgement
    # (Tier 1 in the seed policy: 20 minutes *after acknowledging*).
    tier_clock_starts: Literal["entered", "acknowledged"] = "entered"
    notify: list[str] = Field(default_factory=list, description="who hears of an escalation into this tier")
    # False for tiers only a person may escalate into (executives): SLA breaches stop below them.
    automatic_entry: bool = True


class Department(_Strict):
    id: Slug
    name: str


class PrioritySla(_Strict):
    calendar: str
    acknowledge: Duration
    resolution: Duration
    customer_update: Duration | None = None
    tier: dict[str, Duration] = Field(default_factory=dict, description="maximum time at each tier")
    warn_at_percent: tuple[Percent, ...] = (75,)
    stakeholders: list[str] = Field(default_factory=list, description="notified when a ticket opens at this priority")


class ClockRules(_Strict):
    """Start/pause/stop conditions of one SLA clock, in the manner of ServiceNow and Jira SM."""

    starts_on: TriggerSet = frozenset()
    stops_on: TriggerSet = frozenset()
    restarts_on: TriggerSet = frozenset()
    resumes_on: TriggerSet = frozenset()
    paused_while: StatusSet = frozenset()
    # escalate: notify and move up a tier; notify: tell the breach recipients; remind: tell the assignee (the tier's
    # on-duty contacts when nobody is assigned); message_customer: remind, and also send the customer the status
    # update template (restarting the clocks a public reply restarts: the customer heard back).
    on_breach: Literal["escalate", "notify", "remind", "message_customer"] = "notify"


def _default_clocks() -> dict[ClockName, ClockRules]:
    T, S = Trigger, Status
    return {
        ClockName.acknowledge: ClockRules(
            starts_on=frozenset({T.opened}), stops_on=frozenset({T.acknowledged, T.resolved, T.closed}),
            paused_while=frozenset({S.waiting_on_customer}), on_breach="escalate",
        ),
        ClockName.tier: ClockRules(
            restarts_on=frozenset({T.escalated, T.reopened}), stops_on=frozenset({T.resolved, T.closed}),
            paused_while=frozenset({S.waiting_on_customer}), on_breach="escalate",
        ),
        ClockName.resolution: ClockRules(
            starts_on=frozenset({T.opened}), stops_on=frozenset({T.resolved, T.closed}),
            resumes_on=frozenset({T.reopened}), paused_while=frozenset({S.waiting_on_customer}),
        ),
        ClockName.customer_update: ClockRules(
            starts_on=frozenset({T.opened}),
            restarts_on=frozenset({T.acknowledged, T.public_reply, T.reopened}),
            stops_on=frozenset({T.resolved, T.closed}), paused_while=frozenset({S.waiting_on_customer}),
        ),
    }


class RoutingMatch(_Strict):
    """All given conditions must hold; within one, any listed value matches."""

    channels: list[Channel] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list, description="whole words or phrases in subject or description")
    tags: list[str] = Field(default_factory=list)
    plans: list[str] = Field(default_factory=list)


class RoutingAction(_Strict):
    department: str | None = None
    priority: Priority | None = None
    tier: str | None = None
    incident: Slug | None = Field(None, description="a service: a new matching ticket is linked to that service's "
                                                     "open incident, if there is one")


class RoutingRule(_Strict):
    name: str
    match: RoutingMatch = Field(default_factory=RoutingMatch, alias="when")
    set: RoutingAction = Field(default_factory=RoutingAction, alias="then")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RoutingDefault(_Strict):
    department: str
    priority: Priority = "P3"
    tier: str


class Routing(_Strict):
    rules: list[RoutingRule] = Field(default_factory=list)
    default: RoutingDefault


class ExecutiveEscalation(_Strict):
    keywords: list[str] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=lambda: ["executive_team", "csm", "account_manager"])
    # notify: flag the ticket and tell the executives; escalate: also move it to `tier` (default: the top tier)
    on_match: Literal["notify", "escalate"] = "notify"
    tier: str | None = None


class EscalationManagers(_Strict):
    """Which openings get an escalation manager: the managers on duty (the directory) take them in turn."""

    priorities: list[Priority] = Field(default_factory=lambda: list[Priority](["P1", "P2"]))
    pool: Slug = Field("escalation-managers", description="the rotation the turns are counted in")


class Surveys(_Strict):
    """The satisfaction survey a closed ticket's customer gets (a SurveyWorkflow per ticket)."""

    enabled: bool = True
    expires_after: Duration = timedelta(days=7)
    low_score: int = Field(2, ge=1, le=5, description="a score at or below this notifies `notify_low_score`")
    notify_low_score: list[str] = Field(default_factory=lambda: ["team_lead", "escalation_manager"])


class Sponsorship(_Strict):
    """The executive sponsorship program: which accounts enter it, how often the sponsor checks in, when it ends."""

    on_executive_escalation: bool = True
    plans: list[str] = Field(default_factory=list, description="an opening for an account on one of these plans "
                                                               "enrols it")
    tiers: list[str] = Field(default_factory=list, description="a ticket reaching one of these tiers enrols its "
                                                               "account")
    check_in_every: Duration = timedelta(days=14)
    exit_after_quiet: Duration = Field(timedelta(days=90), description="no new executive escalation for this long "
                                                                       "ends the sponsorship")


Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4"]
SEVERITIES: tuple[Severity, ...] = ("SEV1", "SEV2", "SEV3", "SEV4")


class Incidents(_Strict):
    """Outages that span many tickets: how often the commander must post an update, what resolving does."""

    update_every: dict[Severity, Duration] = Field(
        default_factory=lambda: dict[Severity, timedelta]({"SEV1": timedelta(minutes=30), "SEV2": timedelta(hours=1),
                                                          "SEV3": timedelta(hours=4)}),
        description="the commander is reminded when no update went out for this long (a severity not named: never)")
    resolve_linked: bool = Field(True, description="resolving the incident resolves every linked ticket still open "
                                                   "(false: only tell them)")
    pause_clocks: list[ClockName] = Field(
        default_factory=lambda: [ClockName.tier, ClockName.resolution],
        description="the linked tickets' clocks that pause while the incident is open (each resumes with its "
                    "remaining time on unlink or when the incident resolves)")


class Postmortems(_Strict):
    """Which resolutions end in a post-mortem, and its steps' due dates in business days (the priority's calendar)."""

    priorities: list[Priority] = Field(default_factory=lambda: list[Priority](["P1"]))
    tiers: list[str] = Field(default_factory=lambda: ["tier3", "executive"],
                             description="a ticket resolved at (or above) one of these tiers")
    severities: list[Severity] = Field(default_factory=lambda: list[Severity](["SEV1", "SEV2"]))
    review_within_days: int = Field(2, ge=1)
    root_cause_within_days: int = Field(5, ge=1)
    complete_within_days: int = Field(10, ge=1)
    action_item_days: int = Field(10, ge=1, description="an action item's default due date")
    remind_every: Duration = timedelta(days=1)
    calendar: str | None = Field(None, description="the business calendar of the due dates (default: P1's)")


class CatchUp(_Strict):
    """Deadlines missed while the worker was down (applied when it is back)."""

    new_tier_clock_starts: Literal["acted_at", "due_at"] = Field(
        "acted_at", description="acted_at: a tier entered by a late decision gets its full time from when the system "
        "acted (one escalation per catch-up); due_at: from when the deadline fell due (a catch-up may cascade)")
    late_after: Duration = Field(timedelta(seconds=10), description="a decision applied later than this after its "
                                 "due time counts as late (acted_at); within it, at its due time (a timer's usual lag)")


class Policy(_Strict):
    name: str = "default"
    tiers: list[Tier] = Field(min_length=1)
    departments: list[Department] = Field(min_length=1)
    calendars: dict[str, BusinessCalendar]
    priorities: dict[Priority, PrioritySla]
    clocks: dict[ClockName, ClockRules] = Field(default_factory=_default_clocks)
    routing: Routing
    executive: ExecutiveEscalation = Field(default_factory=ExecutiveEscalation)
    escalation_managers: EscalationManagers = Field(default_factory=EscalationManagers)
    surveys: Surveys = Field(default_factory=Surveys)
    sponsorship: Sponsorship = Field(default_factory=Sponsorship)
    incidents: Incidents = Field(default_factory=Incidents)
    postmortems: Postmortems = Field(default_factory=Postmortems)
    reopen_window: Duration = timedelta(days=3)
    escalation_notify: list[str] = Field(default_factory=lambda: ["escalation_manager"])
    breach_notify: list[str] = Field(default_factory=lambda: ["escalation_manager", "assignee"])
    # None: the default (acted_at); left out of the version hash then, so existing policies keep their version
    catch_up: CatchUp | None = None

    @model_validator(mode="before")
    @classmethod
    def _calendar_names(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("calendars"), dict):
            data = dict(data)
            data["calendars"] = {
                k: ({**v, "name": k} if isinstance(v, dict) else v) for k, v in data["calendars"].items()
            }
        return data

    @model_validator(mode="after")
    def _cross_references(self) -> Policy:
        tiers, depts = self.tier_ids(), self.department_ids()
        _unique("tiers", tiers)
        _unique("departments", depts)
        missing = [p for p in PRIORITIES if p not in self.priorities]
        if missing:
            raise ValueError(f"priorities: missing {', '.join(missing)}; every one of {', '.join(PRIORITIES)} needs SLA targets")
        for pid, sla in self.priorities.items():
            _known(f"priorities.{pid}.calendar", sla.calendar, list(self.calendars))
            for tier_id, limit in sla.tier.items():
                _known(f"priorities.{pid}.tier", tier_id, tiers)
                _positive(f"priorities.{pid}.tier.{tier_id}", limit)
            _positive(f"priorities.{pid}.acknowledge", sla.acknowledge)
            _positive(f"priorities.{pid}.resolution", sla.resolution)
            if sla.customer_update is not None:
                _positive(f"priorities.{pid}.customer_update", sla.customer_update)
        for i, rule in enumerate(self.routing.rules):
            where = f"routing.rules[{i}] ({rule.name})"
            if rule.set.department is not None:
                _known(f"{where}.then.department", rule.set.department, depts)
            if rule.set.tier is not None:
                _known(f"{where}.then.tier", rule.set.tier, tiers)
        for i, tier_id in enumerate(self.postmortems.tiers):
            _known(f"postmortems.tiers[{i}]", tier_id, tiers)
        if self.postmortems.calendar is not None:
            _known("postmortems.calendar", self.postmortems.calendar, list(self.calendars))
        for i, tier_id in enumerate(self.sponsorship.tiers):
            _known(f"sponsorship.tiers[{i}]", tier_id, tiers)
        _positive("sponsorship.check_in_every", self.sponsorship.check_in_every)
        _positive("sponsorship.exit_after_quiet", self.sponsorship.exit_after_quiet)
        _positive("surveys.expires_after", self.surveys.expires_after)
        if self.reopen_window < timedelta(0):
            raise ValueError(f"reopen_window: must not be negative, got {format_duration(self.reopen_window)}")
        if self.executive.tier is not None:
            _known("executive.tier", self.executive.tier, tiers)
        _known("routing.default.department", self.routing.default.department, depts)
        _known("routing.default.tier", self.routing.default.tier, tiers)
        return self

    # ----- look-ups ---------------------------------------------------------

    def tier_ids(self) -> list[str]:
        return [t.id for t in self.tiers]

    def department_ids(self) -> list[str]:
        return [d.id for d in self.departments]

    def tier_index(self, tier_id: str) -> int:
        return self.tier_ids().index(tier_id)

    def tier(self, tier_id: str) -> Tier:
        return self.tiers[self.tier_index(tier_id)]

    def next_tier(self, tier_id: str) -> str | None:
        i = self.tier_index(tier_id)
        return self.tiers[i + 1].id if i + 1 < len(self.tiers) else None

    def sla(self, priority: str) -> PrioritySla:
        return self.priorities[priority]  # type: ignore[index]

    def calendar_for(self, priority: str) -> BusinessCalendar:
        return self.calendars[self.sla(priority).calendar]

    def catch_up_rule(self) -> CatchUp:
        return self.catch_up or CatchUp()

    def version(self) -> str:
        """Name plus a hash of the canonical content: two equal policies share it."""
        return self._version

    @cached_property
    def _version(self) -> str:
        left_out = {"catch_up"} if self.catch_up is None else None  # the default: existing policies keep their version
        digest = hashlib.sha256(self.model_dump_json(by_alias=True, exclude=left_out).encode()).hexdigest()[:12]
        return f"{self.name}@{digest}"


_INTERNED: dict[str, Policy] = {}


def intern_policy(policy: Policy) -> Policy:
    """One shared (immutable) object per policy version: thousands of open tickets carry the same snapshot.

    Deterministic: the object returned is equal in content to the one given."""
    if len(_INTERNED) > 64:  # policy versions are few; never grow without bound
        _INTERNED.clear()
    return _INTERNED.setdefault(policy.version(), policy)


_BY_CONTENT: dict[str, Policy] = {}


def shared_policy(raw: Any, validate: Callable[[Any], Policy]) -> Policy:
    """Validate a policy snapshot once per distinct content, then hand out the interned object.

    Every ticket's input carries its policy snapshot, and a worker decodes it for each ticket it starts or
    replays: validating it (and hashing its version) again every time was most of the cost of decoding the
    input. Only plain JSON content is cached (what a payload decodes to), keyed by its canonical text, so
    equal keys mean equal input and hence an equal result."""
    if not isinstance(raw, dict):
        return validate(raw)
    try:
        key = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not plain JSON (a Python caller's dates, say): no caching
        return validate(raw)
    policy = _BY_CONTENT.get(key)
    if policy is None:
        policy = intern_policy(validate(raw))
        if len(_BY_CONTENT) > 64:  # versions are few; never grow without bound
            _BY_CONTENT.clear()
        _BY_CONTENT[key] = policy
    return policy


def _unique(where: str, ids: list[str]) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{where}: duplicate id {', '.join(dupes)}")


def _known(where: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{where}: unknown value {value!r}; allowed: {', '.join(allowed)}")


def _positive(where: str, value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{where}: duration must be positive, got {format_duration(value)}")
