"""What the server keeps between requests, as interfaces: one SQLite implementation for a single machine
(``store.sqlite``) and one Redis implementation for a fleet (``store.redis``), side by side.
``mindsearch._store.open_store`` picks one from the settings; nothing else looks at which.

They are async because the Redis ones talk over the network; the SQLite ones answer inline (a local query
takes well under a millisecond).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

Lookup = Literal["ok", "unknown", "foreign"]


class Sessions(Protocol):
    """Conversation sessions: server-issued unguessable ids bound to the caller's credential (its
    digest). Another owner's session is ``foreign`` (the API answers 404), a never-issued or expired one
    ``unknown``."""

    async def issue(self, owner: str) -> str: ...

    async def lookup(self, session_id: str, owner: str) -> Lookup: ...

    async def history(self, session_id: str) -> list[tuple[str, str]]: ...

    async def append(self, session_id: str, question: str, answer: str) -> None: ...

    async def touch(self, session_id: str) -> None: ...

    async def close(self) -> None: ...


class PageCache(Protocol):
    """Search results and extracted pages, JSON values that expire (``ttl`` seconds, else the default)."""

    async def lookup(self, kind: str, key: str) -> Any | None: ...

    async def store(self, kind: str, key: str, value: Any, ttl: float | None = None) -> None: ...


class Keys(Protocol):
    """Per-user API keys (``mindsearch keys add NAME``), kept only as their SHA-256 digests."""

    async def add(self, name: str) -> str: ...

    async def verify(self, token: str) -> str | None: ...

    async def any(self) -> bool: ...

    async def names(self) -> list[str]: ...

    async def remove(self, name: str) -> bool: ...

    async def close(self) -> None: ...
