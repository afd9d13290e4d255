"""Successors found by the layered enumeration, kept on disk for the backward pass.

:func:`~empo.worlds.layers.enumerate_layers` computes the successors of every base
(state, canonical joint action) pair of the world (:func:`~empo.worlds.layers.expand`);
the layered exact solver needs the same successors again, layer by layer, last
layer first. Instead of calling the world model a second time, the enumeration can
append each base's live successors (packed keys and probabilities, merged and in key
order, :func:`~empo.worlds.layers.merge_outcomes`) to three flat files per layer, and
the solver reads them back in the same order. Only the work that is cheap compared
with the world model's dynamics is redone: the expansion into bases and variants and
the search of the successor keys.

Per base the files hold one count (``uint8``), and per live successor one key
(``int64``) and one probability (``float64``): about 16 bytes per base and outcome,
written once and read once (the solver deletes a layer's files once read), so the
solver's memory still grows with the largest layer only.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int64
from torch import Tensor

_PARTS = {"counts": np.uint8, "keys": np.int64, "probs": np.float64}

SENTINEL = torch.iinfo(torch.int64).max


class TransitionCache:
    """Per-layer files of the bases' merged successors (see the module docstring).

    Parameters
    ----------
    directory
        Where the files go (created); ``None`` makes a temporary directory that
        :meth:`close` removes.
    scratch
        Where that temporary directory goes (``None``: the system's, ``TMPDIR``);
        e.g. a run's directory, so that gigabytes of successors land on its disk
        and not in a memory-backed ``/tmp``.
    """

    def __init__(
        self, directory: str | Path | None = None, scratch: str | Path | None = None
    ) -> None:
        self._owned = directory is None
        if directory is None:
            directory = tempfile.mkdtemp(prefix="empo-transitions-", dir=scratch)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.bases: dict[int, int] = {}
        self._read: dict[int, tuple[int, int]] = {}

    def path(self, layer: int, part: str) -> Path:
        """The file of one part (``counts``, ``keys``, ``probs``) of a layer."""
        return self.directory / f"layer{layer}.{part}"

    def append(
        self,
        layer: int,
        keys: Int64[Tensor, "base k"],
        probabilities: Float[Tensor, "base k"],
    ) -> None:
        """Append the successors of the next bases of ``layer`` (merged: live
        entries first, :data:`SENTINEL` keys and probability 0 after them)."""
        live = probabilities > 0
        self.append_flat(layer, live.sum(dim=1), keys[live], probabilities[live])

    def append_flat(
        self,
        layer: int,
        counts: Int64[Tensor, " base"],
        keys: Int64[Tensor, " entry"],
        probabilities: Float[Tensor, " entry"],
    ) -> None:
        """Append the next bases of ``layer`` given flat: each base's number of
        live successors, then their keys and probabilities in base order."""
        if len(counts) and int(counts.max()) > np.iinfo(np.uint8).max:
            raise ValueError("more than 255 distinct successors of one base")
        arrays = {
            "counts": counts.to(torch.uint8),
            "keys": keys,
            "probs": probabilities.to(torch.float64),
        }
        for part, values in arrays.items():
            with open(self.path(layer, part), "ab") as handle:
                handle.write(values.cpu().numpy().tobytes())
        self.bases[layer] = self.bases.get(layer, 0) + len(counts)

    def segment(
        self,
        layer: int,
        bases: tuple[int, int],
        entries: tuple[int, int],
        device: torch.device | str | None = None,
    ) -> tuple[
        Int64[Tensor, " base"], Int64[Tensor, " entry"], Float[Tensor, " entry"]
    ]:
        """Bases ``bases[0]:bases[1]`` of ``layer`` as stored (their counts) and
        entries ``entries[0]:entries[1]`` (keys and probabilities), on ``device``,
        read without moving :meth:`take`'s position."""
        parts = []
        for part, (low, high) in (
            ("counts", bases),
            ("keys", entries),
            ("probs", entries),
        ):
            dtype = np.dtype(_PARTS[part])
            if high == low:
                parts.append(torch.from_numpy(np.empty(0, dtype=dtype)))
                continue
            parts.append(
                torch.from_numpy(
                    np.fromfile(
                        self.path(layer, part),
                        dtype=dtype,
                        count=high - low,
                        offset=low * dtype.itemsize,
                    )
                )
            )
        return (
            parts[0].to(device, torch.int64),
            parts[1].to(device),
            parts[2].to(device),
        )

    def take(
        self, layer: int, bases: int, device: torch.device | str | None = None
    ) -> tuple[Int64[Tensor, "base k"], Float[Tensor, "base k"]]:
        """The next ``bases`` bases of ``layer`` (in the order appended), padded
        to their most successors with :data:`SENTINEL` keys and probability 0, on
        ``device`` (default the CPU).

        Raises
        ------
        RuntimeError
            If fewer bases are left than asked for.
        """
        base, entry = self._read.get(layer, (0, 0))
        if base + bases > self.bases.get(layer, 0):
            raise RuntimeError(
                f"transition cache of layer {layer}: {bases} bases asked at base "
                f"{base}, {self.bases.get(layer, 0)} stored"
            )
        if bases == 0:
            return (
                torch.full((0, 1), SENTINEL, device=device),
                torch.zeros(0, 1, dtype=torch.float64, device=device),
            )
        counts = np.fromfile(
            self.path(layer, "counts"), dtype=np.uint8, count=bases, offset=base
        ).astype(np.int64)
        total = int(counts.sum())
        flat = {
            part: torch.from_numpy(
                np.fromfile(
                    self.path(layer, part),
                    dtype=_PARTS[part],
                    count=total,
                    offset=entry * np.dtype(_PARTS[part]).itemsize,
                )
            )
            for part in ("keys", "probs")
        }
        self._read[layer] = (base + bases, entry + total)
        width = max(int(counts.max()) if bases else 1, 1)
        # the live entries travel to the device, padded there
        counts_t = torch.from_numpy(counts).to(device)
        live = torch.arange(width, device=device)[None, :] < counts_t[:, None]
        keys = torch.full((bases, width), SENTINEL, dtype=torch.int64, device=device)
        probabilities = torch.zeros(bases, width, dtype=torch.float64, device=device)
        keys[live] = flat["keys"].to(device)
        probabilities[live] = flat["probs"].to(device)
        return keys, probabilities

    def drop(self, layer: int) -> None:
        """Delete a layer's files (all of its bases must have been read).

        Raises
        ------
        RuntimeError
            If some of the layer's bases were not read.
        """
        stored = self.bases.pop(layer, 0)
        read = self._read.pop(layer, (0, 0))[0]
        for part in _PARTS:
            self.path(layer, part).unlink(missing_ok=True)
        if read != stored:
            raise RuntimeError(
                f"transition cache of layer {layer}: {read} of {stored} bases read"
            )

    def close(self) -> None:
        """Delete every remaining file (and the directory, if it was made here)."""
        for layer in list(self.bases):
            for part in _PARTS:
                self.path(layer, part).unlink(missing_ok=True)
        self.bases.clear()
        self._read.clear()
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)
