"""Stable pseudo-random choices from salted hashes: the same ids and salt give the same
shard, split, sample or seed on every machine, day and Python version (``hash()`` does not).

Every stage that samples or buckets asks here, so a salt means the same thing everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def stable_digest(salt: str | None, value: object) -> bytes:
    """SHA-256 of ``"<salt>:<value>"`` (of ``"<value>"`` without a salt)."""
    text = str(value) if salt is None else f"{salt}:{value}"
    return hashlib.sha256(text.encode()).digest()


def stable_int(salt: str | None, value: object, byteorder: str = "big") -> int:
    """A 64-bit integer from :func:`stable_digest` (buckets, shards, seeds).

    >>> stable_int("s", 42) == stable_int("s", 42) != stable_int("t", 42)
    True
    """
    return int.from_bytes(stable_digest(salt, value)[:8], byteorder)  # type: ignore[arg-type]


def stable_rng(salt: str, value: object) -> np.random.Generator:
    """A numpy generator seeded by ``salt`` and ``value`` (little-endian seed)."""
    return np.random.default_rng(stable_int(salt, value, "little"))


def stable_order(items: Iterable[T], salt: str | None,
                 key: Callable[[T], Any] = lambda x: x) -> list[T]:
    """``items`` in the pseudo-random order of their salted hashes.

    >>> stable_order([1, 2, 3], "s") == stable_order([3, 1, 2], "s")
    True
    """
    return sorted(items, key=lambda item: stable_digest(salt, key(item)))


def stable_sample(items: Iterable[T], cap: int, salt: str) -> list[T]:
    """At most ``cap`` of ``items`` (all when ``cap`` <= 0), sorted; the same inputs, the same
    sample; growing ``cap`` only adds items.

    >>> stable_sample([5, 1, 4, 2], 0, "s"), len(stable_sample(range(10), 3, "s"))
    ([1, 2, 4, 5], 3)
    """
    items = list(items)
    if cap <= 0 or len(items) <= cap:
        return sorted(items)
    return sorted(stable_order(items, salt)[:cap])


def stable_positions(ids: Sequence[int] | np.ndarray, size: int, salt: str) -> np.ndarray:
    """Positions of a stable sample of ``size`` of ``ids``, ascending.

    >>> stable_positions([10, 20, 30], 5, "s").tolist()
    [0, 1, 2]
    """
    keys = [stable_digest(salt, int(i)) for i in ids]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return np.array(sorted(order[:size]), dtype=np.int64)
