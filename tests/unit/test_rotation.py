"""Taking turns among the people on duty: deterministic, fair, and independent of the order they are listed in."""

from __future__ import annotations

from collections import Counter

import pytest

from workflows.rotation import RotationState, take_turn
from workflows.rotation.rules import RECENT_ANSWERS


def turns(n: int, candidates: list[str], state: RotationState | None = None) -> list[str]:
    state = state or RotationState(pool="managers")
    out = []
    for _ in range(n):
        chosen, state = take_turn(state, candidates)
        out.append(chosen)
    return out


def test_two_on_duty_split_2n_turns_n_n() -> None:
    assert Counter(turns(10, ["mia", "leo"])) == {"mia": 5, "leo": 5}


def test_the_order_of_the_list_does_not_matter() -> None:
    assert turns(4, ["mia", "leo"]) == turns(4, ["leo", "mia"]) == ["leo", "mia", "leo", "mia"]


def test_the_counter_carries_on_from_a_saved_state() -> None:
    """Through continue-as-new: the next turn after 3 is the 4th, not the 1st again."""
    assert turns(1, ["a", "b", "c"], RotationState(pool="managers", turns=3)) == ["a"]
    assert turns(1, ["a", "b", "c"], RotationState(pool="managers", turns=4)) == ["b"]


def test_nobody_on_duty_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="no candidate"):
        take_turn(RotationState(pool="managers"), [])


def test_a_request_answered_before_gets_its_first_answer_again_even_after_continue_as_new() -> None:
    first, state = take_turn(RotationState(pool="managers"), ["a", "b"], "T-1:find-manager")
    carried = RotationState.model_validate(state.model_dump())  # what continue-as-new hands the next run
    again, after = take_turn(carried, ["a", "b"], "T-1:find-manager")
    assert (first, again) == ("a", "a") and after.turns == 1, "no second turn for a retry"
    assert take_turn(after, ["a", "b"], "T-2:find-manager")[0] == "b"


def test_the_answers_kept_are_bounded_and_the_oldest_go_first() -> None:
    state = RotationState(pool="managers")
    for i in range(RECENT_ANSWERS + 5):
        _, state = take_turn(state, ["a"], f"k{i}")
    assert len(state.recent) == RECENT_ANSWERS and "k0" not in state.recent and f"k{RECENT_ANSWERS + 4}" in state.recent
