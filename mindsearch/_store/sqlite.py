"""The single-machine store: SQLite files in the data folder (what mindsearch has always used)."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from pathlib import Path

from .._sessions import SessionStore
from .base import Lookup

KEY_PREFIX = "msk_"  # a user key as `mindsearch keys add` prints it: recognisable in a config file


def new_key() -> str:
    """A user API key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SqliteSessions:
    """``store.base.Sessions`` over the SQLite ``SessionStore`` (kept as ``sync`` for direct use)."""

    def __init__(self, path: Path, max_turns: int, ttl: float) -> None:
        self.sync = SessionStore(path, max_turns, ttl)

    async def issue(self, owner: str) -> str:
        return self.sync.issue(owner)

    async def lookup(self, session_id: str, owner: str) -> Lookup:
        return self.sync.lookup(session_id, owner)

    async def history(self, session_id: str) -> list[tuple[str, str]]:
        return self.sync.history(session_id)

    async def append(self, session_id: str, question: str, answer: str) -> None:
        self.sync.append(session_id, question, answer)

    async def touch(self, session_id: str) -> None:
        self.sync.touch(session_id)

    async def close(self) -> None:
        self.sync.close()


class SqliteKeys:
    """User API keys in ``keys.sqlite3``: the name and the key's SHA-256, never the key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=5, isolation_level=None, check_same_thread=False)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS api_keys (digest TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, "
                "created REAL NOT NULL)"
            )
            self._conn = conn
        return self._conn

    async def add(self, name: str) -> str:
        key = new_key()
        try:
            self._db.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (key_digest(key), name, time.time()))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"a key named {name!r} exists; remove it first") from exc
        return key

    async def verify(self, token: str) -> str | None:
        if not self.path.exists() and self._conn is None:
            return None  # no key was ever added: do not create the file for a lookup
        row = self._db.execute("SELECT name FROM api_keys WHERE digest = ?", (key_digest(token),)).fetchone()
        return str(row[0]) if row else None

    async def any(self) -> bool:
        if not self.path.exists() and self._conn is None:
            return False
        return self._db.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    async def names(self) -> list[str]:
        if not self.path.exists() and self._conn is None:
            return []
        return [str(r[0]) for r in self._db.execute("SELECT name FROM api_keys ORDER BY created")]

    async def remove(self, name: str) -> bool:
        if not self.path.exists() and self._conn is None:
            return False
        return self._db.execute("DELETE FROM api_keys WHERE name = ?", (name,)).rowcount > 0

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
