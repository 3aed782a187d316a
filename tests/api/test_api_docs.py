"""The curl examples in the README, executed verbatim against a live API, dev server and worker.

They run with the two variables `make run`'s banner exports, as a reader's shell would have them: $API, the API's
address (here a free port), and $TOKEN, the dev token (made by the same `dev_tokens` function).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from starter.security.auth import dev_tokens
from tests.support.api import ROOT, live_api

DOC = ROOT / "README.md"
DOC_BASE = "$API"


def curl_blocks() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [b for b in blocks if b.lstrip().startswith("curl ")]


def outputs(stdout: str) -> list[dict[str, Any]]:
    """The JSON documents a block printed (one per curl; they are not newline-separated)."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while i < len(stdout):
        if stdout[i].isspace():
            i += 1
            continue
        doc, i = decoder.raw_decode(stdout, i)
        docs.append(doc)
    return docs


# What each example must show, keyed by a piece of its command.
EXPECT: dict[str, Callable[[list[dict[str, Any]]], bool]] = {
    # first: its block also declares an incident (the first key a block contains decides)
    "/v1/intake/chat": lambda o: o[0]["id"] == "streaming-eu"
    and [d["ticket"]["incident_id"] for d in o[1:4]] == ["streaming-eu"] * 3
    and len({d["ticket"]["channel"] for d in o[1:4]}) == 3 and o[4]["total"] == 3 and o[5]["number"] == 1
    and o[7]["kind"] == "incident" and o[8]["resolved_tickets"] == 3 and o[8]["postmortem_id"] == o[7]["id"]
    and o[-1]["status"] == "completed" and Path(o[-1]["kb_article"]).is_file(),
    "-X POST $API/v1/incidents -H": lambda o: o[0]["id"] == "billing-api" and o[1]["changed"] == ["HD-1001"]
    and o[2]["number"] == 1 and o[3]["tickets"] == ["HD-1001"],
    "/HD-2002/survey": lambda o: o[1]["status"] == "closed" and (o[-1] is None or o[-1]["survey_id"] == "survey-HD-2002"),
    "-X POST $API/v1/sponsorships -H": lambda o: o[0]["account_id"] == "cust-1001" and o[1]["check_in_count"] >= 1
    and "sponsorships" in o[-1],
    "/HD-2002/reply": lambda o: "more from you" in [e for e in o[-1]["timeline"]
                                                    if e["action"] == "public_reply"][-1]["summary"],
    "/escalate-to-executive": lambda o: o[1]["escalation_manager"] == "mia" and o[-1]["tier"] == "executive",
    "CON-$RANDOM": lambda o: o[-1]["sla_breached"] is True and o[-1]["tier"] == "tier2",  # the console's example
    "-X POST $API/v1/tickets \\": lambda o: o[-1]["id"] == "HD-1001" and o[-1]["priority"] == "P2",
    "/v1/tickets/HD-1001 -H": lambda o: o[-1]["status"] == "new" and len(o[-1]["clocks"]) == 4,
    "/escalate": lambda o: o[0]["status"] == "open" and o[-1]["tier"] == "tier2",
    "/resolve": lambda o: o[-1]["status"] == "resolved" and [e["actor"] for e in o[-1]["timeline"]
                                                             if e["actor"] != "system:notify"][-1] == "admin:dev",
    "/v1/intake/email": lambda o: o[-1]["outcome"] == "opened" and o[-1]["ticket"]["department"] == "billing",
    "/v1/tickets?": lambda o: [t["id"] for t in o[-1]["tickets"]] == ["HD-1001"],
    "/v1/policy/migrations": lambda o: o[0]["id"] == "HD-3003" and o[-1]["dry_run"] is True
    and o[-1]["to_version"].startswith("lean@") and o[-1]["tickets"][0]["outcome"] == "would_apply"
    and o[-1]["tickets"][0]["ticket_id"] == "HD-3003",
    "/codec/decode": lambda o: o[0]["principal"] == "admin:dev" and o[-1]["payloads"] == [
        {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "ImhlbGxvIg=="}],
    "/v1/metrics": lambda o: o[-1]["group_by"] == "department" and o[-1]["tickets_opened"] >= 1,
    "/v1/audit/replays": lambda o: o[-1]["ok"] is True and o[-1]["histories"] >= 2
    and {v["workflow_id"] for v in o[-1]["verdicts"]} == {"ticket-HD-1001", "ticket-HD-2002"},
    "/readyz": lambda o: o[-1]["status"] == "ready" and "heartbeating worker" in o[-1]["checks"]["worker"],
    "/report": lambda o: o[-1]["ticket_id"] == "HD-1001" and o[-1]["verdict"] == "passed"
    and any(d["what"] == "opened" for d in o[-1]["decisions"]),
}


@pytest.fixture(scope="module")
def api(temporal_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    var = tmp_path_factory.mktemp("var")
    tokens_file, token = dev_tokens(var)
    with live_api(temporal_stack, tokens_file, log_file=var / "api.log") as base:
        yield base, token


def test_the_readme_has_the_examples_the_issue_asks_for() -> None:
    text = "\n".join(curl_blocks())
    for needle in ("-X POST $API/v1/tickets \\", "/escalate", "/resolve", "/v1/intake/email",
                   "/v1/tickets?"):
        assert needle in text, needle
    # every call carries the token, but the probes (no token: a load balancer's health check has none)
    assert all(DOC_BASE in block and ("$TOKEN" in block or "/readyz" in block) for block in curl_blocks())


def test_curl_examples_run_verbatim(api: tuple[str, str]) -> None:
    base, token = api
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "API": base, "TOKEN": token, "HOME": str(Path.home())}
    checked = set()
    for block in curl_blocks():
        check = next((f for key, f in EXPECT.items() if key in block), None)
        for _attempt in range(30):  # listing reads visibility, which trails the last change by a moment
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True,
                                 timeout=60)
            assert run.returncode == 0, f"{block}\nexit {run.returncode}\n{run.stdout}\n{run.stderr}"
            docs = outputs(run.stdout)
            if check is None or check(docs) or "/v1/tickets?" not in block:
                break
            time.sleep(0.2)
        assert check is not None, f"no expectation for this example:\n{block}"
        assert check(docs), f"{block}\n{run.stdout}"
        checked.add(next(k for k in EXPECT if k in block))
    assert checked == set(EXPECT)


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
async def test_docs_pages_work_offline(page_path: str) -> None:
    """/docs (Swagger UI) and /redoc load every asset from this server (a PyPI package), not from a CDN."""
    import httpx

    from starter.http.app import create_app
    from starter.runtime.settings import Settings

    app = create_app(Settings(escalation_tokens="[]"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        page = await client.get(page_path)
        assert page.status_code == 200
        scripts = re.findall(r'src="([^"]+)"', page.text) + re.findall(r'href="([^"]+)"', page.text)
        assert scripts and all(url.startswith("/") for url in scripts), scripts
        for url in scripts:
            assert (await client.get(url)).status_code == 200, url
