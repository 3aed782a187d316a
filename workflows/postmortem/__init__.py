"""Post-mortems: a severe escalation (or incident) ends in one. One PostmortemWorkflow per ticket or incident (id
`postmortem-ticket-<id>`, `postmortem-incident-<service>-<declared>`), started as an abandoned child when its subject
is resolved, so it outlives it. Steps with due dates in business days, reminders until done, overdue steps told to
the escalation managers, action items with their own due dates; completion publishes a knowledge-base article.

`state` is what a post-mortem is, `rules` the pure steps; `workflow` the durable shell (not imported here)."""

from workflows.postmortem.state import (
    ActionItemIn,
    AssignIn,
    CompleteIn,
    PostmortemInput,
    PostmortemState,
    ReviewIn,
    RootCauseIn,
    postmortem_workflow_id,
)

__all__ = ["ActionItemIn", "AssignIn", "CompleteIn", "PostmortemInput", "PostmortemState", "ReviewIn", "RootCauseIn",
           "postmortem_workflow_id"]
