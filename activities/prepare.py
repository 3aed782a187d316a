"""The `prepare_notification` activity: who and what, decided once.

A ticket's notification names roles; this step resolves them through the directory at that instant and renders
each recipient's message per channel from the templates. Its result (the messages, with their text) is recorded
in the history, and each message is then delivered on its own under its own key: a retry resends exactly the
recorded text, so an edit of the directory or a template between two attempts never sends different content
under one key. The directory and the templates are read again when their files change.

Templates (the help desks' "macros" use the same engine): `<kind>.<channel>.<txt|html>`, else `<kind>.<txt|html>`,
else `default.<txt|html>`; the subject from `<kind>.subject.txt`, else `default.subject.txt`. Rendered in Jinja's
sandbox with undefined variables as errors; `.html` templates escape what they insert.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from temporalio import activity

from workflows.common.delivery import DeliveryChannel, Message, Prepared, PrepareInput, message_key
from workflows.common.directory import Directory, Person, resolve
from workflows.survey.links import sign
from workflows.survey.state import survey_workflow_id

log = structlog.get_logger("escalation.prepare")
CUSTOMER = "customer"


class Templates:
    """The templates folder, rendered in a sandbox; unknown variables are errors (policy check renders them all)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = SandboxedEnvironment(loader=FileSystemLoader(folder), undefined=StrictUndefined,
                                        autoescape=select_autoescape(["html"]), keep_trailing_newline=False,
                                        auto_reload=True)  # compiled once; an edited template (mtime) is read again

    def names(self) -> list[str]:
        return sorted(p.name for p in self.folder.glob("*.txt")) + sorted(p.name for p in self.folder.glob("*.html"))

    def render(self, candidates: list[str], variables: dict[str, Any]) -> str | None:
        for name in candidates:
            try:
                template = self.env.get_template(name)
            except TemplateNotFound:
                continue
            return template.render(**variables).strip()
        return None

    def message_parts(self, kind: str, channel: DeliveryChannel, variables: dict[str, Any],
                      customer: bool = False) -> tuple[str, str, str | None]:
        """Subject, text and (email only) HTML of one message. A customer's mail has an HTML part only where its
        kind has one: the default HTML shows the team's own view (tier, department, the API's link)."""
        subject = self.render([f"{kind}.subject.txt", "default.subject.txt"], variables) or variables["notification"]["subject"]
        text = self.render([f"{kind}.{channel.value}.txt", f"{kind}.txt", "default.txt"], variables)
        html = None
        if channel == DeliveryChannel.email:
            html = self.render([f"{kind}.{channel.value}.html", f"{kind}.html", *([] if customer else ["default.html"])],
                               variables)
        return subject, text or variables["notification"]["body"], html


def variables(n: PrepareInput, recipient_id: str, name: str, zone: str, link: str,
              survey_link: str = "") -> dict[str, Any]:
    """What a template may use. Due times are shown in the recipient's time zone."""
    tz = ZoneInfo(zone)
    due = n.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if n.due_at else None
    survey_until = n.survey_expires_at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if n.survey_expires_at else ""
    return {
        "ticket": {"id": n.ticket_id, "subject": n.ticket_subject, "tier": n.tier, "department": n.department,
                   "priority": n.priority, "status": n.status, "customer_id": n.customer_id, "link": link},
        "notification": {"kind": n.kind, "subject": n.subject, "body": n.body},
        "recipient": {"id": recipient_id, "name": name, "time_zone": zone},
        "due": due, "agent": n.assignee or "", "summary": n.body, "link": link,
        "survey": {"link": survey_link, "expires": survey_until},
    }


def sample_input() -> PrepareInput:
    """A ticket with every variable set: `policy check` renders every template against it."""
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    return PrepareInput(key="ticket-SAMPLE-1:2:breach", kind="breach", ticket_id="SAMPLE-1", roles=["customer"],
                        subject="SLA breached (acknowledge): Streaming app crashes", body="Due 2026-11-25T10:00Z",
                        priority="P1", tier="tier2", department="general", status="open", due_at=now,
                        ticket_subject="Streaming app crashes", customer_id="cust-1001",
                        customer_contact="customer@example.com", assignee="agent:mia", escalation_manager="mia", at=now,
                        survey_expires_at=now)


def render_all(templates: Templates, public_url: str = "http://localhost:8000") -> list[str]:
    """Render every template against the sample ticket; the problems, naming template and variable."""
    problems = []
    v = variables(sample_input(), "mia", "Mia Novak", "Europe/Berlin", f"{public_url}/v1/tickets/SAMPLE-1",
                  f"{public_url}/v1/surveys/TOKEN")
    for name in templates.names():
        try:
            templates.env.get_template(name).render(**v)
        except Exception as exc:  # an undefined variable, a syntax error, a sandbox refusal
            problems.append(f"{templates.folder / name}: {type(exc).__name__}: {exc}")
    return problems


class Preparer:
    """The activity, bound to the directory file and the templates folder (read again when they change)."""

    def __init__(self, directory_file: Path, load_directory: Callable[[Path], Directory], templates_dir: Path,
                 public_url: str, mail_domain: str, survey_secret: Callable[[], str] | None = None,
                 customer_channels: dict[str, str] | None = None) -> None:
        self.survey_secret = survey_secret
        self.customer_channels = customer_channels or {}  # contact scheme (tel, twitter, ...) -> integration URL
        self.directory_file = directory_file
        self.load_directory = load_directory
        self.templates = Templates(templates_dir)
        self.public_url = public_url.rstrip("/")
        self.mail_domain = mail_domain
        self._directory: tuple[float, Directory] | None = None

    def directory(self) -> Directory:
        if not self.directory_file.exists():
            return Directory()
        mtime = self.directory_file.stat().st_mtime
        if self._directory is None or self._directory[0] != mtime:
            self._directory = (mtime, self.load_directory(self.directory_file))
        return self._directory[1]

    @activity.defn(name="prepare_notification")
    async def prepare(self, n: PrepareInput) -> Prepared:
        prepared = self.prepare_now(n)
        log.info("notification prepared", key=n.key, ticket_id=n.ticket_id, kind=n.kind,
                 recipients=sorted({f"{m.recipient_id}/{m.channel.value}" for m in prepared.messages}),
                 unreached=prepared.unreached)
        return prepared

    def prepare_now(self, n: PrepareInput) -> Prepared:
        d = self.directory()
        link = f"{self.public_url}/v1/tickets/{n.ticket_id}"
        messages: list[Message] = []
        unreached: list[str] = []
        people: dict[str, Person] = {}
        for role in n.roles:
            if role == CUSTOMER:
                messages += self._to_customer(n, d, link, unreached)
                continue
            audience = resolve(d, role, customer_id=n.customer_id, tier=n.tier, department=n.department, at=n.at,
                               assignee=n.assignee, escalation_manager=n.escalation_manager)
            found = [p for pid in audience.people if (p := d.person(pid)) is not None]
            if not found:
                unreached.append(f"{role}: {audience.note or 'nobody'}")
                messages.append(self._message(n, f"role:{role}", role, "UTC", DeliveryChannel.outbox, "", link))
            people.update({p.id: p for p in found})
        for p in people.values():
            channels = p.channels() or [(DeliveryChannel.outbox, "")]
            messages += [self._message(n, p.id, p.name, p.time_zone, ch, addr, link) for ch, addr in channels]
        return Prepared(messages=messages, unreached=unreached)

    def _to_customer(self, n: PrepareInput, d: Directory, link: str, unreached: list[str]) -> list[Message]:
        account = d.accounts.get(n.customer_id)
        zone = (account.time_zone if account else None) or "UTC"
        contact = n.customer_contact
        if contact and "@" in contact and ":" not in contact:
            return [self._message(n, CUSTOMER, "", zone, DeliveryChannel.email, contact, link)]
        scheme = contact.split(":", 1)[0] if contact and ":" in contact else ""
        if contact and scheme in self.customer_channels:  # the channel's integration posts it (SMS, social, ...)
            m = self._message(n, CUSTOMER, "", zone, DeliveryChannel.webhook, self.customer_channels[scheme], link)
            return [m.model_copy(update={"to": contact})]
        # A handle on a channel with no integration configured: the outbox keeps the message for an agent.
        unreached.append("customer: " + (f"no integration for {scheme!r} contacts (ESCALATION_CUSTOMER_CHANNELS); "
                                         "kept for an agent" if contact else "no contact on the ticket"))
        return [self._message(n, CUSTOMER, "", zone, DeliveryChannel.outbox, "", link)]

    def _survey_link(self, n: PrepareInput) -> str:
        """A survey's signed link (the secret stays in this process; the link is in the recorded message)."""
        if n.survey_expires_at is None or self.survey_secret is None:
            return ""
        token = sign(self.survey_secret(), survey_workflow_id(n.ticket_id), n.survey_expires_at)
        return f"{self.public_url}/v1/surveys/{token}"

    def _message(self, n: PrepareInput, rid: str, name: str, zone: str, channel: DeliveryChannel, address: str,
                 link: str) -> Message:
        v = variables(n, rid, name, zone, link, self._survey_link(n) if rid == CUSTOMER else "")
        render_as = DeliveryChannel.email if channel == DeliveryChannel.outbox else channel
        subject, text, html = self.templates.message_parts(n.kind, render_as, v, customer=rid == CUSTOMER)
        return Message(key=message_key(n.key, rid, channel), notification_key=n.key, ticket_id=n.ticket_id,
                       kind=n.kind, channel=channel, recipient_id=rid, address=address, subject=subject, text=text,
                       html=html if channel == DeliveryChannel.email else None,
                       thread_id=(n.thread_ref or f"<ticket-{n.ticket_id}@{self.mail_domain}>") if rid == CUSTOMER
                       else None,
                       due_at=n.due_at)
