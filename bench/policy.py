"""The bench policy: the default policy (config/policy.yaml) with three changes.

- `reopen_window: 0s`: a resolved ticket closes itself at once, so a lifecycle
  (open, acknowledge, escalate, resolve, close) finishes without waiting;
- P3 (the breach stream): around the clock, acknowledge within `breach_after`
  (30 s by default), one warning at `warn_percent` %, every other target a day,
  so the only deadlines inside a run are one warning and one breach per ticket;
- P4 (the long-lived open tickets): around the clock, day-long targets, so the
  open tickets hold timers but never fire during a run.
P1 and P2 keep the default targets (the lifecycle uses P2: two notifications on open); no priority gets an escalation
manager from the rotation (see below).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starter.runtime.policy_file import load_policy
from workflows.common.policy import Policy

LIFECYCLE_PRIORITY = "P2"
BREACH_PRIORITY = "P3"
LONG_PRIORITY = "P4"
ALWAYS = "around-the-clock"


def bench_policy(breach_after: timedelta = timedelta(seconds=30), warn_percent: tuple[int, ...] = (50,),
                 base: Policy | None = None) -> Policy:
    data: dict[str, Any] = (base or load_policy()).model_dump(mode="json", by_alias=True)
    data["name"] = "bench"
    data["reopen_window"] = "0s"
    tiers = [t["id"] for t in data["tiers"]]
    day = "1d"
    data["priorities"][BREACH_PRIORITY] = {
        "calendar": ALWAYS, "acknowledge": f"{int(breach_after.total_seconds())}s", "resolution": day,
        "customer_update": None, "tier": dict.fromkeys(tiers, day), "warn_at_percent": list(warn_percent),
        "stakeholders": [],
    }
    data["priorities"][LONG_PRIORITY] = {
        "calendar": ALWAYS, "acknowledge": "2d", "resolution": "30d", "customer_update": None,
        "tier": dict.fromkeys(tiers, "2d"), "warn_at_percent": [75], "stakeholders": [],
    }
    # No escalation manager from the rotation: its answer races the lifecycle's actions, so the messages a lifecycle
    # sends (and the baseline mirrors) would vary from run to run. The rotation is measured by its own test.
    data["escalation_managers"] = {"priorities": []}
    return Policy.model_validate(data)
