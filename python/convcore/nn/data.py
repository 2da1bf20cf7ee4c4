"""A small batch iterator over in-memory arrays (shuffle, batch size, drop_last)."""
from __future__ import annotations

import numpy as np

__all__ = ["batches", "DataLoader"]


def _check(arrays, batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("batches: give at least one array")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if a.ndim == 0 or len(a) != n:
            raise ValueError(f"batches: all arrays need the same first dimension; array 0 has "
                             f"{n} rows, array {i} has shape {a.shape}")
    return arrays, n


def batches(x, y=None, batch_size: int = 32, shuffle: bool = False, drop_last: bool = False,
            seed=None):
    """Yield ``(x_batch, y_batch)`` (or ``x_batch`` when y is None) as numpy arrays.

    ``seed`` (an int or a numpy Generator) fixes the shuffle order.
    """
    arrays, n = _check([x] if y is None else [x, y], batch_size)
    order = np.arange(n)
    if shuffle:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        rng.shuffle(order)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        out = tuple(np.ascontiguousarray(a[idx]) for a in arrays)
        yield out[0] if y is None else out


class DataLoader:
    """Re-iterable ``batches``: each epoch draws a new order from one seeded generator."""

    def __init__(self, x, y=None, batch_size: int = 32, shuffle: bool = False,
                 drop_last: bool = False, seed=None):
        arrays, self.n = _check([x] if y is None else [x, y], batch_size)
        self.x, self.y = arrays[0], (arrays[1] if y is not None else None)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self):
        return batches(self.x, self.y, self.batch_size, self.shuffle, self.drop_last, self.rng)
