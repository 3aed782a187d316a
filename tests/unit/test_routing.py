"""Ordered routing rules: the first match decides; an explicit ticket priority wins."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from starter.runtime.policy_file import DEFAULT_POLICY, load_policy
from workflows.common.policy import Policy
from workflows.common.vocabulary import Channel, contains_keyword
from workflows.ticket import Ticket
from workflows.ticket.routing import matches, route

POLICY = load_policy(DEFAULT_POLICY)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def ticket(subject: str = "Help", description: str = "", **kw: Any) -> Ticket:
    return Ticket(id="T-1", subject=subject, description=description, customer_id="cust-1", opened_at=T0, **kw)


def policy_with_rules(rules: list[dict[str, Any]]) -> Policy:
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["routing"]["rules"] = rules
    return Policy.model_validate(data)


def test_default_route() -> None:
    d = route(ticket("My printer jams"), POLICY)
    assert (d.rule, d.department, d.priority, d.tier) == (None, "general", "P3", "tier1")
    assert d.executive_keywords == []


def test_each_seed_rule() -> None:
    outage = route(ticket("Service down", "Total outage since 9:00"), POLICY)
    assert (outage.rule, outage.department, outage.priority, outage.tier) == ("outage", "networking", "P1", "tier2")
    billing = route(ticket("Wrong invoice"), POLICY)
    assert (billing.rule, billing.department, billing.priority, billing.tier) == ("billing", "billing", "P3", "tier1")
    tv = route(ticket("Smart TV", "the streaming app crashes"), POLICY)
    assert (tv.rule, tv.department, tv.priority, tv.tier) == ("smart-tv-streaming", "streaming-apps", "P3", "tier1")
    ent = route(ticket("Question", customer_plan="enterprise"), POLICY)
    assert (ent.rule, ent.department, ent.priority, ent.tier) == ("enterprise-first", "general", "P2", "tier1")
    bot = route(ticket("Question", channel=Channel.bot), POLICY)
    assert (bot.rule, bot.department, bot.priority, bot.tier) == ("bot-handoff", "general", "P3", "tier1")


def test_first_match_wins() -> None:
    # matches both 'outage' and 'billing': outage comes first
    d = route(ticket("Outage", "and I want a refund"), POLICY)
    assert (d.rule, d.department, d.priority, d.tier) == ("outage", "networking", "P1", "tier2")
    # matches 'billing' and 'enterprise-first': billing comes first, so no P2 from the later rule
    d = route(ticket("Refund please", customer_plan="enterprise"), POLICY)
    assert (d.rule, d.department, d.priority) == ("billing", "billing", "P3")


def test_first_match_wins_is_about_order_not_specificity() -> None:
    rules = [
        {"name": "a", "when": {"keywords": ["refund"]}, "then": {"department": "billing"}},
        {
            "name": "b",
            "when": {"keywords": ["refund"], "plans": ["enterprise"]},
            "then": {"department": "accounts", "priority": "P1"},
        },
    ]
    p = policy_with_rules(rules)
    d = route(ticket("refund", customer_plan="enterprise"), p)
    assert (d.rule, d.department, d.priority) == ("a", "billing", "P3")
    flipped = route(ticket("refund", customer_plan="enterprise"), policy_with_rules(rules[::-1]))
    assert (flipped.rule, flipped.department, flipped.priority) == ("b", "accounts", "P1")


def test_a_rule_only_sets_what_it_names() -> None:
    d = route(ticket("smart tv"), POLICY)  # the rule sets only the department
    assert d.priority == POLICY.routing.default.priority and d.tier == POLICY.routing.default.tier


def test_channel_condition_must_hold_too() -> None:
    # 'outage' rule lists channels; social is not among them, so the next rules decide
    d = route(ticket("outage", channel=Channel.social), POLICY)
    assert d.rule is None and d.priority == "P3"
    d = route(ticket("outage and refund", channel=Channel.social), POLICY)
    assert d.rule == "billing"


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("There is an OUTAGE", True),
        ("Outage.", True),
        ("(outage)", True),
        ("outages everywhere", False),
        ("blackout-age", False),
        ("preoutage", False),
        ("service-outage", True),
        ("It is DOWN for Everyone", True),
        ("down for everyone's account", True),
        ("down for everyones", False),
    ],
)
def test_keywords_are_whole_words_case_insensitive(text: str, hit: bool) -> None:
    assert (route(ticket(text), POLICY).rule == "outage") is hit


def test_keywords_match_subject_or_description() -> None:
    assert route(ticket("Hello", "invoice 42 is wrong"), POLICY).rule == "billing"
    assert route(ticket("Invoice 42", "is wrong"), POLICY).rule == "billing"


def test_explicit_priority_wins_over_the_rule() -> None:
    d = route(ticket("Outage", priority="P4"), POLICY)
    assert (d.rule, d.priority, d.tier, d.department) == ("outage", "P4", "tier2", "networking")
    d = route(ticket("Nothing special", priority="P1"), POLICY)
    assert (d.rule, d.priority) == (None, "P1")


def test_tags_and_plans_are_case_insensitive() -> None:
    p = policy_with_rules([{"name": "vip", "when": {"tags": ["VIP"], "plans": ["Gold"]}, "then": {"priority": "P2"}}])
    assert route(ticket("x", tags=["vip"], customer_plan="gold"), p).rule == "vip"
    assert route(ticket("x", tags=["vip"], customer_plan="silver"), p).rule is None  # all conditions must hold
    assert route(ticket("x", tags=["other"], customer_plan="GOLD"), p).rule is None


def test_empty_match_matches_everything() -> None:
    p = policy_with_rules([{"name": "all", "then": {"department": "accounts"}}])
    assert route(ticket("anything"), p).department == "accounts"


def test_executive_keywords_are_reported() -> None:
    d = route(ticket("Refund", "or I call my Lawyer and cancel"), POLICY)
    assert set(d.executive_keywords) == {"lawyer", "cancel"}
    assert route(ticket("cancellation policy?"), POLICY).executive_keywords == []


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(alphabet="abc xyz.,!-", max_size=12),
    after=st.text(alphabet="abc xyz.,!-", max_size=12),
    upper=st.booleans(),
)
def test_contains_keyword_property(before: str, after: str, upper: bool) -> None:
    word = "Outage" if upper else "outage"
    text = f"{before}{word}{after}"
    expected = not (before[-1:].isalnum() or before[-1:] == "_") and not (after[:1].isalnum() or after[:1] == "_")
    assert contains_keyword(text, "outage") is expected


@settings(max_examples=100, deadline=None)
@given(
    subject=st.sampled_from(["outage", "refund", "smart tv", "hello", "lawyer", "invoice outage"]),
    channel=st.sampled_from(list(Channel)),
    plan=st.sampled_from(["standard", "enterprise"]),
    priority=st.sampled_from([None, "P1", "P2", "P3", "P4"]),
)
def test_route_agrees_with_a_first_match_scan(subject: str, channel: Channel, plan: str, priority: str | None) -> None:
    t = ticket(subject, channel=channel, customer_plan=plan, priority=priority)
    d = route(t, POLICY)
    first = next((r for r in POLICY.routing.rules if matches(r.match, t)), None)
    assert d.rule == (first.name if first else None)
    default = POLICY.routing.default
    assert d.department == ((first and first.set.department) or default.department)
    assert d.tier == ((first and first.set.tier) or default.tier)
    assert d.priority == (priority or (first and first.set.priority) or default.priority)
    assert d.department in POLICY.department_ids() and d.tier in POLICY.tier_ids()


def test_a_rule_may_name_the_incident_a_matching_ticket_joins() -> None:
    from datetime import UTC, datetime

    from starter.runtime.policy_file import load_policy
    from workflows.common.policy import Policy
    from workflows.ticket import Ticket
    from workflows.ticket.routing import route

    data = load_policy().model_dump(mode="json", by_alias=True)
    data["routing"]["rules"].insert(0, {"name": "outage", "when": {"keywords": ["stalls"]},
                                        "then": {"incident": "streaming-eu"}})
    policy = Policy.model_validate(data)
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert route(Ticket(id="R-1", subject="Video stalls", customer_id="c1", opened_at=now), policy).incident == \
        "streaming-eu"
    assert route(Ticket(id="R-2", subject="Invoice wrong", customer_id="c1", opened_at=now), policy).incident is None
