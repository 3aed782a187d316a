"""Taking turns: the next of the candidates on duty, by a counter that only grows."""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.common.vocabulary import Slug


class RotationState(BaseModel):
    pool: Slug
    turns: int = Field(0, description="turns taken so far (all runs)")
    last: str | None = None


class RotationInput(BaseModel):
    pool: Slug
    state: RotationState | None = None  # carried through continue-as-new
    turns_per_run: int = Field(500, ge=1, description="turns before it continues as new (its history stays short)")


def rotation_workflow_id(pool: str, task_queue: str) -> str:
    """One rotation per pool and task queue: a rotation runs on the queue of the worker that started it, so workers
    of another queue (another deployment on the same namespace) keep their own rather than wait on one whose
    workers may be gone."""
    return f"rotation-{task_queue}-{pool}"


def take_turn(state: RotationState, candidates: list[str]) -> tuple[str, RotationState]:
    """The candidate whose turn it is: candidates are ordered by id (the same in every process) and taken round
    robin by the pool's counter, so with the same people on duty each takes every len(candidates)-th ticket."""
    if not candidates:
        raise ValueError("no candidate on duty to take the turn")
    ordered = sorted(set(candidates))
    chosen = ordered[state.turns % len(ordered)]
    return chosen, state.model_copy(update={"turns": state.turns + 1, "last": chosen})
