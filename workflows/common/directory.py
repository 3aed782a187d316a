"""The directory: who the role names of the policy are, and how each person is reached.

People (name, email, chat webhook, signed-webhook URL, time zone), teams (a role name such as `executive_team`,
`escalation_managers`, `tier:tier2` or `department:billing`, with members and optional on-duty windows in a time
zone) and customer accounts (opaque customer id -> plan, CSM, account manager, executive sponsor, team leads per
tier and department). Pure: loading the YAML file is I/O and lives in `starter.runtime.directory_file`; resolving
runs in the preparing activity, at the instant a notification is prepared, so a directory edit applies to
running tickets without touching their history.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from workflows.common.delivery import DeliveryChannel

PersonId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$", max_length=320)]
# Role names an account answers (the rest are teams, or the ticket's own people).
ACCOUNT_ROLES = ("csm", "account_manager", "executive_sponsor")
TICKET_ROLES = ("customer", "assignee", "escalation_manager", "team_lead")
PERSON = "person:"  # a role naming one person of the directory: person:<id>


def _zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Berlin)") from None
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    id: PersonId
    name: str
    email: Email | None = None
    chat_webhook: Url | None = None
    webhook: Url | None = Field(None, description="a signed (Standard Webhooks) endpoint of this person's tool")
    time_zone: str = "UTC"

    _tz = field_validator("time_zone")(classmethod(lambda cls, v: _zone(v)))

    def channels(self) -> list[tuple[DeliveryChannel, str]]:
        """Every way this person is reached, in a stable order."""
        out: list[tuple[DeliveryChannel, str]] = []
        if self.email:
            out.append((DeliveryChannel.email, self.email))
        if self.chat_webhook:
            out.append((DeliveryChannel.chat, self.chat_webhook))
        if self.webhook:
            out.append((DeliveryChannel.webhook, self.webhook))
        return out


class OnDuty(_Strict):
    """A weekly window: on these days from `start` to `end` (local time in `time_zone`; end before start: overnight)."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: time = time(0, 0)
    end: time = time(23, 59, 59)
    time_zone: str = "UTC"

    _tz = field_validator("time_zone")(classmethod(lambda cls, v: _zone(v)))

    def covers(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.time_zone))
        day, t = WEEKDAYS[local.weekday()], local.time()
        if self.start <= self.end:
            return day in self.days and self.start <= t < self.end
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]  # an overnight window began the day before
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


class Team(_Strict):
    members: list[PersonId] = Field(min_length=1)
    on_duty: list[OnDuty] = Field(default_factory=list, description="empty: always on duty")

    def on_duty_at(self, at: datetime) -> list[str]:
        if not self.on_duty or any(w.covers(at) for w in self.on_duty):
            return list(self.members)
        return []


class Account(_Strict):
    plan: str = "standard"
    csm: PersonId | None = None
    account_manager: PersonId | None = None
    executive_sponsor: PersonId | None = None
    team_leads: dict[str, PersonId] = Field(default_factory=dict, description="tier or department id -> person")
    time_zone: str | None = Field(None, description="the customer's, for due times in their messages")

    _tz = field_validator("time_zone")(classmethod(lambda cls, v: v if v is None else _zone(v)))


class Directory(_Strict):
    people: list[Person] = Field(default_factory=list)
    teams: dict[str, Team] = Field(default_factory=dict)
    accounts: dict[str, Account] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_people(self) -> Directory:
        known = {p.id for p in self.people}
        if len(known) != len(self.people):
            dup = sorted({p.id for p in self.people if [q.id for q in self.people].count(p.id) > 1})
            raise ValueError(f"people: duplicate id(s) {', '.join(dup)}")
        problems = [f"teams.{name}.members: unknown person {m!r}" for name, t in self.teams.items()
                    for m in t.members if m not in known]
        for cid, a in self.accounts.items():
            for role in ACCOUNT_ROLES:
                who = getattr(a, role)
                if who is not None and who not in known:
                    problems.append(f"accounts.{cid}.{role}: unknown person {who!r}")
            problems += [f"accounts.{cid}.team_leads.{k}: unknown person {v!r}" for k, v in a.team_leads.items()
                         if v not in known]
        if problems:
            raise ValueError("; ".join(problems) + f" (people: {', '.join(sorted(known)) or 'none'})")
        return self

    def person(self, pid: str) -> Person | None:
        return next((p for p in self.people if p.id == pid), None)

    def knows_role(self, role: str) -> bool:
        """Whether a policy's role name means something here (a team, an account role, a ticket's own people);
        `tier:X` and `department:X` are always known (nobody on duty is recorded, not an error)."""
        if role.startswith(PERSON):
            return self.person(role.removeprefix(PERSON)) is not None
        return (role in self.teams or role in ACCOUNT_ROLES or role in TICKET_ROLES
                or role.startswith(("tier:", "department:")))


class Audience(BaseModel):
    """Who a role name means for one ticket at one instant: person ids (possibly none) and why."""

    role: str
    people: list[str]
    note: str = ""


def resolve(d: Directory, role: str, *, customer_id: str, tier: str, department: str, at: datetime,
            assignee: str | None = None, escalation_manager: str | None = None) -> Audience:
    """The people a role name means for this ticket now. `customer` is not a person of the directory (the ticket
    carries its contact) and resolves to nobody here."""
    account = d.accounts.get(customer_id)
    if role.startswith(PERSON):  # one named person (e.g. the sponsor a sponsorship recorded at enrolment)
        pid = role.removeprefix(PERSON)
        return Audience(role=role, people=[pid] if d.person(pid) else [], note="" if d.person(pid) else
                        f"{pid} not in directory")
    if role in ACCOUNT_ROLES:
        who = getattr(account, role) if account else None
        return Audience(role=role, people=[who] if who else [], note="" if who else f"account {customer_id}: no {role}")
    if role == "team_lead":
        lead = account and (account.team_leads.get(tier) or account.team_leads.get(department))
        return Audience(role=role, people=[lead] if lead else [], note="" if lead else "no team lead for the account")
    if role == "assignee":
        person = _person_id(assignee)
        if person and d.person(person):
            return Audience(role=role, people=[person])
        return Audience(role=role, people=[], note="nobody assigned" if not assignee else f"{assignee} not in directory")
    if role == "escalation_manager" and escalation_manager and d.person(escalation_manager):
        return Audience(role=role, people=[escalation_manager])
    team = d.teams.get("escalation_managers" if role == "escalation_manager" else role)
    if team is None:
        return Audience(role=role, people=[], note=f"no team {role!r} in the directory")
    people = team.on_duty_at(at)
    return Audience(role=role, people=people, note="" if people else f"nobody of {role} on duty")


def _person_id(actor: str | None) -> str | None:
    """An assignee is an agent id, `agent:mia` or `mia`: the directory's person id is the part after the colon."""
    return actor.split(":", 1)[-1] if actor else None
