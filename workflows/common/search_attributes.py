"""Typed search attributes: tickets are listed and counted by these, without another database."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate

STATUS = SearchAttributeKey.for_keyword("TicketStatus")
TIER = SearchAttributeKey.for_keyword("TicketTier")
PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
DEPARTMENT = SearchAttributeKey.for_keyword("TicketDepartment")
CHANNEL = SearchAttributeKey.for_keyword("TicketChannel")
CUSTOMER_ID = SearchAttributeKey.for_keyword("TicketCustomerId")
ASSIGNEE = SearchAttributeKey.for_keyword("TicketAssignee")
ESCALATION_COUNT = SearchAttributeKey.for_int("TicketEscalationCount")
SLA_BREACHED = SearchAttributeKey.for_bool("TicketSlaBreached")
POLICY_VERSION = SearchAttributeKey.for_keyword("TicketPolicyVersion")
INCIDENT = SearchAttributeKey.for_keyword("TicketIncident")  # set once a ticket is linked to an incident
# For the escalation metrics (patch `metrics-figures`): the window's filter and the tags' shares. Set at start by the
# client (and upserted once by tickets started without them); the figures themselves travel in the memo (`metrics`).
OPENED_AT = SearchAttributeKey.for_datetime("TicketOpenedAt")
TAGS = SearchAttributeKey.for_keyword_list("TicketTags")
# The survey's score, on the SurveyWorkflow (not the ticket, which has completed when the customer answers).
SURVEY_SCORE = SearchAttributeKey.for_int("SurveyScore")

ALL = (STATUS, TIER, PRIORITY, DEPARTMENT, CHANNEL, CUSTOMER_ID, ASSIGNEE, ESCALATION_COUNT, SLA_BREACHED, POLICY_VERSION,
       INCIDENT)
BY_NAME = {k.name: k for k in ALL}
# Kept apart from ALL: the auditor's decision check recomputes ALL's values from the pure core (these it does not).
METRICS = (OPENED_AT, TAGS)
KEYS = {**BY_NAME, **{k.name: k for k in METRICS}}
# What the dev server registers: the tickets' and the other workflows'.
REGISTERED = (*ALL, *METRICS, SURVEY_SCORE)



def cli_types() -> dict[str, str]:
    """NAME -> type as `temporal server start-dev --search-attribute NAME=TYPE` spells it."""
    return {k.name: k.indexed_value_type.name.title().replace("_", "") for k in REGISTERED}  # KEYWORD_LIST: KeywordList


def cli_flags() -> list[str]:
    flags: list[str] = []
    for name, kind in cli_types().items():
        flags += ["--search-attribute", f"{name}={kind}"]
    return flags


def updates(values: dict[str, object], previous: dict[str, object]) -> list[SearchAttributeUpdate]:
    """Updates for the values that changed since `previous`."""
    return [KEYS[name].value_set(value) for name, value in values.items() if previous.get(name) != value]  # type: ignore[arg-type]


def pairs(values: dict[str, object]) -> list[SearchAttributePair]:
    return [SearchAttributePair(KEYS[name], value) for name, value in values.items()]  # type: ignore[arg-type]
