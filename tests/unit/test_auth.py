"""Tokens and roles (starter/auth.py): file formats, hashing, scope, the development token."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from starter.runtime.policy_file import load_policy
from starter.security.auth import (
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
    TokenConfigError,
    TokenEntry,
    TokenStore,
    dev_tokens,
    hash_token,
    load_tokens,
    main,
)


def entry(name: str, role: str, token: str, **scope: list[str]) -> dict[str, object]:
    return {"name": name, "role": role, "token_sha256": hash_token(token), **scope}


def test_yaml_file_and_inline_json_together(tmp_path: Path) -> None:
    f = tmp_path / "tokens.yaml"
    f.write_text(yaml.safe_dump([entry("alice", "agent", "tok-alice-0123456789", tiers=["tier1"]),
                                 entry("sam", "supervisor", "tok-sam-0123456789")]))
    inline = json.dumps([entry("ops", "admin", "tok-ops-0123456789")])
    store = load_tokens(f, inline, load_policy())
    assert len(store) == 3
    alice = store.authenticate("tok-alice-0123456789")
    assert alice == Principal("alice", Role.agent, frozenset({"tier1"}), None)
    assert alice.actor == "agent:alice" and alice.scoped
    assert store.authenticate("tok-ops-0123456789").role == Role.admin  # type: ignore[union-attr]
    assert store.authenticate("tok-ops-012345678") is None
    assert store.authenticate("") is None and store.authenticate(None) is None
    assert store.authenticate("x" * 10_000) is None


def test_a_mapping_with_a_tokens_key_is_accepted() -> None:
    store = load_tokens(inline=yaml.safe_dump({"tokens": [entry("a", "auditor", "tok-a-0123456789")]}))
    assert store.authenticate("tok-a-0123456789").role == Role.auditor  # type: ignore[union-attr]


@pytest.mark.parametrize(("items", "message"), [
    ([{"name": "a", "role": "agent", "token_sha256": "0" * 64}], "needs tiers and/or departments"),
    ([{"name": "a", "role": "admin", "token_sha256": "0" * 64, "tiers": ["tier1"]}], "only agent tokens"),
    ([{"name": "a", "role": "root", "token_sha256": "0" * 64}], "role"),
    ([{"name": "a", "role": "admin", "token": "plaintext"}], "token_sha256"),
    ([{"name": "a", "role": "admin", "token_sha256": "abc"}], "token_sha256"),
    ([{"name": "a", "role": "agent", "token_sha256": "0" * 64, "tiers": ["tier9"]}], "unknown tiers tier9"),
    ([{"name": "a", "role": "agent", "token_sha256": "0" * 64, "departments": ["sales"]}], "unknown departments"),
    ([{"name": "a", "role": "admin", "token_sha256": "0" * 64}, {"name": "a", "role": "auditor",
                                                               "token_sha256": "1" * 64}], "duplicate token name"),
    ([{"name": "a", "role": "admin", "token_sha256": "0" * 64}, {"name": "b", "role": "auditor",
                                                               "token_sha256": "0" * 64}], "duplicate token"),
    ({"name": "a"}, "expected a list"),
])
def test_bad_token_configuration_is_refused_with_a_reason(items: object, message: str) -> None:
    with pytest.raises(TokenConfigError, match=message):
        load_tokens(inline=json.dumps(items), policy=load_policy())


def test_missing_file_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(TokenConfigError, match="cannot read"):
        load_tokens(tmp_path / "nope.yaml")
    with pytest.raises(TokenConfigError, match="not valid YAML"):
        load_tokens(inline="[unclosed")


def test_role_permissions() -> None:
    assert ROLE_PERMISSIONS[Role.admin] == frozenset(Permission)
    assert Permission.history not in ROLE_PERMISSIONS[Role.agent] | ROLE_PERMISSIONS[Role.supervisor]
    assert ROLE_PERMISSIONS[Role.auditor] == {Permission.read, Permission.list, Permission.history,
                                              Permission.read_incident, Permission.decode_payloads}
    assert [r for r in Role if Permission.decode_payloads in ROLE_PERMISSIONS[r]] == [
        Role.auditor, Role.admin, Role.operator], "payloads in clear: auditors and admins (and the CLI's operator)"
    assert ROLE_PERMISSIONS[Role.supervisor] - ROLE_PERMISSIONS[Role.agent] == {
        Permission.assign, Permission.escalate_executive, Permission.declare_incident, Permission.read_contact}
    assert [r for r in Role if Permission.read_contact in ROLE_PERMISSIONS[r]] == [
        Role.supervisor, Role.admin, Role.operator], "a customer's contact: supervisors and admins (the console)"
    assert ROLE_PERMISSIONS[Role.monitoring] == {Permission.declare_incident, Permission.read_incident}, \
        "a monitoring token sees no ticket"


def test_a_monitoring_token_may_be_limited_to_its_services() -> None:
    token = "mon-token-of-32-characters-at-least"
    entry = {"name": "pagerbot", "role": "monitoring", "token_sha256": hash_token(token)}
    store = TokenStore([TokenEntry.model_validate({**entry, "services": ["streaming", "billing-api"]})])
    who = store.authenticate(token)
    assert who is not None and who.actor == "monitoring:pagerbot"
    assert who.watches("streaming") and not who.watches("login")
    assert TokenEntry.model_validate(entry).services is None
    with pytest.raises(ValueError, match="only monitoring tokens take services"):
        TokenEntry.model_validate({**entry, "role": "supervisor", "services": ["streaming"]})


def test_scope() -> None:
    p = Principal("a", Role.agent, frozenset({"tier1"}), frozenset({"billing"}))
    assert p.in_scope("tier1", "billing")
    assert not p.in_scope("tier2", "billing") and not p.in_scope("tier1", "general")
    assert Principal("s", Role.supervisor).in_scope("anything", "anywhere")
    assert Principal("a", Role.agent, None, frozenset({"billing"})).in_scope("tier3", "billing")


def test_dev_tokens_are_created_once_and_reused(tmp_path: Path) -> None:
    path, token = dev_tokens(tmp_path / "var")
    assert path == tmp_path / "var" / "dev-tokens.yaml"
    assert stat.S_IMODE((tmp_path / "var" / "dev-token").stat().st_mode) == 0o600
    assert token not in path.read_text()  # only the hash is in the tokens file
    store = load_tokens(path)
    assert store.authenticate(token) == Principal("dev", Role.admin)
    # entries added by hand survive; the token is the same on the next run
    entries = yaml.safe_load(path.read_text())
    entries.append(entry("alice", "agent", "tok-alice-0123456789", departments=["billing"]))
    path.write_text(yaml.safe_dump(entries))
    again_path, again = dev_tokens(tmp_path / "var")
    assert (again_path, again) == (path, token)
    assert load_tokens(path).authenticate("tok-alice-0123456789") is not None


def test_token_helper_prints_a_usable_entry(capsys: pytest.CaptureFixture[str]) -> None:
    main(["new", "alice", "agent", "--tiers", "tier1,tier2", "--departments", "billing"])
    out = capsys.readouterr().out
    token = out.split("it is not stored): ")[1].split()[0]
    listed = yaml.safe_load(out.split("entry for the tokens file:\n", 1)[1])
    store = load_tokens(inline=yaml.safe_dump(listed), policy=load_policy())
    assert store.authenticate(token) == Principal("alice", Role.agent, frozenset({"tier1", "tier2"}),
                                                  frozenset({"billing"}))
