"""The executive sponsorship program: one SponsorshipWorkflow per customer account (id `sponsorship-<account>`).

An account enters on an executive escalation (or a plan or tier the policy names), by signal-with-start from an
activity or the client (never from workflow code); its named sponsor checks in on a cadence (durable timers; the
sponsor is reminded; a check-in is an Update with notes); it ends after a quiet period without a new executive
escalation, or by an explicit exit with a reason. A later enrolment starts a new run under the same id.

`state` is what a sponsorship is, `rules` the pure program; `workflow` the durable shell (not imported here)."""

from workflows.sponsorship.state import (
    ENROL_SIGNAL,
    CheckIn,
    Enrolment,
    ExitRequest,
    SponsorshipInput,
    SponsorshipState,
    sponsorship_workflow_id,
)

__all__ = ["ENROL_SIGNAL", "CheckIn", "Enrolment", "ExitRequest", "SponsorshipInput", "SponsorshipState",
           "sponsorship_workflow_id"]
