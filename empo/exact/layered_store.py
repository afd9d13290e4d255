"""Per-state outputs of the layered exact solver: in memory or in ``.npy`` files.

The layered solver (:mod:`empo.exact.layered`) computes every quantity of both phases
for one layer at a time and forgets it afterwards, except what a
:class:`LayeredStore` keeps: the *values* ``v_m``, ``v_e`` and ``v_r`` of every state
(from which any other quantity at any state can be recomputed from its successors,
:meth:`empo.exact.layered.LayeredSolution.quantities`) and the outputs the user
asks for. States are numbered layer by layer (keys sorted within a layer), as in
:class:`~empo.worlds.layers.StateLayers`.

With a directory, each quantity is one ``.npy`` file ``<name>.npy`` of shape
``[states, ...]`` written layer by layer with positioned writes (its pages never
enter the solver's memory) and read back with ``numpy.load(..., mmap_mode="r")``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from jaxtyping import Int64
from torch import Tensor

QUANTITY_AXES: dict[str, str] = {
    "q_m": "hga",
    "pi_h": "hga",
    "v_m": "hg",
    "q_r": "r",
    "pi_r": "r",
    "v_e": "hg",
    "x_h": "h",
    "w_h": "h",
    "u_r": "",
    "v_r": "",
}
"""Per-state axes of every quantity: ``h`` human, ``g`` goal, ``a`` human action,
``r`` robot joint action (``w_h = log2 x_h``, eq. 10)."""

VALUES = ("v_m", "v_e", "v_r")
"""Quantities always stored: every other one is recomputed from them."""


def check_outputs(outputs: Sequence[str]) -> tuple[str, ...]:
    """The stored quantities for ``outputs`` (values first), or a clear error."""
    unknown = [name for name in outputs if name not in QUANTITY_AXES]
    if unknown:
        raise ValueError(
            f"unknown outputs {unknown}; choose from {', '.join(QUANTITY_AXES)}"
        )
    return VALUES + tuple(n for n in dict.fromkeys(outputs) if n not in VALUES)


def floats_per_state(names: Sequence[str], sizes: dict[str, int]) -> int:
    """Floats one state takes in the quantities ``names``."""
    return sum(
        int(np.prod([sizes[axis] for axis in QUANTITY_AXES[name]])) for name in names
    )


class LayeredStore:
    """Arrays ``[states, ...]`` of some quantities, in memory or in ``.npy`` files.

    Parameters
    ----------
    names
        Quantities to keep (keys of :data:`QUANTITY_AXES`).
    num_states
        Number of states.
    sizes
        Size of each axis letter (``h``, ``g``, ``a``, ``r``).
    dtype
        Float dtype of the arrays.
    directory
        Where to write ``<name>.npy``; ``None`` keeps CPU tensors in memory.
    """

    def __init__(
        self,
        names: Sequence[str],
        num_states: int,
        sizes: dict[str, int],
        dtype: torch.dtype,
        directory: str | Path | None = None,
    ) -> None:
        self.names = tuple(names)
        self.num_states = num_states
        self.dtype = dtype
        self.shapes = {
            name: (num_states, *(sizes[axis] for axis in QUANTITY_AXES[name]))
            for name in self.names
        }
        self.directory = Path(directory) if directory is not None else None
        self._tensors: dict[str, Tensor] = {}
        self._offsets: dict[str, int] = {}
        numpy_dtype = torch.empty((), dtype=dtype, device="cpu").numpy().dtype
        for name, shape in self.shapes.items():
            if self.directory is None:
                self._tensors[name] = torch.zeros(shape, dtype=dtype, device="cpu")
                continue
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.path(name)
            with open(path, "wb") as handle:
                np.lib.format.write_array_header_1_0(
                    handle,
                    {"descr": numpy_dtype.str, "fortran_order": False, "shape": shape},
                )
                self._offsets[name] = handle.tell()
                handle.truncate(
                    handle.tell() + int(np.prod(shape)) * numpy_dtype.itemsize
                )

    def path(self, name: str) -> Path:
        """The ``.npy`` file of a quantity (directory stores only)."""
        if self.directory is None:
            raise ValueError("this store keeps its arrays in memory")
        return self.directory / f"{name}.npy"

    def write(self, name: str, start: int, values: Tensor) -> None:
        """Store the rows ``start : start + len(values)`` of a quantity."""
        values = values.detach().to(device="cpu", dtype=self.dtype).contiguous()
        if self.directory is None:
            self._tensors[name][start : start + len(values)] = values
            return
        row = values[0].numel() * values.element_size() if len(values) else 0
        with open(self.path(name), "r+b") as handle:
            data = memoryview(values.numpy()).cast("B")
            offset = self._offsets[name] + start * row
            while len(data):
                written = os.pwrite(handle.fileno(), data, offset)
                data, offset = data[written:], offset + written

    def read(self, name: str, ids: Int64[Tensor, " n"]) -> Tensor:
        """Rows ``ids`` of a quantity, as a CPU tensor."""
        if self.directory is None:
            return self._tensors[name].index_select(0, ids.cpu())
        array = np.load(self.path(name), mmap_mode="r")
        return torch.from_numpy(np.ascontiguousarray(array[ids.cpu().numpy()]))

    def tensor(self, name: str) -> Tensor:
        """A whole quantity (in-memory stores), or a copy of its file's array."""
        if self.directory is None:
            return self._tensors[name]
        array = np.load(self.path(name), mmap_mode="r")
        return torch.from_numpy(np.asarray(array).copy())
