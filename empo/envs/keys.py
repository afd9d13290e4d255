"""Key names of the environments, policies and transforms (CONTRACTS.md).

Import these instead of retyping strings; a key means one thing everywhere.

Root keys (batch ``[*B]``): :data:`STATE` the world model's state row ``[*B, dim]``
(Int64); :data:`DONE`, :data:`TERMINATED` ``[*B, 1]``; :data:`ROBOT_PROBS` ``[*B,
A_r]`` and :data:`ROBOT_JOINT_ACTION` ``[*B]``, the robots' joint action (mixed radix
over ``world.robots``), written by the robot policy modules. A compiled state id,
where one is needed, is :data:`STATE_ID` ``[*B]``.

Agents are grouped as in TorchRL's multi-agent environments: :data:`HUMANS` (batch
``[*B, H]``) and :data:`ROBOTS` (batch ``[*B, R]``), each with :data:`ACTION`
``[*B, n]``, :data:`ACTION_MASK` ``[*B, n, A_max]``, :data:`REWARD` ``[*B, n, 1]``
(humans: ``U_h(s', g_h)``; robots: 0 from the world, ``U_r`` with
:class:`~empo.envs.power_reward.PowerReward`), :data:`DONE`/:data:`TERMINATED`
``[*B, n, 1]``; the humans also :data:`GOAL` ``[*B, H]`` (goal index in
``world.goal_names`` order) and the policy modules' :data:`PROBS` ``[*B, H, A_h]``.
"""

from __future__ import annotations

__all__ = [
    "ACTION",
    "ACTION_MASK",
    "DONE",
    "GOAL",
    "HUMANS",
    "HUMAN_ACTION",
    "HUMAN_GOAL",
    "HUMAN_MASK",
    "HUMAN_PROBS",
    "HUMAN_REWARD",
    "PROBS",
    "REWARD",
    "ROBOTS",
    "ROBOT_ACTION",
    "ROBOT_JOINT_ACTION",
    "ROBOT_MASK",
    "ROBOT_PROBS",
    "ROBOT_REWARD",
    "STATE",
    "STATE_ID",
    "TERMINATED",
]

STATE = "state"
STATE_ID = "state_id"
HUMANS = "humans"
ROBOTS = "robots"
ACTION = "action"
ACTION_MASK = "action_mask"
REWARD = "reward"
DONE = "done"
TERMINATED = "terminated"
GOAL = "goal"
PROBS = "probs"

HUMAN_ACTION = (HUMANS, ACTION)
HUMAN_MASK = (HUMANS, ACTION_MASK)
HUMAN_REWARD = (HUMANS, REWARD)
HUMAN_GOAL = (HUMANS, GOAL)
HUMAN_PROBS = (HUMANS, PROBS)
ROBOT_ACTION = (ROBOTS, ACTION)
ROBOT_MASK = (ROBOTS, ACTION_MASK)
ROBOT_REWARD = (ROBOTS, REWARD)
ROBOT_PROBS = "robot_probs"
ROBOT_JOINT_ACTION = "robot_joint_action"
