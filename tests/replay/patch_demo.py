"""Three versions of one small workflow (the same type name), for the patching demonstration in test_patching.py:
the one that ran, a change guarded by `workflow.patched`, and the same change unguarded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

NAME = "PatchDemo"
PATCH = "demo-second-reminder"


@workflow.defn(name=NAME)
class Before:
    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(timedelta(hours=1).total_seconds())
        return "reminded once"


@workflow.defn(name=NAME)
class Patched:
    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(timedelta(hours=1).total_seconds())
        if workflow.patched(PATCH):  # new runs remind twice; runs recorded before the change replay as they ran
            await asyncio.sleep(timedelta(hours=1).total_seconds())
            return "reminded twice"
        return "reminded once"


@workflow.defn(name=NAME)
class Unguarded:
    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(timedelta(hours=1).total_seconds())
        await asyncio.sleep(timedelta(hours=1).total_seconds())
        return "reminded twice"
