"""Ordered routing rules: the first rule that matches decides; no later rule runs."""

from __future__ import annotations

from pydantic import BaseModel

from workflows.common.policy import Policy, RoutingMatch
from workflows.common.vocabulary import contains_keyword
from workflows.ticket.state import Ticket


class RoutingDecision(BaseModel):
    rule: str | None  # None: the default route
    department: str
    priority: str
    tier: str
    executive_keywords: list[str] = []
    routed_priority: str | None = None  # what the rule (or the default route) sets, when the caller's priority won
    incident: str | None = None  # the service whose open incident a new ticket joins (the client links it)




def matches(m: RoutingMatch, ticket: Ticket) -> bool:
    text = ticket.text()
    tags = {t.lower() for t in ticket.tags}
    return (
        (not m.channels or ticket.channel in m.channels)
        and (not m.keywords or any(contains_keyword(text, k) for k in m.keywords))
        and (not m.tags or any(t.lower() in tags for t in m.tags))
        and (not m.plans or ticket.customer_plan.lower() in {p.lower() for p in m.plans})
    )


def route(ticket: Ticket, policy: Policy) -> RoutingDecision:
    """Default route, overridden by the first matching rule; an explicit ticket priority wins."""
    d = policy.routing.default
    rule_name, department, priority, tier, incident = None, d.department, d.priority, d.tier, None
    for rule in policy.routing.rules:
        if matches(rule.match, ticket):
            rule_name = rule.name
            department = rule.set.department or department
            priority = rule.set.priority or priority
            tier = rule.set.tier or tier
            incident = rule.set.incident
            break
    return RoutingDecision(
        rule=rule_name,
        department=department,
        priority=ticket.priority or priority,
        routed_priority=priority if ticket.priority else None,
        tier=tier,
        executive_keywords=[k for k in policy.executive.keywords if contains_keyword(ticket.text(), k)],
        incident=incident,
    )
