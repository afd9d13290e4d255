"""64-bit hashing of integer state rows, used by the compiler to identify states.

The hash is built from the splitmix64 finaliser, a bijection of 64-bit words: each
salted column is XORed into the key and the key is remixed, so rows that differ in a
single column never collide. The compiler still checks every pair of rows with equal
keys and raises on a collision instead of merging states.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Int64
from torch import Tensor

_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX_1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX_2 = 0x94D049BB133111EB - (1 << 64)
_OFFSET = 0x632BE59BD9B4E019


def _shift_right_logical(x: Int64[Tensor, "..."], bits: int) -> Int64[Tensor, "..."]:
    """Unsigned right shift of int64 values (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix64(x: Int64[Tensor, "..."]) -> Int64[Tensor, "..."]:
    """The splitmix64 finaliser: a bijection of 64-bit words with full avalanche."""
    x = (x ^ _shift_right_logical(x, 30)) * _MIX_1
    x = (x ^ _shift_right_logical(x, 27)) * _MIX_2
    return x ^ _shift_right_logical(x, 31)


def hash_rows(rows: Int64[Tensor, "... dim"]) -> Int64[Tensor, "..."]:
    """64-bit hash of integer rows.

    Each salted column is XORed into the key, which is then remixed by the splitmix64
    finaliser; the finaliser is a bijection, so rows that differ in a single column
    never collide. On the CPU the same arithmetic runs in NumPy's unsigned 64-bit
    integers (about twice as fast as emulating logical shifts in torch).

    Parameters
    ----------
    rows
        Integer state encodings, last axis the state width.

    Returns
    -------
    Tensor
        One key per row.
    """
    if rows.device.type == "cpu":
        return _hash_rows_numpy(rows)
    return _hash_rows_torch(rows)


def _hash_rows_torch(rows: Int64[Tensor, "... dim"]) -> Int64[Tensor, "..."]:
    """:func:`hash_rows` in torch's signed int64 arithmetic (any device)."""
    key = torch.full(rows.shape[:-1], _OFFSET, dtype=torch.int64, device=rows.device)
    for column in range(rows.shape[-1]):
        salt = ((column + 1) * _GOLDEN + (1 << 63)) % (1 << 64) - (1 << 63)
        key = _mix64(key ^ (rows[..., column].to(torch.int64) + salt))
    return key


def _hash_rows_numpy(rows: Int64[Tensor, "... dim"]) -> Int64[Tensor, "..."]:
    """:func:`hash_rows` of CPU rows, computed in ``numpy.uint64`` (wrap-around)."""
    words = rows.to(torch.int64).contiguous().numpy().view(np.uint64)
    key = np.full(words.shape[:-1], _OFFSET, dtype=np.uint64)
    scratch = np.empty_like(key)
    for column in range(words.shape[-1]):
        salt = np.uint64(((column + 1) * _GOLDEN) % (1 << 64))
        np.add(words[..., column], salt, out=scratch)
        key ^= scratch
        for shift, factor in ((30, _MIX_1), (27, _MIX_2), (31, None)):
            np.right_shift(key, np.uint64(shift), out=scratch)
            key ^= scratch
            if factor is not None:
                key *= np.uint64(factor % (1 << 64))
    return torch.from_numpy(key.view(np.int64))
