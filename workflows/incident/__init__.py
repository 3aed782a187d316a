"""Incidents: one outage, many tickets, one communication plan. One IncidentWorkflow per affected service (id
`incident-<service>`: at most one open incident per service, found from the service alone; a later incident of the
same service is a new run of that id). Linked tickets hear of it through their own workflows (Signals from the
incident's fan-out activity), so each ticket keeps its own clocks and history.

`state` is what an incident is, `rules` the pure incident; `workflow` the durable shell (not imported here)."""

from workflows.incident.state import (
    FanOut,
    FanOutResult,
    IncidentInput,
    IncidentState,
    IncidentUpdate,
    LinkRequest,
    PostUpdate,
    ResolveIncident,
    incident_workflow_id,
)

__all__ = ["FanOut", "FanOutResult", "IncidentInput", "IncidentState", "IncidentUpdate", "LinkRequest", "PostUpdate",
           "ResolveIncident", "incident_workflow_id"]
