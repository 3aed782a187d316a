"""Taking turns: the next of the candidates on duty, by a counter that only grows."""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.common.vocabulary import Slug

# More than a run's turns (500 by default): a retried request whose first answer was given in the run before is
# still answered from here after a continue-as-new (the server de-duplicates an Update id only within one run).
RECENT_ANSWERS = 1000


class RotationState(BaseModel):
    pool: Slug
    turns: int = Field(0, description="turns taken so far (all runs)")
    last: str | None = None
    recent: dict[str, str] = Field(default_factory=dict,
                                   description="the last answers by request key (oldest first), across runs")


class RotationInput(BaseModel):
    pool: Slug
    state: RotationState | None = None  # carried through continue-as-new
    turns_per_run: int = Field(500, ge=1, description="turns before it continues as new (its history stays short)")


def rotation_workflow_id(pool: str, task_queue: str) -> str:
    """One rotation per pool and task queue: a rotation runs on the queue of the worker that started it, so workers
    of another queue (another deployment on the same namespace) keep their own rather than wait on one whose
    workers may be gone."""
    return f"rotation-{task_queue}-{pool}"


def take_turn(state: RotationState, candidates: list[str], key: str | None = None) -> tuple[str, RotationState]:
    """The candidate whose turn it is: candidates are ordered by id (the same in every process) and taken round
    robin by the pool's counter, so with the same people on duty each takes every len(candidates)-th ticket. A
    request `key` answered before gets its first answer again, and takes no turn."""
    if key is not None and key in state.recent:
        return state.recent[key], state
    if not candidates:
        raise ValueError("no candidate on duty to take the turn")
    ordered = sorted(set(candidates))
    chosen = ordered[state.turns % len(ordered)]
    recent = state.recent if key is None else dict(list({**state.recent, key: chosen}.items())[-RECENT_ANSWERS:])
    return chosen, state.model_copy(update={"turns": state.turns + 1, "last": chosen, "recent": recent})
