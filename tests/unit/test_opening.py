"""Opening a ticket: who opened it, a bot's hand-off, the priority the caller set, warnings already overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starter.intake.mapping import BotIntake, map_payload
from starter.runtime.policy_file import DEFAULT_POLICY, load_policy
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.common.vocabulary import Channel, ClockName

POLICY = load_policy(DEFAULT_POLICY)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
BOT = core.Handoff(actor="bot:helpbot", reason="customer asked for a human", at=T0, since=T0 - timedelta(minutes=4))


def make_ticket(**fields: Any) -> core.Ticket:
    base: dict[str, Any] = {"id": "T-1", "subject": "Reset link never arrives", "customer_id": "cust-1",
                            "opened_at": T0}
    return core.Ticket(**{**base, **fields})


def timeline(ticket: core.Ticket, policy: Policy = POLICY, **opening: Any) -> list[core.TimelineEntry]:
    return core.open_ticket(ticket, policy, T0, **opening).state.timeline


# ----- who opened it -------------------------------------------------------------------------------------------


def test_the_opening_is_the_intakes_when_nobody_is_named() -> None:
    assert timeline(make_ticket())[0].actor == "system:intake"


def test_the_opening_is_recorded_with_the_actor_who_opened_it() -> None:
    opened = timeline(make_ticket(), opened_by="agent:olga")[0]
    assert (opened.action, opened.actor) == ("opened", "agent:olga")


# ----- a bot's hand-off ----------------------------------------------------------------------------------------


def test_a_bots_hand_off_is_recorded_with_the_bot_as_actor_and_its_reason() -> None:
    handed, opened = timeline(make_ticket(channel=Channel.bot), handoff=BOT)[:2]
    assert (handed.action, handed.actor, handed.reason) == ("handed_off", "bot:helpbot", "customer asked for a human")
    assert (handed.at, opened.action) == (T0, "opened")


def test_the_hand_off_says_how_long_the_customer_was_at_tier0_and_where_the_ticket_goes() -> None:
    handed = timeline(make_ticket(channel=Channel.bot), handoff=BOT)[0]
    assert handed.summary == "handed off by bot:helpbot after 4m at tier0; routed to tier1"


def test_the_hand_off_says_so_when_the_policy_keeps_the_ticket_at_tier0() -> None:
    data = POLICY.model_dump(mode="json", by_alias=True)
    data["routing"]["default"]["tier"] = "tier0"
    data["routing"]["rules"] = [r for r in data["routing"]["rules"] if r["name"] != "bot-handoff"]
    keeps = Policy.model_validate(data)
    handed = timeline(make_ticket(channel=Channel.bot), keeps, handoff=BOT)[0]
    assert handed.summary.endswith("after 4m at tier0; the policy keeps it at tier0")


def test_the_bot_channels_mapping_carries_the_hand_off() -> None:
    payload = BotIntake.model_validate({
        "conversation_id": "c-1", "customer_id": "cust-1", "bot": "helpbot", "reason": "customer asked for a human",
        "handed_off_at": T0.isoformat(),
        "transcript": [{"role": "customer", "text": "Help", "at": (T0 - timedelta(minutes=4)).isoformat()},
                       {"role": "bot", "text": "Spam folder?", "at": (T0 - timedelta(minutes=3)).isoformat()}]})
    mapped = map_payload(Channel.bot, payload, T0 + timedelta(seconds=5))
    assert mapped.handoff == BOT


# ----- the caller's priority and the rule's --------------------------------------------------------------------


def test_the_opened_entry_records_the_callers_priority_and_the_rules() -> None:
    opened = timeline(make_ticket(subject="Wrong invoice", priority="P1"))[0]
    assert opened.summary.endswith("priority P1 (set by the caller; the rule sets P3)"), opened.summary
    assert core.open_ticket(make_ticket(subject="Wrong invoice", priority="P1"), POLICY, T0).state.priority == "P1"


def test_the_opened_entry_names_the_default_routes_priority_too() -> None:
    opened = timeline(make_ticket(priority="P2"))[0]
    assert opened.summary.endswith("priority P2 (set by the caller; the default route sets P3)"), opened.summary


def test_without_a_callers_priority_the_opened_entry_names_only_the_rules() -> None:
    assert timeline(make_ticket(subject="Wrong invoice"))[0].summary.endswith("priority P3")


# ----- warnings already overdue --------------------------------------------------------------------------------


def opened_long_ago() -> core.StepResult:
    """A P1 opened 2 h ago: the acknowledge clock's 50 % and 75 % warnings and its breach are all overdue."""
    t = make_ticket(priority="P1", opened_at=T0 - timedelta(hours=2))
    return core.catch_up(core.open_ticket(t, POLICY, T0).state, T0, POLICY)


def test_a_warning_whose_breach_is_also_due_is_not_sent() -> None:
    kinds = [(n.kind, n.due_at) for n in opened_long_ago().effects if isinstance(n, core.Notify)]
    assert not [k for k in kinds if k[0] == "warning"], kinds
    assert "breach" in [k for k, _ in kinds]


def test_a_superseded_warning_is_not_in_the_timeline_and_not_due_again() -> None:
    s = opened_long_ago().state
    ack = [e for e in s.timeline if e.clock == ClockName.acknowledge]
    assert [e.action for e in ack] == ["sla_breached", "escalated"]
    assert core.next_due(s, T0, POLICY) is None


def test_warnings_are_sent_as_before_where_the_workflow_says_not_to_supersede() -> None:
    t = make_ticket(priority="P1", opened_at=T0 - timedelta(hours=2))
    out = core.catch_up(core.open_ticket(t, POLICY, T0).state, T0, POLICY, supersede=lambda: False)
    assert [n.kind for n in out.effects].count("warning") >= 2


def test_a_warning_due_before_its_breach_is_still_sent() -> None:
    t = make_ticket(priority="P1")
    s = core.open_ticket(t, POLICY, T0).state
    out = core.catch_up(s, T0 + timedelta(minutes=31), POLICY)  # the acknowledge clock at 50 %, not breached
    acknowledge = [n.subject.split(":")[0] for n in out.effects
                   if isinstance(n, core.Notify) and "(acknowledge" in n.subject]
    assert acknowledge == ["SLA warning (acknowledge 50%)"]


def test_the_readme_states_the_rule_with_the_entry_the_core_writes() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "it wins over the priority a routing rule (or the\ndefault route) would set" in readme
    opened = timeline(make_ticket(subject="Wrong invoice", priority="P1"))[0].summary
    assert f"`{opened[opened.index('priority'):]}`" in readme
