"""Transport states as text: one line per vehicle and per human (for summaries)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxtyping import Int64
from torch import Tensor

if TYPE_CHECKING:
    from empo.worlds.transport.dynamics import TransportWorld


def draw_text(world: TransportWorld, state: Int64[Tensor, " dim"]) -> list[str]:
    """Lines describing one state: the time, then each vehicle, then each human.

    A vehicle line gives its place (a node, or the road it is on with the steps
    left), its seats and who is aboard; a human line gives its place, or the vehicle
    it rides in.

    Parameters
    ----------
    world
        The world the state belongs to.
    state
        One state row.
    """
    p = {k: v[0].tolist() for k, v in world.split(state.reshape(1, -1).cpu()).items()}
    net = world.network
    vehicles = [world.agents[r] for r in world.robots]
    humans = [world.agents[h] for h in world.humans]

    def place(node: int, edge: int, remaining: int, verb: str) -> str:
        if edge < 0:
            return f"at {net.node_names[node]}"
        steps = f"{remaining} step" + ("" if remaining == 1 else "s")
        return f"{verb} {net.edge_label(edge)} ({steps} left)"

    lines = [f"t = {p['t']}"]
    for v, name in enumerate(vehicles):
        aboard = [h for h, ride in zip(humans, p["human_vehicle"]) if ride == v]
        seats = int(world.capacity[v])
        where = place(
            p["vehicle_node"][v], p["vehicle_edge"][v], p["vehicle_remaining"][v], "on"
        )
        carrying = f", carries {', '.join(aboard)}" if aboard else ""
        lines.append(f"{name}: {where}, {seats} seat(s){carrying}")
    for h, name in enumerate(humans):
        ride = p["human_vehicle"][h]
        if ride >= 0:
            lines.append(f"{name}: in {vehicles[ride]}")
            continue
        where = place(
            p["human_node"][h], p["human_edge"][h], p["human_remaining"][h], "walking"
        )
        lines.append(f"{name}: {where}")
    return lines
