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


class KeyCodec:
    """Exact keys of state rows packed from per-column bounds, or 64-bit hashes.

    With bounds ``low <= row <= high`` (inclusive, per column) whose mixed-radix
    product fits in 63 bits, a row's key is its mixed-radix number
    ``sum_i (row_i - low_i) * stride_i`` (column 0 most significant), so that keys
    identify rows exactly and decode back to them: a set of states is then its
    sorted keys alone, 8 bytes per state. Otherwise (no bounds, or too many bits)
    the key is :func:`hash_rows` and rows must be kept beside their keys.

    Parameters
    ----------
    bounds
        ``[2, dim]`` inclusive lower and upper bounds per column, or ``None``.
    dim
        Width of a state row.
    device
        Where the codec's tables live.
    """

    def __init__(
        self,
        bounds: Int64[Tensor, "2 dim"] | None,
        dim: int,
        device: torch.device | str | None = None,
    ) -> None:
        self.dim = dim
        self.low: Int64[Tensor, " dim"] | None = None
        self.high: Int64[Tensor, " dim"] | None = None
        self.stride: Int64[Tensor, " dim"] | None = None
        self.radix: Int64[Tensor, " dim"] | None = None
        self.bits = 64
        if bounds is None:
            return
        bounds = torch.as_tensor(bounds, dtype=torch.int64, device=device)
        if bounds.shape != (2, dim):
            raise ValueError(
                f"state bounds have shape {tuple(bounds.shape)}, expected {(2, dim)}"
            )
        low, high = bounds[0], bounds[1]
        if bool((high < low).any()):
            column = int(torch.nonzero(high < low)[0])
            raise ValueError(f"state bounds of column {column}: high < low")
        self.low, self.high = low, high
        radix = (high - low + 1).tolist()
        product = 1
        for size in radix:
            product *= size
        self.bits = max(product - 1, 1).bit_length()
        if product > 1 << 63:
            return
        strides = [1] * dim
        for column in reversed(range(dim - 1)):
            strides[column] = strides[column + 1] * radix[column + 1]
        self.stride = torch.tensor(strides, dtype=torch.int64, device=low.device)
        self.radix = high - low + 1
        self._origin = int((low * self.stride).sum())

    @property
    def exact(self) -> bool:
        """Whether keys are exact packings (decodable) rather than hashes."""
        return self.stride is not None

    def keys(self, rows: Int64[Tensor, "... dim"]) -> Int64[Tensor, "..."]:
        """One key per row (packed or hashed)."""
        if self.stride is None:
            return hash_rows(rows)
        if rows.device.type == "cpu":
            return torch.matmul(rows, self.stride) - self._origin
        return (rows * self.stride).sum(-1) - self._origin

    def rows(self, keys: Int64[Tensor, " n"]) -> Int64[Tensor, "n dim"]:
        """Rows of exact keys (inverse of :meth:`keys`)."""
        if self.stride is None:
            raise ValueError("hashed keys cannot be decoded into rows")
        return (
            torch.div(keys[:, None], self.stride, rounding_mode="floor")
            .remainder_(self.radix)
            .add_(self.low)
        )

    def check_rows(self, rows: Int64[Tensor, "... dim"]) -> None:
        """Raise if some row leaves the bounds, naming the column and the row."""
        if self.low is None or len(rows) == 0:
            return
        flat = rows.reshape(-1, self.dim)
        least, most = torch.aminmax(flat, dim=0)
        if bool((least < self.low).any() | (most > self.high).any()):
            outside = (flat < self.low) | (flat > self.high)
            row, column = torch.nonzero(outside)[0].tolist()
            raise ValueError(
                f"state {flat[row].tolist()}: column {column} = {int(flat[row, column])} "
                f"lies outside the world's state_bounds "
                f"[{int(self.low[column])}, {int(self.high[column])}]"
            )
