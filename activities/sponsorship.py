"""The `enrol_sponsorship` activity: the account enters (or stays in) the executive sponsorship program.

Signal-with-start of the account's SponsorshipWorkflow: started if none runs (a new run after an exit: the id reuse
policy allows it), signalled if one does. The enrolment carries the ticket's effect key, so a retried activity's
second signal is recorded once. The sponsor's name comes from the directory (injected: the worker builds it once)."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from temporalio import activity

from workflows.sponsorship import ENROL_SIGNAL, Enrolment, SponsorshipInput, sponsorship_workflow_id
from workflows.sponsorship.workflow import SPONSORSHIP_ID_REUSE, SponsorshipWorkflow
from workflows.ticket import EnrolSponsorship

log = structlog.get_logger("escalation.sponsorship")

# The account's executive sponsor (a person id of the directory), if one is named.
SponsorOf = Callable[[str], str | None]


class Sponsorships:
    def __init__(self, sponsor_of: SponsorOf) -> None:
        self.sponsor_of = sponsor_of

    @activity.defn(name="enrol_sponsorship")
    async def enrol(self, e: EnrolSponsorship) -> str | None:
        sponsor = self.sponsor_of(e.account_id)
        enrolment = Enrolment(key=e.key, account_id=e.account_id, criterion=e.criterion, reason=e.reason, by=e.by,
                              at=e.at, ticket_id=e.ticket_id, ticket_subject=e.ticket_subject, priority=e.priority,
                              tier=e.tier, department=e.department, sponsor=sponsor)
        await activity.client().start_workflow(
            SponsorshipWorkflow.run, SponsorshipInput(account_id=e.account_id, check_in_every=e.check_in_every,
                                                      exit_after_quiet=e.exit_after_quiet),
            id=sponsorship_workflow_id(e.account_id), task_queue=activity.info().task_queue,
            start_signal=ENROL_SIGNAL, start_signal_args=[enrolment], id_reuse_policy=SPONSORSHIP_ID_REUSE)
        log.info("sponsorship enrolment", ticket_id=e.ticket_id, account_id=e.account_id, criterion=e.criterion,
                 sponsor=sponsor)
        return sponsor
