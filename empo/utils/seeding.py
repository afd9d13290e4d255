"""Seeds derived from the one ``Parameters.seed`` (DESIGN.md, "Seeds").

Sub-seeds come from :class:`numpy.random.SeedSequence` keyed by a stable CRC32 of a
purpose string, never from Python's salted ``hash()``, so the same parameters give the
same random streams in every process. :func:`solution_digest` fingerprints solution
tensors bit for bit for reproducibility checks.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from typing import Any, Mapping

import numpy as np
import torch
from tensordict import TensorDictBase
from torch import Tensor


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit sub-seed of ``seed`` for one purpose.

    Parameters
    ----------
    seed
        The run's seed (``Parameters.seed``).
    purpose
        What the sub-seed is for, e.g. ``"torch"`` or ``"evaluation"``.

    Returns
    -------
    int
        Deterministic in ``(seed, purpose)``, different across purposes.
    """
    sequence = np.random.SeedSequence(
        entropy=seed, spawn_key=(zlib.crc32(purpose.encode("utf-8")),)
    )
    high, low = sequence.generate_state(2, dtype=np.uint32).tolist()
    return ((high << 32) | low) & (2**63 - 1)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch from ``seed``.

    Parameters
    ----------
    seed
        The run's seed; each library gets its own derived sub-seed.
    """
    random.seed(derive_seed(seed, "random"))
    np.random.seed(derive_seed(seed, "numpy") % 2**32)
    torch.manual_seed(derive_seed(seed, "torch"))


def generator(
    seed: int, purpose: str, device: torch.device | str | None = None
) -> torch.Generator:
    """A torch generator seeded with ``derive_seed(seed, purpose)``.

    Parameters
    ----------
    seed
        The run's seed.
    purpose
        What the generator is for.
    device
        Device of the generator (CPU when ``None``).
    """
    result = torch.Generator(device=device or "cpu")
    result.manual_seed(derive_seed(seed, purpose))
    return result


def _tensors(tree: Any, prefix: str = "") -> list[tuple[str, Tensor]]:
    if isinstance(tree, Tensor):
        return [(prefix, tree)]
    if isinstance(tree, TensorDictBase):
        tree = tree.to_dict()
    if isinstance(tree, Mapping):
        items: list[tuple[str, Tensor]] = []
        for key in sorted(tree, key=str):
            items.extend(_tensors(tree[key], f"{prefix}/{key}"))
        return items
    return []


def solution_digest(tree: Any) -> str:
    """SHA-256 of every tensor in a (nested) mapping or TensorDict, bit for bit.

    Parameters
    ----------
    tree
        Tensors, TensorDicts or mappings of them; keys, shapes, dtypes and bytes
        all enter the digest.

    Returns
    -------
    str
        Hex digest; equal digests mean bit-identical tensors.
    """
    digest = hashlib.sha256()
    for key, tensor in _tensors(tree):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{flat.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
