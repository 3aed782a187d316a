"""`make run`'s banner: every export a second terminal needs, and the README's examples use those names."""

from __future__ import annotations

import re
from pathlib import Path

from starter.devstack.stack import Stack, banner
from starter.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def exports(text: str) -> dict[str, str]:
    line = next(line for line in text.splitlines() if line.strip().startswith("export "))
    return dict(pair.split("=", 1) for pair in line.split()[1:])


def test_defaults_export_the_api_address_and_token_only(tmp_path: Path) -> None:
    shown = banner(Stack(tmp_path), 8000, "tok-1", Settings())
    assert exports(shown) == {"API": "http://localhost:8000", "TOKEN": "tok-1"}


def test_a_temporal_connection_other_than_the_default_is_exported(tmp_path: Path) -> None:
    s = Settings(temporal_address="localhost:7300", temporal_namespace="support", escalation_task_queue="tickets")
    shown = banner(Stack(tmp_path, namespace="support", task_queue="tickets"), 8100, "tok-2", s)
    assert exports(shown) == {"API": "http://localhost:8100", "TOKEN": "tok-2", "TEMPORAL_ADDRESS": "localhost:7300",
                              "TEMPORAL_NAMESPACE": "support", "ESCALATION_TASK_QUEUE": "tickets"}


def test_the_readme_examples_use_only_what_the_banner_exports(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    curl_lines = [line for line in readme.splitlines() if line.startswith("curl ")]
    used = {v for line in curl_lines for v in re.findall(r"\$(\w+)", line)}
    assert curl_lines and all("$API/" in line and "http://" not in line for line in curl_lines), "the address is $API"
    assert used <= set(exports(banner(Stack(tmp_path), 8000, "t", Settings()))), used
