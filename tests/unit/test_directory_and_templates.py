"""Who the policy's roles are (the directory) and what they are told (templates), decided by the preparing step."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities.prepare import Preparer
from starter.cli import main as cli
from starter.cli.common import ExitCode
from starter.runtime.directory_file import DEFAULT_DIRECTORY, DEFAULT_TEMPLATES, load_directory
from starter.runtime.policy_file import PolicyError
from workflows.common.delivery import DeliveryChannel, PrepareInput
from workflows.common.directory import Directory, resolve

WED_10_BERLIN = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 10:00 in Berlin, a Wednesday
WED_22_BERLIN = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


def directory(text: str, tmp_path: Path) -> Path:
    p = tmp_path / "directory.yaml"
    p.write_text(text)
    return p


# ----- the directory --------------------------------------------------------------------------------------------


def test_an_unknown_person_in_a_team_is_named_with_the_people_there_are(tmp_path: Path) -> None:
    p = directory("people: [{id: mia, name: Mia, email: mia@example.com}]\nteams: {executive_team: {members: [eve]}}\n",
                  tmp_path)
    with pytest.raises(PolicyError, match=r"teams.executive_team.members: unknown person 'eve' \(people: mia\)"):
        load_directory(p)


def test_a_bad_time_zone_is_named(tmp_path: Path) -> None:
    p = directory("people: [{id: mia, name: Mia, time_zone: Europe/Berlinn}]\n", tmp_path)
    with pytest.raises(PolicyError, match=r"people\[0\].time_zone: .*unknown time zone 'Europe/Berlinn'"):
        load_directory(p)


def test_a_bad_weekday_names_the_allowed_ones(tmp_path: Path) -> None:
    p = directory("people: [{id: mia, name: Mia}]\n"
                  "teams: {x: {members: [mia], on_duty: [{days: [monday]}]}}\n", tmp_path)
    with pytest.raises(PolicyError, match="'mon'"):
        load_directory(p)


def test_on_duty_follows_the_windows_time_zone() -> None:
    d = load_directory(DEFAULT_DIRECTORY)  # tier:tier1 is on duty Mon-Fri 08:00-18:00 Berlin
    at: dict[str, Any] = {"customer_id": "cust-1001", "tier": "tier1", "department": "general"}
    assert resolve(d, "tier:tier1", at=WED_10_BERLIN, **at).people == ["kim"]
    night = resolve(d, "tier:tier1", at=WED_22_BERLIN, **at)
    assert night.people == [] and "on duty" in night.note


def test_an_overnight_window_covers_the_small_hours() -> None:
    d = Directory.model_validate({"people": [{"id": "leo", "name": "Leo"}], "teams": {"night": {
        "members": ["leo"], "on_duty": [{"days": ["wed"], "start": "22:00", "end": "06:00",
                                         "time_zone": "America/New_York"}]}}})
    thu_3am_ny = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    wed_noon_ny = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    kw: dict[str, Any] = {"customer_id": "c", "tier": "tier1", "department": "general"}
    assert resolve(d, "night", at=thu_3am_ny, **kw).people == ["leo"]
    assert resolve(d, "night", at=wed_noon_ny, **kw).people == []


def test_account_roles_resolve_per_customer() -> None:
    d = load_directory(DEFAULT_DIRECTORY)
    kw: dict[str, Any] = {"tier": "tier2", "department": "general", "at": WED_10_BERLIN}
    assert resolve(d, "csm", customer_id="cust-1001", **kw).people == ["ana"]
    assert resolve(d, "team_lead", customer_id="cust-1001", **kw).people == ["sam"]
    assert resolve(d, "csm", customer_id="cust-unknown", **kw).people == []


def test_the_tickets_escalation_manager_wins_over_the_team() -> None:
    d = load_directory(DEFAULT_DIRECTORY)
    kw: dict[str, Any] = {"customer_id": "c", "tier": "tier1", "department": "general", "at": WED_10_BERLIN}
    assert resolve(d, "escalation_manager", escalation_manager="leo", **kw).people == ["leo"]
    assert resolve(d, "escalation_manager", **kw).people == ["mia", "leo"]


# ----- policy check -----------------------------------------------------------------------------------------------


def test_policy_check_names_a_role_the_directory_does_not_know(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = directory("people: [{id: mia, name: Mia}]\n", tmp_path)
    assert cli.main(["policy", "check", "--directory", str(p)]) == ExitCode.invalid_input
    err = capsys.readouterr().err
    assert "tiers[tier1].notify[0]: unknown role 'tier1_lead'" in err


def test_policy_check_fails_on_an_undefined_template_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES, folder)
    (folder / "breach.chat.txt").write_text("{{ ticket.id }} due {{ ticket.due_time }}")
    assert cli.main(["policy", "check", "--templates", str(folder)]) == ExitCode.invalid_input
    err = capsys.readouterr().err
    assert "breach.chat.txt" in err and "due_time" in err


def test_policy_check_passes_with_the_shipped_directory_and_templates(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["policy", "check", "--directory", str(DEFAULT_DIRECTORY)]) == ExitCode.ok
    assert "every role resolves" in capsys.readouterr().out


def test_directory_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["directory", "check"]) == ExitCode.ok
    assert "8 people" in capsys.readouterr().out


# ----- preparing: who and what, once ----------------------------------------------------------------------------


def notification(**kw: object) -> PrepareInput:
    fields: dict[str, object] = {
        "key": "ticket-T-1:5:breach", "kind": "breach", "ticket_id": "T-1", "roles": ["escalation_manager", "csm"],
        "subject": "SLA breached (acknowledge): <script>alert(1)</script>", "body": "Due 10:00",
        "priority": "P1", "tier": "tier2", "department": "general", "status": "new", "due_at": WED_10_BERLIN,
        "ticket_subject": "<script>alert(1)</script>", "customer_id": "cust-1001",
        "customer_contact": "buyer@example.com", "assignee": None, "escalation_manager": "leo", "at": WED_10_BERLIN,
        **kw}
    return PrepareInput.model_validate(fields)


def preparer(directory_file: Path = DEFAULT_DIRECTORY, templates: Path = DEFAULT_TEMPLATES) -> Preparer:
    return Preparer(directory_file, load_directory, templates, "https://support.example.com", "escalation.test")


def test_roles_become_one_message_per_person_and_channel_with_their_own_keys() -> None:
    out = preparer().prepare_now(notification())
    assert [(m.recipient_id, m.channel, m.key) for m in out.messages] == [
        ("leo", DeliveryChannel.email, "ticket-T-1:5:breach:leo:email"),
        ("ana", DeliveryChannel.email, "ticket-T-1:5:breach:ana:email")]
    assert out.unreached == []


def test_due_times_are_shown_in_each_recipients_time_zone() -> None:
    out = preparer().prepare_now(notification())
    leo, ana = out.messages  # New York and Lisbon
    assert "2026-11-25 04:00 EST" in leo.text and "2026-11-25 09:00 WET" in ana.text


def test_html_mail_escapes_what_it_inserts_and_the_text_keeps_it() -> None:
    [leo, _] = preparer().prepare_now(notification()).messages
    assert leo.html is not None and "<script>" not in leo.html and "&lt;script&gt;" in leo.html
    assert "<script>alert(1)</script>" in leo.text


def test_the_customer_is_written_to_at_the_tickets_contact_in_its_thread() -> None:
    [m] = preparer().prepare_now(notification(kind="opened", roles=["customer"])).messages
    assert (m.recipient_id, m.channel, m.address) == ("customer", DeliveryChannel.email, "buyer@example.com")
    assert m.thread_id == "<ticket-T-1@escalation.test>" and m.subject.startswith("We received your request")


def test_a_role_that_reaches_nobody_is_kept_in_the_outbox_and_said() -> None:
    out = preparer().prepare_now(notification(roles=["csm"], customer_id="cust-unknown"))
    assert [(m.recipient_id, m.channel) for m in out.messages] == [("role:csm", DeliveryChannel.outbox)]
    assert out.unreached == ["csm: account cust-unknown: no csm"]


def test_a_directory_edit_applies_to_the_next_notification(tmp_path: Path) -> None:
    p = tmp_path / "directory.yaml"
    shutil.copy(DEFAULT_DIRECTORY, p)
    prep = preparer(p)
    before = [m.recipient_id for m in prep.prepare_now(notification(roles=["csm"])).messages]
    mtime = p.stat().st_mtime
    p.write_text(p.read_text().replace("csm: ana", "csm: tom"))
    os.utime(p, (mtime + 10, mtime + 10))  # a changed mtime, whatever the file system's resolution
    after = [m.recipient_id for m in prep.prepare_now(notification(roles=["csm"])).messages]
    assert (before, after) == (["ana"], ["tom"])


def test_policy_check_fails_on_a_macro_with_an_undefined_variable(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES, folder)
    (folder / "macros" / "refund.txt").write_text("Your refund of {{ ticket.refund_amount }} is on its way.")
    assert cli.main(["policy", "check", "--templates", str(folder)]) == ExitCode.invalid_input
    err = capsys.readouterr().err
    assert "refund.txt" in err and "refund_amount" in err


def test_a_macro_is_rendered_for_the_ticket_and_the_agent(tmp_path: Path) -> None:
    from activities.macros import Macros, UnknownMacro
    from starter.runtime.policy_file import load_policy
    from workflows import ticket as core
    from workflows.common.directory import Directory

    d = Directory.model_validate({"people": [{"id": "mia", "name": "Mia Novak"}],
                                  "accounts": {"cust-9": {"time_zone": "Asia/Tokyo"}}})
    macros = Macros(DEFAULT_TEMPLATES, lambda: d, "https://help.example.com")
    opened = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    state = core.open_ticket(core.Ticket(id="M-1", subject="App <crashes>", customer_id="cust-9", priority="P1",
                                         opened_at=opened), load_policy(), opened).state
    text = macros.render("investigating", state, "agent:mia", "Tier 1")
    assert 'thank you for your patience with "App <crashes>" (M-1)' in text, "plain text: nothing escaped"
    assert "Our Tier 1 team is" in text and text.rstrip().endswith("Mia Novak")
    assert "JST" in text, "the due time is in the customer's time zone"
    with pytest.raises(UnknownMacro, match="no macro 'nope'; the macros are: investigating, need_more_info"):
        macros.render("nope", state, "agent:mia", "Tier 1")
