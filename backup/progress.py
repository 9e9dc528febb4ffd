"""A progress bar on stderr; tqdm turns itself off when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], total: int, what: str, enabled: bool | None) -> Iterator[T]:
    """`enabled` None: a bar on a terminal only; True/False: always/never."""
    return iter(
        tqdm(
            items,
            total=total,
            desc=what,
            unit="chunk",
            file=sys.stderr,
            disable=None if enabled is None else not enabled,
            dynamic_ncols=True,
        )
    )
