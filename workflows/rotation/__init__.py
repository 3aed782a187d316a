"""Rotations: who of several people on duty takes the next ticket (escalation managers), in a deterministic turn
whose state is shared by every worker (one small workflow per pool: Temporal orders the turns).

`rules` is the pure turn-taking; `workflow` the durable shell (not imported here: it runs in the sandbox).
"""

from workflows.rotation.rules import RotationInput, RotationState, rotation_workflow_id, take_turn

__all__ = ["RotationInput", "RotationState", "rotation_workflow_id", "take_turn"]
