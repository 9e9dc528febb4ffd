"""What the partition writers need of a database: the one interface of ingestd's two stores
(pg_store.PostgresStore, sqlite_store.SqliteStore)."""

from __future__ import annotations

from typing import Protocol

from ingestd.batch import Batch
from ingestd.db_errors import Verdict


class Store(Protocol):
    def classify(self, error: BaseException) -> Verdict:
        """Whether a write error is transient (retry the batch) or permanent, and its cause."""
        ...

    def write(self, batch: Batch) -> None:
        """Store the batch in one transaction, or raise."""
        ...

    def write_isolating(self, units: list[tuple[str, tuple]]) -> list[tuple[int, Exception]]:
        """Store each unit the database takes, in one transaction; (index, error) of the
        units it refuses."""
        ...


__all__ = ["Store"]
