"""Layer-by-layer exact solving of worlds whose states carry their layer (issue 19).

The in-memory solver (:func:`empo.exact.solve`) holds the dense ``[S, J, K]``
successor table of a compiled world and every quantity of every state. Worlds with a
layer column (the time step of MultiGrid and transport worlds; every transition leads
to a later layer) need neither:

1. :func:`~empo.worlds.layers.enumerate_layers` lists the reachable states as sorted
   packed keys per layer (8 bytes a state) and can keep every base's successors on
   disk (:class:`~empo.worlds.transition_cache.TransitionCache`);
2. one backward pass, last layer first, reads each layer's transitions back (or
   regenerates them from the world model), block by block (only distinct action
   effects are stored or computed, :func:`~empo.worlds.layers.expand`), finds the
   successors in the later layers by their keys, takes each distinct effect's
   expected successor values once into small tables (so that the kernels'
   per-joint-action reads stay in the caches and need one outcome), and runs
   phase 1 (eqs. 1-3) and then phase 2 (eqs. 4-9) on the
   chunk with the in-memory solver's own per-chunk kernels
   (:func:`~empo.exact.phase1.phase1_chunk`, :func:`~empo.exact.phase2.phase2_chunk`):
   phase 2 at a state needs only that state's ``pi_h`` and its successors' values,
   so both phases share one pass;
3. only the successor values (``V^m``/``V^e`` targets and ``V_r``) of the layers that
   earlier layers still read are kept (two adjacent layers in a time-step world);
   ``v_m``, ``v_e``, ``v_r`` and the requested outputs go to a
   :class:`~empo.exact.layered_store.LayeredStore` (memory or ``.npy`` files).

Peak memory thus grows with the largest layer, not with the number of layers. The
same code runs on any device (the state keys, values and chunks live on ``device``;
only the store is on the CPU). Per-state and per-goal human-model tensors
(:class:`~empo.exact.human_model.HumanModel`) are not supported: the scalar
``theory`` parameters apply.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from jaxtyping import Float, Int64
from torch import Tensor
from tqdm.auto import tqdm

from empo.exact.human_model import HumanModel
from empo.exact.layered_store import QUANTITY_AXES, LayeredStore, check_outputs
from empo.exact.layout import Layout
from empo.exact.phase1 import phase1_chunk
from empo.exact.phase2 import phase2_chunk
from empo.parameters.theory import TheoryParameters
from empo.theory import goal_backup, power_bits
from empo.utils.memory import device_gib, rss_gib
from empo.worlds.budget import StateBudget
from empo.worlds.compiled import CompiledWorld
from empo.worlds.layers import (
    PAIRS_PER_BATCH,
    StateLayers,
    enumerate_kept,
    expand,
    per_agent_actions,
    successor_keys,
    variant_successors,
)
from empo.worlds.transition_cache import TransitionCache

logger = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 2**20
"""Working memory of the kernels on one chunk of states."""


def chunk_states(model: Any, outcomes: int, item: int, budget: int) -> int:
    """States per chunk so that a chunk's tensors fit in ``budget`` bytes.

    Per state: the ``[J, K]`` successor ids and probabilities (and their copy in
    canonical order) and a few ``[J, human * goal]`` gathered intermediates.
    """
    joint = math.prod(len(names) for names in model.action_names)
    columns = len(model.humans) * int(model.goal_weights.shape[1])
    per_state = joint * (4 * columns * item + 2 * outcomes * (8 + item) + 16)
    return max(1, budget // per_state)


@dataclass
class _Values:
    """Successor values of one solved layer: eq. (1)/(6) targets and ``V_r``.

    ``target_m`` has one more row, of ``+inf`` (read by disallowed robot actions in
    eq. 1), so that a single held layer is a successor table without a copy.
    """

    target_m: Float[Tensor, "n_plus_one human_goal"]
    target_e: Float[Tensor, "n human_goal"]
    v_r: Float[Tensor, " n"]


@dataclass
class LayerStats:
    """Progress of one layer of the backward pass."""

    layer: int
    states: int
    seconds: float
    rss_gib: float


@dataclass
class _Context:
    """What every chunk of one solve shares."""

    model: Any
    theory: TheoryParameters
    layers: StateLayers
    per_agent: Int64[Tensor, "joint agent"]
    device: torch.device
    dtype: torch.dtype
    goal_weights: Float[Tensor, "human goal"]
    joint_order: Int64[Tensor, " joint"] | None = None
    seconds: dict[str, float] = field(
        default_factory=lambda: dict(transitions=0.0, phase1=0.0, phase2=0.0)
    )

    @property
    def order(self) -> list[int]:
        """The agents with the humans first and the robots last."""
        return [*self.model.humans, *self.model.robots]

    def canonical_joint(self) -> Int64[Tensor, " joint"]:
        """The world's joint action of each joint action of the agents in
        :attr:`order` (the solver's canonical order, :mod:`empo.exact.layout`)."""
        counts = [len(names) for names in self.model.action_names]
        strides = [math.prod(counts[i + 1 :]) for i in range(len(counts))]
        rest = torch.arange(math.prod(counts), device=self.device)
        joint = torch.zeros_like(rest)
        for agent in reversed(self.order):
            joint += (rest % counts[agent]) * strides[agent]
            rest = torch.div(rest, counts[agent], rounding_mode="floor")
        return joint

    def chunk_world(
        self,
        rows: Int64[Tensor, "n dim"],
        successors: Int64[Tensor, "n joint k"],
        probabilities: Float[Tensor, "n joint k"],
        mask: Tensor,
    ) -> CompiledWorld:
        """A compiled world of the chunk's states, its agents in :attr:`order` (so
        that its joint actions are already in canonical order); successor ids index
        the successor tables."""
        model, order = self.model, self.order
        member = model.goal_membership(rows).to(torch.bool)
        humans = len(model.humans)
        return CompiledWorld(
            agents=tuple(model.agents[a] for a in order),
            humans=tuple(range(humans)),
            robots=tuple(range(humans, len(order))),
            action_names=tuple(tuple(model.action_names[a]) for a in order),
            action_mask=mask[:, order],
            successors=successors,
            probabilities=probabilities,
            terminal=torch.zeros(len(rows), dtype=torch.bool, device=self.device),
            goal_membership=member.permute(1, 2, 0).contiguous(),
            goal_weights=self.goal_weights,
            goal_names=tuple(tuple(n) for n in model.goal_names),
            height=None,
            initial_state=0,
            rest_action=tuple(model.rest_action[a] for a in order),
        )


Tables = tuple[Int64[Tensor, " n"], Tensor, Tensor, Tensor]
"""Successor table rows of the live successors and the tables of eqs. (1), (6), (4)."""


def _solve_chunk(
    ctx: _Context,
    rows: Int64[Tensor, "n dim"],
    tables: Any,
    chunk: int,
    cached: Callable[[int], tuple[Tensor, Tensor]] | None = None,
) -> dict[str, Tensor]:
    """Both phases at non-terminal ``rows`` from their successors' values.

    The transitions of all ``rows`` are regenerated at once; the kernels run on
    chunks of ``chunk`` states (small enough for the caches). ``tables(keys,
    rows)`` receives the live successors' keys (and rows, for hashed keys) and
    returns :data:`Tables`: their rows in the successor tables, the eq. (1) targets
    (ending with a row of ``+inf``, read by disallowed robot actions), the eq. (6)
    targets and ``V_r``. ``cached(bases)``, where given, returns the next bases'
    successor keys and probabilities kept by the enumeration
    (:meth:`~empo.worlds.transition_cache.TransitionCache.take`) instead of
    calling the world model. Returns every quantity of
    :data:`~empo.exact.layered_store.QUANTITY_AXES`.
    """
    codec = ctx.layers.codec
    started = time.perf_counter()
    expansion = expand(ctx.model, rows, ctx.per_agent, codec, slots=True)
    if cached is not None:
        base_keys, base_probabilities = cached(len(expansion.base_state))
        keys, probabilities = variant_successors(
            base_keys.to(ctx.device), base_probabilities.to(ctx.device), expansion
        )
    else:
        keys, probabilities, base_rows = successor_keys(
            ctx.model, rows, expansion, codec
        )
    live = probabilities > 0
    live_rows = None
    if not codec.exact:
        live_rows = base_rows.index_select(0, expansion.variant_base)[live]
    found, table_m, table_e, table_r = tables(keys[live], live_rows)
    ids = torch.zeros_like(keys)
    ids[live] = found
    slot = expansion.slot
    if ctx.joint_order is not None:
        slot = slot.index_select(1, ctx.joint_order)
    first = torch.searchsorted(
        expansion.variant_state, torch.arange(len(rows) + 1, device=ctx.device)
    ).tolist()
    ctx.seconds["transitions"] += time.perf_counter() - started
    parts: dict[str, list[Tensor]] = {}
    for low in range(0, len(rows), chunk):
        high = min(low + chunk, len(rows))
        begin, end = first[low], first[high]
        # each variant's expected successor values, gathered once from the
        # layer's tables into small tables that the kernels then read as
        # deterministic successors (eqs. 1, 4 and 6 are linear in them)
        successors = ids[begin:end]
        chance = probabilities[begin:end].to(ctx.dtype)
        local_m = torch.cat([_per_variant(table_m, successors, chance), table_m[-1:]])
        local_e = _per_variant(table_e, successors, chance)
        local_r = _per_variant(table_r[:, None], successors, chance)[:, 0]
        dead = end - begin
        part = slot[low:high] - begin
        part = part.masked_fill_((part < 0) | (part >= dead), dead)
        shape = (high - low, slot.shape[1], 1)
        world = ctx.chunk_world(
            rows[low:high],
            part.view(shape),
            (part < dead).to(ctx.dtype).view(shape),
            expansion.mask[low:high],
        )
        for name, value in _kernels(ctx, world, local_m, local_e, local_r).items():
            parts.setdefault(name, []).append(value)
    return {name: torch.cat(values) for name, values in parts.items()}


def _per_variant(
    table: Float[Tensor, "successor column"],
    successors: Int64[Tensor, "variant k"],
    chance: Float[Tensor, "variant k"],
) -> Float[Tensor, "variant column"]:
    """``sum_k P_k table[s'_k]`` per variant, outcomes in order; outcomes ``k >= 1``
    are read only where their probability is positive (merged outcomes: the first
    one always is), so infinite ``table`` entries of dead outcomes never count."""
    out = table.index_select(0, successors[:, 0]).mul_(chance[:, :1])
    for k in range(1, successors.shape[1]):
        live = torch.nonzero(chance[:, k] > 0).flatten()
        if len(live):
            rows = table.index_select(0, successors[:, k].index_select(0, live))
            out.index_add_(0, live, rows.mul_(chance[live, k, None]))
    return out


def _kernels(
    ctx: _Context,
    world: CompiledWorld,
    table_m: Tensor,
    table_e: Tensor,
    table_r: Tensor,
) -> dict[str, Tensor]:
    """Phases 1 and 2 on every state of a chunk world (the in-memory kernels)."""
    started = time.perf_counter()
    layout = Layout(world)
    humans = HumanModel().resolve(world, ctx.theory)
    local = torch.arange(world.num_states, device=ctx.device)
    q_m, pi_h, v_m = phase1_chunk(layout, humans, ctx.theory, table_m, local)
    middle = time.perf_counter()
    q_r, pi_r, v_e, x_h, u_r, v_r = phase2_chunk(
        layout, ctx.theory, pi_h, table_e, table_r, local
    )
    ctx.seconds["phase1"] += middle - started
    ctx.seconds["phase2"] += time.perf_counter() - middle
    return dict(
        q_m=q_m,
        pi_h=pi_h,
        v_m=v_m,
        q_r=q_r,
        pi_r=pi_r,
        v_e=v_e,
        x_h=x_h,
        w_h=power_bits(x_h),
        u_r=u_r,
        v_r=v_r,
    )


def _targets(
    ctx: _Context, member: Tensor, v_m: Tensor, v_e: Tensor, v_r: Tensor
) -> _Values:
    """Successor values of states with values ``v_m``, ``v_e``, ``v_r``."""
    gamma = ctx.theory.gamma_h
    target_m = torch.empty(
        len(v_r) + 1, v_m[0].numel(), dtype=ctx.dtype, device=ctx.device
    )
    target_m[:-1] = goal_backup(member, v_m, gamma).flatten(1)
    target_m[-1] = math.inf
    return _Values(target_m, goal_backup(member, v_e, gamma).flatten(1), v_r)


def _held_tables(
    held: dict[int, _Values], readers: list[int]
) -> tuple[dict, Tensor, Tensor, Tensor]:
    """Offsets of the held layers and their concatenated successor tables."""
    offsets, start = {}, 0
    for index in readers:
        offsets[index] = start
        start += len(held[index].v_r)
    parts = [held[index] for index in readers]
    if len(parts) == 1:
        return offsets, parts[0].target_m, parts[0].target_e, parts[0].v_r
    target_m = [p.target_m[:-1] for p in parts] + [parts[0].target_m[-1:]]
    return (
        offsets,
        torch.cat(target_m),
        torch.cat([p.target_e for p in parts]),
        torch.cat([p.v_r for p in parts]),
    )


def layer_sizes(model: Any) -> dict[str, int]:
    """Sizes of the axis letters of :data:`~empo.exact.layered_store.QUANTITY_AXES`."""
    counts = [len(names) for names in model.action_names]
    return dict(
        h=len(model.humans),
        g=int(model.goal_weights.shape[1]),
        a=max(counts[h] for h in model.humans),
        r=math.prod(counts[r] for r in model.robots),
    )


def _zeros(ctx: _Context, names: Sequence[str], n: int) -> dict[str, Tensor]:
    """Zero arrays of quantities for ``n`` states (``v_r = terminal_v_r``)."""
    sizes = layer_sizes(ctx.model)
    out = {
        name: torch.zeros(
            (n, *(sizes[a] for a in QUANTITY_AXES[name])),
            dtype=ctx.dtype,
            device=ctx.device,
        )
        for name in names
    }
    if "v_r" in out:
        out["v_r"].fill_(ctx.theory.terminal_v_r)
    return out


@dataclass
class LayeredSolution:
    """The result of :func:`solve_layered`.

    States are numbered layer by layer, keys sorted within a layer
    (:class:`~empo.worlds.layers.StateLayers`); ``store`` holds ``v_m``, ``v_e``,
    ``v_r`` and the requested outputs per state, and :meth:`quantities` recomputes
    every quantity at any reachable state from its successors' stored values (so a
    rollout needs only the values of the states it visits).

    Attributes
    ----------
    model
        The world model.
    theory
        The theory parameters.
    layers
        The enumerated states.
    store
        Per-state arrays.
    seconds
        Wall-clock seconds of the ``"enumeration"`` and of the ``"solve"`` (both
        phases), and within the solve those spent regenerating ``"transitions"``
        and in the ``"phase1"`` and ``"phase2"`` kernels (on CUDA, queued work is
        counted where it is waited for).
    layer_stats
        Per layer (in layer order): states, seconds, resident memory afterwards.
    stats
        Empty (the solution was not trained).
    """

    model: Any
    theory: TheoryParameters
    layers: StateLayers
    store: LayeredStore
    seconds: dict[str, float]
    layer_stats: list[LayerStats]
    context: _Context = field(repr=False)
    stats: dict[str, int | float] = field(default_factory=dict)

    @property
    def num_states(self) -> int:
        """Number of reachable states."""
        return self.layers.num_states

    @property
    def initial_id(self) -> int:
        """State id of the initial state."""
        layers = self.layers
        return layers.offsets[layers.initial_layer] + layers.initial_position

    def state_ids(self, states: Int64[Tensor, "batch dim"]) -> Int64[Tensor, " batch"]:
        """Ids of state rows (``KeyError`` for a row that is not reachable)."""
        states = states.to(device=self.context.device, dtype=torch.int64)
        layers = self.layers
        held = {index: offset for index, offset in enumerate(layers.offsets[:-1])}
        rows = None if layers.codec.exact else states
        return layers.find(layers.codec.keys(states), rows, held)

    def state_rows(self, ids: Int64[Tensor, " batch"]) -> Int64[Tensor, "batch dim"]:
        """State rows of ids."""
        layers = self.layers
        offsets = torch.tensor(layers.offsets, device=ids.device)
        layer = torch.searchsorted(offsets, ids, right=True) - 1
        out = torch.empty(
            len(ids), self.model.state_dim, dtype=torch.int64, device=ids.device
        )
        for index in layer.unique().tolist():
            chosen = torch.nonzero(layer == index).flatten()
            position = ids.index_select(0, chosen) - layers.offsets[index]
            out.index_copy_(0, chosen, layers.rows(index).index_select(0, position))
        return out

    def __getitem__(self, name: str) -> Tensor:
        """A stored quantity for every state (CPU tensor)."""
        if name not in self.store.names:
            raise KeyError(f"{name!r} was not stored; stored: {self.store.names}")
        return self.store.tensor(name)

    def quantities(self, states: Int64[Tensor, "batch dim"]) -> dict[str, Tensor]:
        """Every quantity of both phases at ``states``.

        Recomputed from the stored values of their successors with the solver's
        own kernels; zeros (``v_r = terminal_v_r``) at terminal states.
        """
        ctx = self.context
        states = states.to(device=ctx.device, dtype=torch.int64)
        live = torch.nonzero(~ctx.model.is_terminal(states).to(torch.bool)).flatten()
        out = _zeros(ctx, tuple(QUANTITY_AXES), len(states))
        if len(live) == 0:
            return out
        with torch.inference_mode():
            values = _solve_chunk(
                ctx, states.index_select(0, live), self._tables, len(live)
            )
        for name, value in values.items():
            out[name].index_copy_(0, live, value.to(ctx.dtype))
        return out

    def _tables(self, keys: Tensor, rows: Tensor | None) -> Tables:
        """Successor tables of just the given states, from the stored values."""
        ctx = self.context
        if rows is None:
            rows = self.layers.codec.rows(keys)
        ids = self.state_ids(rows)
        unique, inverse = torch.unique(ids, return_inverse=True)
        member = ctx.model.goal_membership(self.state_rows(unique)).to(torch.bool)
        read = {
            name: self.store.read(name, unique).to(device=ctx.device, dtype=ctx.dtype)
            for name in ("v_m", "v_e", "v_r")
        }
        values = _targets(ctx, member, read["v_m"], read["v_e"], read["v_r"])
        return inverse, values.target_m, values.target_e, values.v_r

    def robot_probs(self, states: Int64[Tensor, "batch dim"]) -> Tensor:
        """``pi_r(s)`` over joint robot actions (eq. 5); 0 at terminal states."""
        return self.quantities(states)["pi_r"]

    def human_probs(
        self, states: Int64[Tensor, "batch dim"], goals: Int64[Tensor, "batch human"]
    ) -> Tensor:
        """``pi_h(s, g_h)`` of each human for its goal index (eq. 2)."""
        pi_h = self.quantities(states)["pi_h"]
        index = goals.to(pi_h.device)[:, :, None, None]
        return pi_h.gather(2, index.expand(-1, -1, 1, pi_h.shape[-1])).squeeze(2)

    def human_power(self, states: Int64[Tensor, "batch dim"]) -> Tensor:
        """``X_h(s)`` (eq. 7)."""
        return self.quantities(states)["x_h"]

    def robot_values(self, states: Int64[Tensor, "batch dim"]) -> Tensor:
        """``V_r(s)`` (eq. 9); ``terminal_v_r`` at terminal states."""
        return self.store.read("v_r", self.state_ids(states))

    def tabulate(self, world: CompiledWorld | None = None) -> None:
        """``None``: a layered solution is not laid out on a compiled world."""
        return None


def _check_model(model: Any) -> None:
    """Refuse world models the layered solver cannot solve, naming why."""
    if not hasattr(model, "layer_column"):
        raise ValueError(
            "the layered exact solver needs a world model with a layer column "
            "(layer_column, e.g. the time step); use the in-memory solver"
        )
    roles = set(model.humans) | set(model.robots)
    if roles != set(range(len(model.agents))):
        missing = [model.agents[a] for a in range(len(model.agents)) if a not in roles]
        raise ValueError(f"agents {missing} are neither humans nor robots")
    if not model.humans:
        raise ValueError("the world has no human: power is undefined")


def solve_layered(
    world: Any,
    theory: TheoryParameters | None = None,
    *,
    layers: StateLayers | None = None,
    budget: StateBudget | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
    directory: str | Path | None = None,
    outputs: Sequence[str] = (),
    chunk_bytes: int = CHUNK_BYTES,
    progress: bool = False,
) -> LayeredSolution:
    """Solve phases 1 and 2 exactly, layer by layer (see the module docstring).

    Parameters
    ----------
    world
        A world model with ``layer_column`` (MultiGrid, transport, ...).
    theory
        Theory parameters (default: the paper's recommendation).
    layers
        The world's enumerated layers, if already known (else enumerated here).
        Successors they keep (``layers.transitions``, see
        :func:`~empo.worlds.layers.enumerate_layers`) are read instead of
        regenerated, and deleted once read.
    budget
        State and memory budget, checked during enumeration.
    device, dtype
        Where and in which float precision to compute.
    directory
        Where the per-state arrays go as ``<name>.npy``; ``None`` keeps them in
        memory.
    outputs
        Quantities to store besides ``v_m``, ``v_e`` and ``v_r`` (any of ``q_m``,
        ``pi_h``, ``q_r``, ``pi_r``, ``x_h``, ``w_h``, ``u_r``).
    chunk_bytes
        Working memory of one chunk of states.
    progress
        Show a progress bar over the states.

    Returns
    -------
    LayeredSolution
        The stored arrays and a way to compute every quantity at any state.

    Raises
    ------
    BudgetExceededError
        If the world needs more states or memory than ``budget`` allows.
    ValueError
        For worlds without layers or humans, or unknown outputs.
    """
    theory = theory if theory is not None else TheoryParameters()
    _check_model(world)
    names = check_outputs(outputs)
    device = torch.device(device) if device is not None else torch.device("cpu")
    if layers is None:
        layers = enumerate_kept(
            world, budget=budget, device=device, chunk_bytes=chunk_bytes
        )
    cache, layers.transitions = layers.transitions, None
    try:
        return _backward(
            world,
            theory,
            layers,
            cache,
            device,
            dtype,
            directory,
            names,
            chunk_bytes,
            progress,
        )
    finally:
        if cache is not None:
            cache.close()


def _backward(
    world: Any,
    theory: TheoryParameters,
    layers: StateLayers,
    cache: TransitionCache | None,
    device: torch.device,
    dtype: torch.dtype,
    directory: str | Path | None,
    names: tuple[str, ...],
    chunk_bytes: int,
    progress: bool,
) -> LayeredSolution:
    """The backward pass of :func:`solve_layered` over enumerated ``layers``
    (successors read from ``cache`` where given, else regenerated)."""
    started = time.perf_counter()
    ctx = _Context(
        model=world,
        theory=theory,
        layers=layers,
        per_agent=per_agent_actions([len(n) for n in world.action_names], device),
        device=device,
        dtype=dtype,
        goal_weights=world.goal_weights.to(device=device, dtype=dtype),
    )
    joint_order = ctx.canonical_joint()
    if not torch.equal(joint_order, torch.arange(len(joint_order), device=device)):
        ctx.joint_order = joint_order
    store = LayeredStore(names, layers.num_states, layer_sizes(world), dtype, directory)
    item = dtype.itemsize
    chunk = chunk_states(world, layers.max_outcomes, item, chunk_bytes)
    block = max(chunk, PAIRS_PER_BATCH // ctx.per_agent.shape[0])
    offsets = layers.offsets
    held: dict[int, _Values] = {}
    stats: list[LayerStats] = []
    bar = tqdm(
        total=layers.num_states, disable=not progress, unit="state", desc="exact"
    )
    with torch.inference_mode(), bar:
        for index in reversed(range(len(layers.keys))):
            begin = time.perf_counter()
            rows = layers.rows(index)
            member = world.goal_membership(rows).to(torch.bool)
            out = _zeros(ctx, names, len(rows))
            live = torch.nonzero(~world.is_terminal(rows).to(torch.bool)).flatten()
            if len(live):
                held_at, table_m, table_e, table_r = _held_tables(held, sorted(held))

                def tables(keys: Tensor, found: Tensor | None) -> Tables:
                    ids = ctx.layers.find(keys, found, held_at)
                    return ids, table_m, table_e, table_r

                cached = (
                    None if cache is None else partial(cache.take, index, device=device)
                )
                for ids in torch.split(live, block):
                    values = _solve_chunk(
                        ctx, rows.index_select(0, ids), tables, chunk, cached
                    )
                    for name in names:
                        out[name].index_copy_(0, ids, values[name].to(dtype))
                    bar.update(len(ids))
            bar.update(len(rows) - len(live))
            if cache is not None:
                cache.drop(index)
            held[index] = _targets(ctx, member, out["v_m"], out["v_e"], out["v_r"])
            for name in names:
                store.write(name, offsets[index], out[name])
            for done in [j for j in held if layers.first_reader[j] >= index]:
                del held[done]
            stats.append(
                LayerStats(
                    layers.values[index],
                    len(rows),
                    time.perf_counter() - begin,
                    rss_gib(),
                )
            )
            _report(bar, stats[-1], device)
    return LayeredSolution(
        model=world,
        theory=theory,
        layers=layers,
        store=store,
        seconds={
            "enumeration": layers.seconds,
            "solve": time.perf_counter() - started,
            **ctx.seconds,
        },
        layer_stats=stats[::-1],
        context=ctx,
    )


def _report(bar: Any, stats: LayerStats, device: torch.device) -> None:
    """Progress of one solved layer: the bar's postfix and one log line."""
    rate = stats.states / max(stats.seconds, 1e-9)
    extra = f", device {device_gib(device):.2f} GiB" if device.type != "cpu" else ""
    bar.set_postfix_str(
        f"layer {stats.layer}: {stats.states} states, {stats.seconds:.1f} s, "
        f"RSS {stats.rss_gib:.2f} GiB{extra}"
    )
    logger.info(
        "layer %d: %d states in %.2f s (%.0f states/s), RSS %.2f GiB%s",
        stats.layer,
        stats.states,
        stats.seconds,
        rate,
        stats.rss_gib,
        extra,
    )
