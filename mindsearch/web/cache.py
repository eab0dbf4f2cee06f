"""A small SQLite cache with a time to live, for search results and extracted pages.

Asking the same question twice fetches nothing the second time. Values are JSON. Each call is a
sub-millisecond local query, so it runs inline; one connection per cache, in WAL mode so several
processes (CLI and server) can share the file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from .. import _telemetry as telemetry


class Cache:
    def __init__(self, path: Path | None, ttl: float) -> None:
        self.ttl = ttl
        self.enabled = path is not None and ttl > 0
        self._db: sqlite3.Connection | None = None
        if self.enabled and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=5, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS cache (kind TEXT, key TEXT, value TEXT, expires REAL, "
                "PRIMARY KEY (kind, key))"
            )

    def get(self, kind: str, key: str) -> Any | None:
        if self._db is None:
            return None
        value = self._get(kind, key)
        telemetry.cache_lookup(kind, value is not None)  # the hit rate, for /metrics
        return value

    def _get(self, kind: str, key: str) -> Any | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT value, expires FROM cache WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        if row is None:
            return None
        if row[1] < time.time():
            self._db.execute("DELETE FROM cache WHERE kind = ? AND key = ?", (kind, key))
            return None
        return json.loads(row[0])

    def put(self, kind: str, key: str, value: Any, ttl: float | None = None) -> None:
        if self._db is None:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?)",
            (
                kind,
                key,
                json.dumps(value, ensure_ascii=False),
                time.time() + (self.ttl if ttl is None else ttl),
            ),
        )

    # the async face of ``store.base.PageCache``, which the Redis cache shares: a local query runs inline
    async def lookup(self, kind: str, key: str) -> Any | None:
        return self.get(kind, key)

    async def store(self, kind: str, key: str, value: Any, ttl: float | None = None) -> None:
        self.put(kind, key, value, ttl)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
