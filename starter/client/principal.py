"""Who acts: a role and, for scoped roles, the tiers and departments it may see.

The client checks every rule that depends on who is acting (scope, the executive tier) against a
Principal, so the API (the token's principal), the CLI (an operator) and the console get the same rules.
Free of Temporal and of HTTP: the security layer builds Principals from tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    intake = "intake"
    agent = "agent"
    supervisor = "supervisor"
    auditor = "auditor"
    admin = "admin"
    operator = "operator"  # whoever runs the CLI next to Temporal: every permission (see README, "Roles")
    monitoring = "monitoring"  # a monitoring system: declares incidents (for its services) and reads them, no more


class Permission(StrEnum):
    open = "open"  # POST /v1/tickets
    intake = "intake"  # POST /v1/intake/{channel}
    read = "read"  # GET a ticket, its timeline
    list = "list"  # GET /v1/tickets
    history = "history"  # GET the Temporal event history
    act = "act"  # agent actions
    customer_reply = "customer_reply"  # relay a customer's message
    assign = "assign"
    escalate_executive = "escalate_executive"  # escalate into a tier only a person may enter (executives)
    declare_incident = "declare_incident"  # POST /v1/incidents
    read_incident = "read_incident"  # GET an incident, its linked tickets
    policy_migrate = "policy_migrate"  # move open tickets to a new policy version (admins and the CLI's operator)
    decode_payloads = "decode_payloads"  # the codec endpoint: encrypted history payloads in clear (the Web UI)
    read_contact = "read_contact"  # a ticket's customer contact (personal data) in the console: supervisors, admins


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.intake: frozenset({P.open, P.intake, P.customer_reply}),
    Role.agent: frozenset({P.read, P.list, P.act, P.customer_reply, P.read_incident}),
    Role.supervisor: frozenset({P.read, P.list, P.act, P.customer_reply, P.assign, P.escalate_executive,
                                P.declare_incident, P.read_incident, P.read_contact}),
    Role.auditor: frozenset({P.read, P.list, P.history, P.read_incident, P.decode_payloads}),
    Role.monitoring: frozenset({P.declare_incident, P.read_incident}),
    Role.admin: frozenset(Permission),
    Role.operator: frozenset(Permission),
}
SCOPED_ROLES = frozenset({Role.agent})


@dataclass(frozen=True)
class Principal:
    """Who is calling: from the token (API) or the operator's environment (CLI), never from a request body."""

    name: str
    role: Role
    tiers: frozenset[str] | None = None  # None: every tier
    departments: frozenset[str] | None = None  # None: every department
    services: frozenset[str] | None = None  # a monitoring token's services (None: every service)

    @classmethod
    def operator(cls, actor: str) -> Principal:
        """The CLI's principal: every permission, recorded under `actor` as given (e.g. `cli:alice`)."""
        return cls(name=actor, role=Role.operator)

    @property
    def actor(self) -> str:
        """The name recorded in timelines: `<role>:<name>`, or the operator's actor as given."""
        return self.name if self.role is Role.operator else f"{self.role.value}:{self.name}"

    @property
    def scoped(self) -> bool:
        return self.tiers is not None or self.departments is not None

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def is_person(self, person: str) -> bool:
        """Whether this caller is `person` (a directory id such as `mia`, or an actor such as `agent:mia`): an
        incident's commander or a post-mortem's owner acting as themselves, whatever their role prefix."""
        return bool(person) and self.actor.split(":", 1)[-1] == person.split(":", 1)[-1]

    def watches(self, service: str) -> bool:
        """A monitoring token declares and reads the incidents of its own services only."""
        return self.services is None or service in self.services

    def in_scope(self, tier: str | None, department: str | None) -> bool:
        return (self.tiers is None or tier in self.tiers) and (self.departments is None or department in self.departments)
