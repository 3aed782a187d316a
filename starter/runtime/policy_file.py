"""Reading and validating a policy file (I/O lives here, not in the workflow package)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from starter.runtime.validation import allowed_values, problem
from workflows.common.policy import Policy

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
POLICY_ENV = "ESCALATION_POLICY"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override,type-arg]
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


M = TypeVar("M", bound=BaseModel)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names file, field path and allowed values."""


def policy_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(POLICY_ENV) or DEFAULT_POLICY)


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    return load_model(policy_path(path), Policy, "policy", POLICY_ENV, "tiers, priorities, ...")


def load_model(file: Path, model: type[M], what: str, env: str, sections: str) -> M:
    """A YAML file of ours (policy, directory) as its validated model; every problem names file, path and value."""
    data = read_yaml(file, what, env)
    if not isinstance(data, dict):
        raise PolicyError(f"{file}: the {what} must be a mapping of sections ({sections})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(format_errors(file, exc, f"the {what}")) from exc


def read_yaml(file: Path, what: str, env: str) -> object:
    """A YAML file read strictly (a key twice is an error); its problems name the file."""
    try:
        return yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except FileNotFoundError as exc:
        raise PolicyError(f"{file}: no such {what} file (set {env} or pass a path)") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}: not valid YAML: {exc}") from exc


def format_errors(file: Path | str, exc: ValidationError, what: str = "the policy") -> str:
    lines = [f"{file}: {exc.error_count()} problem(s) in {what}"]
    for err in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = problem(dict(err))
        allowed = allowed_values(dict(err)) or []
        if not all(f"'{a}'" in msg for a in allowed):
            msg = f"{msg}; allowed: {', '.join(allowed)}"
        # Whole-policy checks (cross references) name their own field path in the message.
        lines.append(f"  {where}: {msg}" if where else f"  {msg}")
    return "\n".join(lines)
