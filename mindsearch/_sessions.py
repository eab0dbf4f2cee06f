"""Conversation history per session, in SQLite in the data directory, for multi-turn use of the server.

Session ids are issued by the server, never chosen by clients: 256 random bits (``secrets``), stored
only as their SHA-256, so neither a guess nor a copy of the database joins a conversation. Each session
is bound to its owner, a digest of the caller's credential (the bearer token); on a server without a
key there is no credential, and the unguessable id itself is what proves a caller is that client.
A session unused for ``ttl`` seconds is deleted with its history.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Literal

Lookup = Literal["ok", "unknown", "foreign"]
OPEN = "open"  # the owner of every session on a server without a key


def owner_of(token: str | None) -> str:
    """The owner a credential stands for: a digest of the bearer token, or ``OPEN`` without one."""
    if not token:
        return OPEN
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    def __init__(self, path: Path, max_turns: int, ttl: float = 86400.0) -> None:
        self.path = path
        self.max_turns = max_turns
        self.ttl = ttl
        self._conn: sqlite3.Connection | None = None
        self._purged = 0.0

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use (and again after ``close``, as a restarted app needs)."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=5, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA secure_delete=ON")  # deleted history is overwritten, not left in free pages
            # the first schema kept turns under ids that clients chose, readable by anyone who named them
            conn.execute("DROP TABLE IF EXISTS turns")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                "created REAL NOT NULL, used REAL NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS sessions_used ON sessions (used)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS session_turns (key TEXT, turn INTEGER, question TEXT, "
                "answer TEXT, created REAL, PRIMARY KEY (key, turn))"
            )
            self._conn = conn
        return self._conn

    def issue(self, owner: str) -> str:
        """A new session for ``owner``; its id is returned once and stored only as a digest."""
        self.purge()
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (_key(session_id), owner, now, now))
        return session_id

    def lookup(self, session_id: str, owner: str) -> Lookup:
        """``ok`` for a live session of this owner, ``foreign`` for another owner's, else ``unknown``
        (never issued, or expired)."""
        row = self._db.execute(
            "SELECT owner, used FROM sessions WHERE key = ?", (_key(session_id),)
        ).fetchone()
        if row is None or time.time() - float(row[1]) > self.ttl:
            return "unknown"
        if not hmac.compare_digest(str(row[0]).encode(), owner.encode()):
            return "foreign"
        return "ok"

    def history(self, session_id: str) -> list[tuple[str, str]]:
        """The session's last turns, oldest first (callers check ``lookup`` first)."""
        rows = self._db.execute(
            "SELECT question, answer FROM session_turns WHERE key = ? ORDER BY turn DESC LIMIT ?",
            (_key(session_id), self.max_turns),
        ).fetchall()
        return [(str(q), str(a)) for q, a in reversed(rows)]

    def append(self, session_id: str, question: str, answer: str) -> None:
        key, now = _key(session_id), time.time()
        self._db.execute("UPDATE sessions SET used = ? WHERE key = ?", (now, key))
        if self.max_turns == 0:
            return
        row = self._db.execute(
            "SELECT COALESCE(MAX(turn), -1) FROM session_turns WHERE key = ?", (key,)
        ).fetchone()
        turn = int(row[0]) + 1
        self._db.execute(
            "INSERT INTO session_turns VALUES (?, ?, ?, ?, ?)", (key, turn, question, answer, now)
        )
        self._db.execute(
            "DELETE FROM session_turns WHERE key = ? AND turn <= ?", (key, turn - self.max_turns)
        )

    def touch(self, session_id: str) -> None:
        self._db.execute("UPDATE sessions SET used = ? WHERE key = ?", (time.time(), _key(session_id)))

    def purge(self, *, force: bool = False) -> int:
        """Delete expired sessions and their turns (at most once a minute unless forced); how many."""
        now = time.time()
        if now - self._purged < 60 and not force:
            return 0
        self._purged = now
        cutoff = now - self.ttl
        self._db.execute(
            "DELETE FROM session_turns WHERE key IN (SELECT key FROM sessions WHERE used < ?)", (cutoff,)
        )
        return self._db.execute("DELETE FROM sessions WHERE used < ?", (cutoff,)).rowcount

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
