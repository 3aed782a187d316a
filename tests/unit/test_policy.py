"""The policy model and its file: validation messages, durations, version hash."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from starter.runtime.policy_file import DEFAULT_POLICY, POLICY_ENV, PolicyError, load_policy, policy_path
from workflows.common.policy import Policy
from workflows.common.vocabulary import ClockName, Status, Trigger

BASE: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
TIERS = "tier0, tier1, tier2, tier3, executive"
DEPARTMENTS = "general, billing, networking, streaming-apps, accounts"


def write(tmp_path: Path, data: Any, name: str = "policy.yaml") -> Path:
    f = tmp_path / name
    f.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data, encoding="utf-8")
    return f


def mutated(fn: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    fn(data)
    return data


def load_error(tmp_path: Path, data: Any) -> str:
    f = write(tmp_path, data)
    with pytest.raises(PolicyError) as err:
        load_policy(f)
    message = str(err.value)
    assert message.startswith(str(f)), message  # names the file
    return message


# ----- the default policy ------------------------------------------------------------


def test_default_policy_encodes_the_seed_example() -> None:
    p = load_policy(DEFAULT_POLICY)
    assert p.tier_ids() == ["tier0", "tier1", "tier2", "tier3", "executive"]
    assert p.tier("tier1").tier_clock_starts == "acknowledged"
    assert p.tier("executive").automatic_entry is False
    p1 = p.sla("P1")
    assert p1.acknowledge == timedelta(minutes=60)
    assert p1.tier["tier1"] == timedelta(minutes=20)
    assert p1.tier["tier2"] == timedelta(hours=4)
    assert p.calendar_for("P1").always_open
    assert p.calendar_for("P3").name == "office"
    assert p.clocks[ClockName.acknowledge].on_breach == "escalate"
    assert p.clocks[ClockName.tier].on_breach == "escalate"
    assert p.clocks[ClockName.resolution].on_breach == "notify"
    assert Status.waiting_on_customer in p.clocks[ClockName.tier].paused_while
    assert Trigger.transferred not in p.clocks[ClockName.tier].restarts_on
    assert p.reopen_window == timedelta(days=3)
    assert {"lawyer", "cancel"} <= set(p.executive.keywords)
    assert p.next_tier("tier1") == "tier2"
    assert p.next_tier("executive") is None


def test_load_policy_without_a_path_reads_the_env_or_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(POLICY_ENV, raising=False)
    assert policy_path() == DEFAULT_POLICY
    assert load_policy().version() == load_policy(DEFAULT_POLICY).version()
    other = write(tmp_path, mutated(lambda d: d.update(name="other")))
    monkeypatch.setenv(POLICY_ENV, str(other))
    assert load_policy().name == "other"


def test_clock_defaults_when_the_section_is_missing(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, mutated(lambda d: d.pop("clocks"))))
    assert set(p.clocks) == set(ClockName)
    assert p.clocks == load_policy(DEFAULT_POLICY).clocks  # the file spells out the defaults


# ----- version -------------------------------------------------------------------------


def test_version_is_stable_across_loads(tmp_path: Path) -> None:
    a, b = load_policy(DEFAULT_POLICY), load_policy(DEFAULT_POLICY)
    assert a is not b
    assert a.version() == b.version()
    assert a.version().startswith("default@")
    # the same content written out differently (no comments, other key order) hashes the same
    assert load_policy(write(tmp_path, BASE)).version() == a.version()


def test_version_changes_when_content_changes(tmp_path: Path) -> None:
    base = load_policy(DEFAULT_POLICY).version()
    changes = [
        lambda d: d.update(reopen_window="4d"),
        lambda d: d["priorities"]["P1"].update(acknowledge="45m"),
        lambda d: d["clocks"]["tier"]["restarts_on"].append("transferred"),
        lambda d: d["calendars"]["office"]["holidays"].append("2027-05-01"),
        lambda d: d["routing"]["rules"].reverse(),
        lambda d: d["executive"]["keywords"].append("ombudsman"),
    ]
    versions = {base}
    for i, change in enumerate(changes):
        versions.add(load_policy(write(tmp_path, mutated(change), f"p{i}.yaml")).version())
    assert len(versions) == len(changes) + 1


def test_version_is_the_same_in_another_process() -> None:
    """Sets serialise sorted, so hash randomisation in another process does not change the version."""
    code = f"from starter.runtime.policy_file import load_policy; print(load_policy({str(DEFAULT_POLICY)!r}).version())"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == load_policy(DEFAULT_POLICY).version()


# ----- validation messages: field path and allowed values --------------------------------


def test_unknown_tier_in_priority(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P1"]["tier"].update(tier9="1h")))
    assert "priorities.P1.tier" in msg and "'tier9'" in msg and f"allowed: {TIERS}" in msg


def test_unknown_department_in_routing_rule(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["routing"]["rules"][1]["then"].update(department="sales")))
    assert "routing.rules[1] (billing).then.department" in msg and "'sales'" in msg
    assert f"allowed: {DEPARTMENTS}" in msg


def test_unknown_tier_in_routing(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["routing"]["default"].update(tier="tier7")))
    assert "routing.default.tier" in msg and f"allowed: {TIERS}" in msg
    msg = load_error(tmp_path, mutated(lambda d: d["routing"]["rules"][0]["then"].update(tier="tier7")))
    assert "routing.rules[0] (outage).then.tier" in msg and f"allowed: {TIERS}" in msg


def test_unknown_default_department(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["routing"]["default"].update(department="nowhere")))
    assert "routing.default.department" in msg and f"allowed: {DEPARTMENTS}" in msg


def test_unknown_calendar(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P3"].update(calendar="weekends")))
    assert "priorities.P3.calendar" in msg and "'weekends'" in msg and "allowed: around-the-clock, office" in msg


def test_missing_priority(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"].pop("P4")))
    assert "priorities" in msg and "missing P4" in msg and "P1, P2, P3, P4" in msg


def test_unknown_priority(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"].update(P5=d["priorities"]["P4"])))
    assert "priorities.P5" in msg and "'P1', 'P2', 'P3' or 'P4'" in msg


def test_bad_duration(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P1"].update(acknowledge="10 minutes")))
    assert "priorities.P1.acknowledge" in msg and "'10 minutes'" in msg
    assert "'90s', '20m', '4h', '1h30m' or '2d'" in msg


def test_huge_duration_is_a_policy_error_not_a_crash(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P1"].update(resolution="9999999999d")))
    assert "priorities.P1.resolution" in msg and "too large" in msg
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P1"].update(resolution=10**20)))
    assert "priorities.P1.resolution" in msg and "out of range" in msg


def test_non_positive_duration(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P2"]["tier"].update(tier1="0s")))
    assert "priorities.P2.tier.tier1" in msg and "must be positive" in msg


def test_bad_time_zone(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["calendars"]["office"].update(timezone="Europe/Atlantis")))
    assert "calendars.office.timezone" in msg and "'Europe/Atlantis'" in msg and "IANA name" in msg


def test_overlapping_hours(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["calendars"]["office"]["hours"].update(tue=["09:00-13:00", "12:00-18:00"])))
    assert "calendars.office" in msg and "hours.tue" in msg and "09:00-13:00 overlaps 12:00-18:00" in msg


def test_bad_opening_time(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["calendars"]["office"]["hours"].update(mon=["09:00-24:30"])))
    assert "calendars.office.hours.mon[0].end" in msg and "00:00 to 24:00" in msg and "(got" not in msg


def test_unknown_weekday(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["calendars"]["office"]["hours"].update(someday=["09:00-10:00"])))
    assert "calendars.office.hours" in msg and "allowed: mon, tue, wed, thu, fri, sat, sun" in msg


def test_unknown_clock_trigger(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["clocks"]["tier"]["restarts_on"].append("assigned")))
    assert "clocks.tier.restarts_on" in msg
    for trigger in Trigger:
        assert f"'{trigger.value}'" in msg


def test_unknown_clock_and_paused_status(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["clocks"].update(first_response={"starts_on": ["opened"]})))
    assert "clocks.first_response" in msg and "'acknowledge', 'tier', 'resolution' or 'customer_update'" in msg
    msg = load_error(tmp_path, mutated(lambda d: d["clocks"]["resolution"].update(paused_while=["on_hold"])))
    assert "clocks.resolution.paused_while" in msg and "'waiting_on_customer'" in msg


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P1"].update(acknowlege="1h")))
    assert "priorities.P1.acknowlege" in msg and "Extra inputs are not permitted" in msg


def test_duplicate_tier_ids(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["tiers"].append({"id": "tier2", "name": "again"})))
    assert "tiers: duplicate id tier2" in msg


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    def two(d: dict[str, Any]) -> None:
        d["priorities"]["P1"]["acknowledge"] = "soon"
        d["calendars"]["office"]["timezone"] = "Nowhere/Land"

    msg = load_error(tmp_path, mutated(two))
    assert "2 problem(s)" in msg and "priorities.P1.acknowledge" in msg and "calendars.office.timezone" in msg


def test_cross_reference_errors_are_not_labelled_top_level(tmp_path: Path) -> None:
    msg = load_error(tmp_path, mutated(lambda d: d["priorities"]["P1"].update(calendar="x")))
    assert "(top level)" not in msg
    assert "\n  priorities.P1.calendar: unknown value 'x'" in msg


def test_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=f"{missing}: no such policy file"):
        load_policy(missing)
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(write(tmp_path, "tiers: [unclosed\n"))
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(write(tmp_path, "- just\n- a list\n"))


def test_policy_is_frozen() -> None:
    p = load_policy(DEFAULT_POLICY)
    with pytest.raises(Exception, match="frozen"):
        p.name = "changed"  # type: ignore[misc]


def test_policy_round_trips_through_json() -> None:
    """The workflow carries the policy as a snapshot: dumping and re-validating must give the same policy."""
    p = load_policy(DEFAULT_POLICY)
    again = Policy.model_validate_json(p.model_dump_json(by_alias=True))
    assert again == p
    assert again.version() == p.version()


def test_a_policy_snapshot_is_validated_once_per_content_and_shared() -> None:
    from pydantic import TypeAdapter

    from workflows.ticket import TicketInput

    adapter = TypeAdapter(TicketInput)
    ticket = {"id": "T-1", "subject": "s", "customer_id": "c-1", "opened_at": "2026-11-25T10:00:00Z"}
    policy = load_policy().model_dump(mode="json")
    first = adapter.validate_json(json.dumps({"ticket": ticket, "policy": policy}))
    again = adapter.validate_json(json.dumps({"policy": dict(reversed(policy.items())), "ticket": ticket}))
    assert again.policy is first.policy and first.policy == load_policy()  # key order does not matter

    other = {**policy, "reopen_window": "1h"}
    changed = adapter.validate_json(json.dumps({"ticket": ticket, "policy": other}))
    assert changed.policy is not first.policy and changed.policy.version() != first.policy.version()

    broken = {**policy, "tiers": []}
    for _ in range(2):  # a failure is never cached: it fails the same way every time
        with pytest.raises(ValidationError, match="tiers"):
            adapter.validate_json(json.dumps({"ticket": ticket, "policy": broken}))
    assert TicketInput(ticket=first.ticket, policy=first.policy).policy is first.policy


def test_the_readme_policy_error_example_runs_verbatim_and_prints_what_it_shows(tmp_path: Path) -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```sh\n(sed [^\n]*\n\.venv/bin/escalation policy check [^\n]*\n)```\n\n```\n(.*?)```", readme,
                      flags=re.S)
    assert match, "the README shows a broken policy and its error"
    (tmp_path / "config").symlink_to(root / "config")
    (tmp_path / ".venv").symlink_to(root / ".venv")
    run = subprocess.run(["bash", "-c", match.group(1)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr == match.group(2)


def test_field_errors_show_the_value_and_list_positions_like_cross_reference_errors(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data["routing"]["rules"][1]["then"]["priority"] = "P0"
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(f)
    assert "routing.rules[1].then.priority: Input should be 'P1', 'P2', 'P3' or 'P4' (got 'P0')" in str(caught.value)
