"""Roles and bearer tokens for the HTTP API.

Tokens are configured in a file (ESCALATION_TOKENS_FILE) or inline
(ESCALATION_TOKENS), as a YAML or JSON list of entries:

    - name: alice                 # the actor recorded in timelines is "<role>:<name>", e.g. agent:alice
      role: agent                 # intake | agent | supervisor | auditor | admin | monitoring
      token_sha256: 9f86d08...    # sha256 hex of the token; the token itself is never stored
      tiers: [tier1, tier2]       # agents only: the tiers it sees and acts on (omitted: every tier)
      departments: [billing]      # agents only: the departments (omitted: every department)

A presented token is hashed and compared with every entry in constant time.
`python -m starter.security.auth new NAME ROLE [--tiers ...] [--departments ...]` prints a
new token and the entry to paste into the file.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from starter.client.principal import ROLE_PERMISSIONS, SCOPED_ROLES, Permission, Principal, Role
from workflows.common.policy import Policy
from workflows.common.vocabulary import Slug

__all__ = ["ROLE_PERMISSIONS", "SCOPED_ROLES", "Permission", "Principal", "Role", "TokenStore", "load_tokens"]


TOKEN_ROLES = [r for r in Role if r is not Role.operator]  # the operator is the CLI's, never a token's
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,512}$")
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]


class TokenConfigError(ValueError):
    """A token file that cannot be used; the message says which entry and why."""


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    role: Role
    token_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]
    tiers: Annotated[list[Slug], Field(min_length=1, max_length=50)] | None = None
    departments: Annotated[list[Slug], Field(min_length=1, max_length=200)] | None = None
    services: Annotated[list[Slug], Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _scope(self) -> TokenEntry:
        if self.services is not None and self.role is not Role.monitoring:
            raise ValueError(f"only monitoring tokens take services; a {self.role} token acts on every incident")
        if self.role is Role.operator:
            raise ValueError(f"role operator is the CLI's, not a token's; allowed: {', '.join(TOKEN_ROLES)}")
        scoped = self.tiers is not None or self.departments is not None
        if self.role in SCOPED_ROLES and not scoped:
            raise ValueError(f"an {self.role} token needs tiers and/or departments (its scope)")
        if self.role not in SCOPED_ROLES and scoped:
            raise ValueError(f"only agent tokens take tiers/departments; a {self.role} sees every ticket")
        return self


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "esc_" + secrets.token_urlsafe(32)


class TokenStore:
    def __init__(self, entries: Iterable[TokenEntry] = ()) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for e in entries:
            principal = Principal(e.name, e.role, frozenset(e.tiers) if e.tiers is not None else None,
                                  frozenset(e.departments) if e.departments is not None else None,
                                  frozenset(e.services) if e.services is not None else None)
            self._entries.append((bytes.fromhex(e.token_sha256), principal))

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal whose token this is, or None. Compares against every entry, in constant time each."""
        if not token or len(token) > 512:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest) and found is None:
                found = principal
        return found


def parse_entries(text: str, source: str, policy: Policy | None = None) -> list[TokenEntry]:
    try:
        data = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise TokenConfigError(f"{source}: not valid YAML or JSON: {exc}") from None
    if isinstance(data, dict) and "tokens" in data:
        data = data["tokens"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise TokenConfigError(f"{source}: expected a list of {{name, role, token_sha256, tiers?, departments?}}")
    entries: list[TokenEntry] = []
    for i, item in enumerate(data):
        try:
            entries.append(TokenEntry.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors())
            raise TokenConfigError(f"{source}: entry {i}: {problems}") from None
    if policy is not None:
        for e in entries:
            _known(source, e, "tiers", e.tiers, policy.tier_ids())
            _known(source, e, "departments", e.departments, policy.department_ids())
    return entries


def _known(source: str, e: TokenEntry, what: str, values: list[str] | None, allowed: list[str]) -> None:
    unknown = [v for v in values or [] if v not in allowed]
    if unknown:
        raise TokenConfigError(f"{source}: token {e.name!r}: unknown {what} {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def load_tokens(file: str | os.PathLike[str] | None = None, inline: str | None = None,
                policy: Policy | None = None) -> TokenStore:
    """Entries from the file and the inline variable together; names and hashes must be unique."""
    entries: list[TokenEntry] = []
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenConfigError(f"{file}: cannot read the tokens file: {exc.strerror}") from None
        entries += parse_entries(text, str(file), policy)
    if inline:
        entries += parse_entries(inline, "ESCALATION_TOKENS", policy)
    for attr in ("name", "token_sha256"):
        seen: set[str] = set()
        for e in entries:
            value = getattr(e, attr).lower()
            if value in seen:
                shown = e.name if attr == "name" else f"the token of {e.name!r}"
                raise TokenConfigError(f"duplicate token {attr}: {shown}")
            seen.add(value)
    return TokenStore(entries)


# ----- the development token (`make run`) ---------------------------------------------

DEV_NAME = "dev"


def dev_tokens(var_dir: str | os.PathLike[str]) -> tuple[Path, str]:
    """Create (once) a development admin token; return (tokens file, the token to print).

    The token is kept in `<var>/dev-token` (mode 600) and its hash in
    `<var>/dev-tokens.yaml`; later runs reuse both. Other entries added to the
    YAML file by hand are kept.
    """
    var = Path(var_dir)
    var.mkdir(parents=True, exist_ok=True)
    secret_file, tokens_file = var / "dev-token", var / "dev-tokens.yaml"
    token = secret_file.read_text(encoding="utf-8").strip() if secret_file.exists() else ""
    if not TOKEN_SHAPE.match(token):
        token = new_token()
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
    others: list[dict[str, Any]] = []
    if tokens_file.exists():
        try:
            others = [e.model_dump(exclude_none=True, mode="json")
                      for e in parse_entries(tokens_file.read_text(encoding="utf-8"), str(tokens_file))
                      if e.name != DEV_NAME]
        except TokenConfigError:
            others = []  # a broken dev file is rewritten
    entries = [{"name": DEV_NAME, "role": Role.admin.value, "token_sha256": hash_token(token)}, *others]
    text = ("# Development tokens for `make run` (the dev token itself is in dev-token).\n"
            + yaml.safe_dump(entries, sort_keys=False))
    if not tokens_file.exists() or tokens_file.read_text(encoding="utf-8") != text:
        tokens_file.write_text(text, encoding="utf-8")
    return tokens_file, token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m starter.security.auth", description="API token helper")
    sub = parser.add_subparsers(dest="cmd", required=True)
    new = sub.add_parser("new", help="print a new token and its entry for the tokens file")
    new.add_argument("name")
    new.add_argument("role", choices=[r.value for r in TOKEN_ROLES])
    new.add_argument("--tiers", help="comma-separated (agents)")
    new.add_argument("--departments", help="comma-separated (agents)")
    new.add_argument("--services", help="comma-separated (monitoring: the services whose incidents it declares)")
    args = parser.parse_args(argv)
    token = new_token()
    entry: dict[str, Any] = {"name": args.name, "role": args.role, "token_sha256": hash_token(token)}
    if args.tiers:
        entry["tiers"] = args.tiers.split(",")
    if args.departments:
        entry["departments"] = args.departments.split(",")
    if args.services:
        entry["services"] = args.services.split(",")
    try:
        TokenEntry.model_validate(entry)
    except ValidationError as exc:
        parser.error(str(exc))
    print(f"token (give it to {args.name}; it is not stored): {token}")
    print("entry for the tokens file:")
    print(yaml.safe_dump([entry], sort_keys=False), end="")


if __name__ == "__main__":
    main()
