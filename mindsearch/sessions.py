"""Conversation history per session, in SQLite in the data directory, for multi-turn use of the server."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


class SessionStore:
    def __init__(self, path: Path, max_turns: int) -> None:
        self.path = path
        self.max_turns = max_turns
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use (and again after ``close``, as a restarted app needs)."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.path), timeout=5, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS turns (session TEXT, turn INTEGER, question TEXT, answer TEXT, "
                "created REAL, PRIMARY KEY (session, turn))"
            )
        return self._conn

    def history(self, session: str) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT question, answer FROM turns WHERE session = ? ORDER BY turn DESC LIMIT ?",
            (session, self.max_turns),
        ).fetchall()
        return [(str(q), str(a)) for q, a in reversed(rows)]

    def append(self, session: str, question: str, answer: str) -> None:
        if self.max_turns == 0:
            return
        row = self._db.execute(
            "SELECT COALESCE(MAX(turn), -1) FROM turns WHERE session = ?", (session,)
        ).fetchone()
        turn = int(row[0]) + 1
        self._db.execute(
            "INSERT INTO turns VALUES (?, ?, ?, ?, ?)", (session, turn, question, answer, time.time())
        )
        self._db.execute(
            "DELETE FROM turns WHERE session = ? AND turn <= ?", (session, turn - self.max_turns)
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
