"""Real delivery end to end on the dev server: a P1 nobody acts on, with a real SMTP server and a real HTTP receiver
on loopback. Stakeholders, the escalation manager and the customer get mails with the rendered text, the tier lead's
signed webhook verifies with the library, a 410 is final and shows on the ticket, a 503 is retried."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from starter.devstack.mailserver import MailServer
from starter.runtime.settings import Settings
from starter.runtime.temporal import activities, build_worker
from tests.conftest import TemporalStack
from tests.support.receivers import HttpReceiver, http_receiver
from tests.support.workflows import policy_with, start_ticket, ticket
from workflows import ticket as core
from workflows.ticket.workflow import TicketWorkflow

SECRET = "whsec_" + base64.b64encode(b"e2e-delivery-secret-of-32-bytes!").decode()


def directory_yaml(receiver: HttpReceiver) -> str:
    return f"""
people:
  - {{id: mia, name: Mia Novak, email: mia@example.com, time_zone: Europe/Berlin}}
  - {{id: ana, name: Ana Lima, email: ana@example.com, time_zone: Europe/Lisbon}}
  - {{id: tom, name: Tom Berg, email: tom@example.com}}
  - {{id: eva, name: Eva Stone, email: eva@example.com}}
  - {{id: sam, name: Sam Reed, webhook: "{receiver.url}/sam"}}
  - {{id: kim, name: Kim Olsen, chat_webhook: "{receiver.url}/kim"}}
teams:
  escalation_managers: {{members: [mia]}}
  executive_team: {{members: [eva]}}
  tier2_lead: {{members: [sam]}}
  "tier:tier1": {{members: [kim]}}
accounts:
  cust-1001: {{plan: enterprise, csm: ana, account_manager: tom, time_zone: Europe/Berlin}}
"""


def subject(mail: Any) -> str:
    """The subject as a reader sees it (a long one is folded over lines on the wire)."""
    return " ".join(str(mail["Subject"]).split())


async def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.2)


async def test_a_p1_nobody_acts_on_reaches_every_stakeholder_for_real(temporal_stack: TemporalStack,
                                                                      tmp_path: Path) -> None:
    mail = MailServer(tmp_path / "mail").start()
    with http_receiver() as receiver:
        receiver.answer("/kim", *[410] * 20)  # the tier's chat hook is gone: final, for every message
        receiver.answer("/sam", 503)  # the tier lead's tool is down once: retried
        (tmp_path / "directory.yaml").write_text(directory_yaml(receiver))
        s = Settings(escalation_directory=str(tmp_path / "directory.yaml"), escalation_smtp_url=mail.url,
                     escalation_webhook_secret=SECRET, escalation_outbox=str(tmp_path / "outbox.jsonl"),
                     escalation_mail_domain="escalation.test")
        tq = f"delivery-{uuid.uuid4().hex[:8]}"
        try:
            async with build_worker(temporal_stack.client, tq, activities=activities(s)):
                t = ticket(datetime.now(UTC), customer_id="cust-1001", customer_contact="buyer@example.com",
                           subject="Checkout down for all EU customers")
                handle = await start_ticket(temporal_stack.client, tq, t, policy_with(acknowledge="3s"))

                def to(address: str) -> list[str]:
                    return [subject(m) for m in mail.handler.mails() if m["To"] == address]

                await eventually(lambda: bool(to("mia@example.com")) and len(receiver.at("/sam")) >= 2)
                await eventually(lambda: any("breached" in x for x in to("mia@example.com")))
                state: core.TicketState = await handle.query(TicketWorkflow.current_state)
        finally:
            mail.stop()

    # The customer: the opening confirmation, rendered, at the ticket's contact, in the ticket's thread.
    [confirmation] = [m for m in mail.handler.mails() if m["To"] == "buyer@example.com"]
    assert subject(confirmation) == f"We received your request: {t.subject} [{t.id}]"
    assert confirmation["In-Reply-To"] == f"<ticket-{t.id}@escalation.test>"
    assert f"opened ticket {t.id}" in confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # The stakeholders of a P1 opening (csm, account manager, executives) by mail.
    for who in ("ana@example.com", "tom@example.com", "eva@example.com"):
        assert to(who) == [f"[{t.id}] P1 ticket opened: {t.subject}"], who
    # The escalation manager: assigned by the rotation, told of the escalation and of the breach.
    assert state.escalation_manager == "mia"
    assert any(x.startswith(f"[{t.id}] Escalated to") for x in to("mia@example.com"))
    # The tier lead's signed webhook: refused once (503), retried, the same key each time, verified by the library.
    hooks = receiver.at("/sam")
    assert len({h.headers["webhook-id"] for h in hooks}) == 1 and len(hooks) == 2
    assert Webhook(SECRET).verify(hooks[-1].body, hooks[-1].headers)["kind"] == "escalation"
    # The gone chat hook: final, on the ticket; nothing else failed.
    failed = [e for e in state.timeline if e.action == "notification_failed"]
    assert failed and all("kim (chat)" in e.summary and "410" in e.reason for e in failed)
    assert len(receiver.at("/kim")) == len(failed), "a final refusal is recorded once per message, not retried"
    # Who was told is in the timeline by id, never by address.
    told = [e for e in state.timeline if e.action == "notified"]
    assert any("ana (email)" in e.summary for e in told)
    assert not any("@" in e.summary + e.reason for e in state.timeline if e.actor == "system:notify")
