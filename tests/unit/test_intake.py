"""Channel payload -> ticket mapping: pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from starter.intake import mapping as intake
from starter.intake.mapping import (
    PAYLOADS,
    BotIntake,
    ChatIntake,
    EmailIntake,
    PhoneIntake,
    PortalIntake,
    SocialIntake,
    channel_ticket_id,
    detect_sensitive,
    email_reply,
    email_ticket_id,
    map_payload,
    reply_targets,
)
from workflows.common.vocabulary import ID_PATTERN, Channel
from workflows.ticket import Ticket

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def example(channel: Channel) -> dict[str, Any]:
    return dict(PAYLOADS[channel].model_config["json_schema_extra"]["examples"][0])  # type: ignore[index,arg-type]


@pytest.mark.parametrize("channel", list(PAYLOADS))
def test_every_documented_example_maps_to_a_valid_ticket(channel: Channel) -> None:
    payload = PAYLOADS[channel].model_validate(example(channel))
    mapped = map_payload(channel, payload, NOW)  # type: ignore[arg-type]
    t = mapped.ticket
    assert Ticket.model_validate(t.model_dump()) == t
    assert t.channel == channel and t.subject and "@" not in t.customer_id
    assert mapped.exact_time is False and t.opened_at == NOW  # no timestamp in the examples: the receive time
    # deterministic: a redelivery maps to the same ticket
    assert map_payload(channel, PAYLOADS[channel].model_validate(example(channel)), NOW).ticket == t  # type: ignore[arg-type]


def test_ids_derive_from_each_channels_message_identity() -> None:
    assert map_payload(Channel.chat, ChatIntake.model_validate(example(Channel.chat)), NOW).ticket.id == "chat-conv-88231"
    assert map_payload(Channel.phone, PhoneIntake.model_validate(example(Channel.phone)), NOW).ticket.id == "call-5521-77"
    social = map_payload(Channel.social, SocialIntake.model_validate(example(Channel.social)), NOW).ticket
    assert social.id == "social-twitter-1861234567890"
    portal = map_payload(Channel.portal, PortalIntake.model_validate(example(Channel.portal)), NOW).ticket
    assert portal.id == "portal-sub-20261125-0042"
    assert map_payload(Channel.bot, BotIntake.model_validate(example(Channel.bot)), NOW).ticket.id == "bot-7f3a9c"
    email = map_payload(Channel.email, EmailIntake.model_validate(example(Channel.email)), NOW).ticket
    assert email.id == email_ticket_id("<CAF=9x1@mail.example.com>") and email.id.startswith("email-")
    # the same post id on two networks is two tickets
    other = SocialIntake.model_validate({**example(Channel.social), "network": "facebook"})
    assert map_payload(Channel.social, other, NOW).ticket.id != social.id


@pytest.mark.parametrize("external", ["conv 1", "a/b:c", "x" * 150, "h.deadbeef", "sp@ce"])
def test_unsafe_external_ids_are_hashed_into_valid_ticket_ids(external: str) -> None:
    import re

    tid = channel_ticket_id("chat", external)
    assert re.match(ID_PATTERN, tid) and tid.startswith("chat-h.")
    assert tid == channel_ticket_id("chat", external)
    assert tid != channel_ticket_id("chat", external + "x")


def test_message_ids_are_normalised_before_hashing() -> None:
    assert email_ticket_id("<abc@x>") == email_ticket_id(" abc@x ") == email_ticket_id("<abc@x>\n")
    assert email_ticket_id("<abc@x>") != email_ticket_id("<abd@x>")


def test_customer_ids_never_hold_contact_details() -> None:
    e = EmailIntake.model_validate({"from": "Ana Lima <Ana@Example.com>", "message_id": "<1@x>"})
    t = map_payload(Channel.email, e, NOW).ticket
    assert t.customer_id.startswith("email-") and "ana" not in t.customer_id.lower()
    same = EmailIntake.model_validate({"from": "ana@example.com", "message_id": "<2@x>"})
    assert map_payload(Channel.email, same, NOW).ticket.customer_id == t.customer_id  # case and name ignored
    p = PhoneIntake.model_validate({"call_id": "c1", "caller": "+49 (30) 1234-567", "summary": "s"})
    q = PhoneIntake.model_validate({"call_id": "c2", "caller": "+4930 1234567", "summary": "s"})
    assert map_payload(Channel.phone, p, NOW).ticket.customer_id == map_payload(Channel.phone, q, NOW).ticket.customer_id
    assert "1234567" not in map_payload(Channel.phone, p, NOW).ticket.customer_id
    given = EmailIntake.model_validate({"from": "ana@example.com", "message_id": "<3@x>", "customer_id": "cust-7"})
    assert map_payload(Channel.email, given, NOW).ticket.customer_id == "cust-7"


def test_email_reply_targets_in_reply_to_first_then_references_newest_first() -> None:
    e = EmailIntake.model_validate({"from": "a@b.c", "message_id": "<r3@x>", "in_reply_to": "<r2@x>",
                                    "references": "<root@x> <r1@x>\n <r2@x>"})
    assert e.references == ["<root@x>", "<r1@x>", "<r2@x>"]
    assert reply_targets(e) == [email_ticket_id(m) for m in ("<r2@x>", "<r1@x>", "<root@x>")]
    own = EmailIntake.model_validate({"from": "a@b.c", "message_id": "<r3@x>", "references": ["<r3@x>"]})
    assert reply_targets(own) == []  # never a reply to itself
    assert map_payload(Channel.email, e, NOW).reply_targets == reply_targets(e)


def test_email_reply_carries_the_message_id_and_the_actor() -> None:
    e = EmailIntake.model_validate({"from": "a@b.c", "message_id": "<r3@x>", "body": "thanks"})
    reply = email_reply(e, "intake:mailgw")
    assert (reply.actor, reply.message, reply.message_id) == ("intake:mailgw", "thanks", "r3@x")


def test_long_email_bodies_and_subjects_are_truncated_not_rejected() -> None:
    e = EmailIntake.model_validate({"from": "a@b.c", "message_id": "<1@x>", "subject": "s" * 900, "body": "b" * 50_000})
    t = map_payload(Channel.email, e, NOW).ticket
    assert len(t.subject) == 500 and len(t.description) == 20_000 and t.description.endswith("[truncated]")
    assert map_payload(Channel.email, EmailIntake.model_validate({"from": "a@b.c", "message_id": "<2@x>"}),
                       NOW).ticket.subject == "(no subject)"


def test_payload_times_are_used_when_plausible() -> None:
    sent = NOW - timedelta(hours=2)
    e = EmailIntake.model_validate({"from": "a@b.c", "message_id": "<1@x>", "date": sent.isoformat()})
    m = map_payload(Channel.email, e, NOW)
    assert m.ticket.opened_at == sent and m.exact_time
    for bad in (NOW + timedelta(hours=1), NOW - timedelta(days=400)):  # a sender's wrong clock must not lose the mail
        e = EmailIntake.model_validate({"from": "a@b.c", "message_id": "<1@x>", "date": bad.isoformat()})
        m = map_payload(Channel.email, e, NOW)
        assert m.ticket.opened_at == NOW and not m.exact_time


def test_chat_subject_is_the_topic_else_the_first_customer_message() -> None:
    base = {"conversation_id": "c1", "customer_id": "cust-1",
            "messages": [{"author": "bot", "text": "Hi!"}, {"author": "customer", "text": "My invoice is wrong\nline 2"}]}
    t = map_payload(Channel.chat, ChatIntake.model_validate(base), NOW).ticket
    assert t.subject == "My invoice is wrong" and "customer: My invoice is wrong" in t.description
    t = map_payload(Channel.chat, ChatIntake.model_validate({**base, "topic": "refund"}), NOW).ticket
    assert t.subject == "refund"


def test_phone_transfers_are_recorded() -> None:
    p = PhoneIntake.model_validate(example(Channel.phone))
    t = map_payload(Channel.phone, p, NOW).ticket
    assert "front-desk -> networking-l1 (network issue)" in t.description and "transferred-call" in t.tags


def test_portal_and_bot_tags() -> None:
    portal = map_payload(Channel.portal, PortalIntake.model_validate(example(Channel.portal)), NOW).ticket
    assert portal.tags == ["category:accounts", "agent-requested"]
    bot = map_payload(Channel.bot, BotIntake.model_validate(example(Channel.bot)), NOW).ticket
    assert bot.tags == ["bot-handoff", "intent:password-reset"]
    assert bot.subject == "helpbot hand-off: customer asked for a human" and "helpbot: Have you" in bot.description


@pytest.mark.parametrize(("text", "expected"), [
    ("Love the new app!", []),
    ("my card 4111 1111 1111 1111 was charged twice", ["billing", "payment_card"]),
    ("number 4111 1111 1111 1112 is not a card", []),  # fails the Luhn check
    ("pay to DE89 3704 0044 0532 0130 00 please", ["bank_account"]),
    ("call me on +49 30 1234567", ["contact"]),
    ("write to ana@example.com", ["contact"]),
    ("my diagnosis came back and the medication", ["health"]),
    ("I forgot my password", ["account"]),
    ("order 12345 arrived", []),
])
def test_detect_sensitive(text: str, expected: list[str]) -> None:
    assert detect_sensitive(text) == expected


def test_sensitive_public_posts_are_flagged_to_move_private() -> None:
    post = {**example(Channel.social), "text": "@ExampleTV my password is hunter2 and it still fails"}
    m = map_payload(Channel.social, SocialIntake.model_validate(post), NOW)
    assert m.ticket.sensitive and m.sensitive == ["account"]
    assert {"public-social", "reply-private", "sensitive:account"} <= set(m.ticket.tags)
    dm = map_payload(Channel.social, SocialIntake.model_validate({**post, "public": False}), NOW)
    assert not dm.ticket.sensitive and dm.sensitive == [] and "private-social" in dm.ticket.tags
    plain = map_payload(Channel.social, SocialIntake.model_validate(example(Channel.social)), NOW)
    assert not plain.ticket.sensitive


@pytest.mark.parametrize(("model", "data", "field"), [
    (EmailIntake, {"from": "nobody", "message_id": "<1@x>"}, "from"),
    (EmailIntake, {"from": "a@b.c"}, "message_id"),
    (EmailIntake, {"from": "a@b.c", "message_id": "<1@x>", "date": "2026-11-25T09:00:00"}, "date"),
    (ChatIntake, {"conversation_id": "c1", "customer_id": "cust", "messages": []}, "messages"),
    (ChatIntake, {"conversation_id": "c 1", "customer_id": "cust", "messages": [{"author": "customer", "text": "x"}]},
     "conversation_id"),
    (ChatIntake, {"conversation_id": "c1", "customer_id": "a@b.c", "messages": [{"author": "customer", "text": "x"}]},
     "customer_id"),
    (PhoneIntake, {"call_id": "c1", "summary": "x"}, None),
    (PhoneIntake, {"call_id": "c1", "summary": "x", "caller": "()--"}, None),
    (SocialIntake, {"network": "myspace", "post_id": "1", "handle": "a", "text": "x"}, "network"),
    (SocialIntake, {"network": "x", "post_id": "1", "handle": "a", "text": "x", "url": "javascript:alert(1)"}, "url"),
    (PortalIntake, {"submission_id": "s1", "customer_id": "c", "subject": "x", "category": "c" * 41}, "category"),
    (BotIntake, {"conversation_id": "b1", "customer_id": "c", "transcript": [{"role": "agent", "text": "x"}]},
     "transcript"),
])
def test_invalid_payloads_name_the_field(model: type[BaseModel], data: dict[str, Any], field: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    if field:
        assert field in {str(e["loc"][0]) for e in info.value.errors()}


def test_unknown_fields_from_webhook_senders_are_ignored() -> None:
    e = EmailIntake.model_validate({"from": "a@b.c", "message_id": "<1@x>", "spam_score": 0.1, "X-Mailer": "m"})
    assert map_payload(Channel.email, e, NOW).ticket.id == email_ticket_id("<1@x>")


def test_intake_module_is_pure() -> None:
    src = Path(intake.__file__).read_text(encoding="utf-8")
    for forbidden in ("datetime.now", "import os", "open(", "temporalio", "httpx", "requests"):
        assert forbidden not in src, forbidden


# ----- where the customer hears back ----------------------------------------------------------------------


def mapped_contact(channel: Channel, **changes: Any) -> str | None:
    payload = PAYLOADS[channel].model_validate({**example(channel), **changes})
    return map_payload(channel, payload, NOW).ticket.customer_contact  # type: ignore[arg-type]


def test_an_email_is_answered_at_its_senders_address() -> None:
    assert mapped_contact(Channel.email) == "ana@example.com"


def test_a_call_and_a_social_post_are_answered_on_their_own_channel() -> None:
    assert mapped_contact(Channel.phone) == "tel:+49301234567"
    assert mapped_contact(Channel.social) == "twitter:@ana_streams"


def test_reply_to_wins_over_the_channels_own_contact() -> None:
    assert mapped_contact(Channel.email, reply_to="billing@example.com") == "billing@example.com"
    assert mapped_contact(Channel.chat, reply_to="visitor@example.com") == "visitor@example.com"


def test_a_channel_without_a_contact_leaves_it_empty() -> None:
    assert mapped_contact(Channel.chat) is None


def test_reply_to_must_be_an_email_address() -> None:
    with pytest.raises(ValidationError, match="reply_to"):
        PAYLOADS[Channel.chat].model_validate({**example(Channel.chat), "reply_to": "not an address"})


def test_the_contact_never_reaches_the_ticket_id_or_customer_id() -> None:
    t = map_payload(Channel.email, EmailIntake.model_validate(example(Channel.email)), NOW).ticket
    assert "ana" not in t.id and "ana" not in t.customer_id


def test_mails_to_the_customer_thread_under_their_own_first_message() -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    from activities.prepare import Preparer
    from starter.runtime.policy_file import load_policy
    from workflows import ticket as core
    from workflows.common.directory import Directory

    payload = PAYLOADS[Channel.email].model_validate({**example(Channel.email), "message_id": " <CAF=9x1@mail.example.com> "})
    ticket = map_payload(Channel.email, payload, NOW).ticket  # type: ignore[arg-type]
    assert ticket.thread_ref == "<CAF=9x1@mail.example.com>"
    odd = PAYLOADS[Channel.email].model_validate({**example(Channel.email), "message_id": "<a b@c>"})
    assert map_payload(Channel.email, odd, NOW).ticket.thread_ref is None  # type: ignore[arg-type]

    opened = core.open_ticket(ticket, load_policy(), NOW)
    notice = next(f for f in opened.effects if isinstance(f, core.Notify) and f.kind == "opened")
    preparer = Preparer(Path("/nonexistent"), lambda p: Directory(), Path("config/templates"), "http://x", "esc.test")
    mail = preparer.prepare_now(core.prepare_input(opened.state, notice, datetime.now(UTC))).messages[0]
    assert (mail.recipient_id, mail.thread_id) == ("customer", "<CAF=9x1@mail.example.com>")
