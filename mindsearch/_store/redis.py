"""The fleet store: every replica and worker shares one Redis (``MINDSEARCH_REDIS_URL``).

Keys are ``<prefix>:...``; everything that should not outlive its use expires on Redis' side (a session
``session_ttl`` after its last use, a cached page after ``cache_ttl``), so no replica has to clean up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from .. import _telemetry as telemetry
from ..settings import Settings
from .base import Lookup
from .sqlite import key_digest, new_key

try:
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:  # pragma: no cover - the [redis] extra is missing; open_store says so
    aioredis = None  # type: ignore[assignment]
    RedisConnectionError = RedisTimeoutError = OSError  # type: ignore[assignment,misc]

Redis = Any  # redis.asyncio.Redis with decode_responses=True (its stubs are not generic here)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


def connect(settings: Settings) -> Redis:
    """A client for ``settings.redis_url``: strings in and out, bounded connect and command times."""
    if aioredis is None:
        raise ImportError("MINDSEARCH_REDIS_URL needs the redis client: pip install 'mindsearch[redis]'")
    assert settings.redis_url is not None
    return aioredis.from_url(  # type: ignore[no-untyped-call]
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
        retry_on_timeout=False,
        health_check_interval=30,
    )


def where(settings: Settings) -> str:
    """The Redis address without user info or path, for messages that clients and logs may see."""
    parts = urlsplit(settings.redis_url or "")
    return f"{parts.hostname or '?'}:{parts.port or 6379}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _seconds(ttl: float) -> int:
    return max(1, math.ceil(ttl))


class RedisSessions:
    """Sessions as ``<prefix>:session:<sha256(id)>`` (owner, created) and ``...:turns`` (a capped list)."""

    def __init__(self, client: Redis, prefix: str, max_turns: int, ttl: float) -> None:
        self.client, self.prefix, self.max_turns, self.ttl = client, prefix, max_turns, ttl

    def _keys(self, session_id: str) -> tuple[str, str]:
        base = f"{self.prefix}:session:{_digest(session_id)}"
        return base, base + ":turns"

    async def issue(self, owner: str) -> str:
        session_id = secrets.token_urlsafe(32)
        record, _turns = self._keys(session_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(record, mapping={"owner": owner, "created": time.time()})
            pipe.expire(record, _seconds(self.ttl))
            await pipe.execute()
        return session_id

    async def lookup(self, session_id: str, owner: str) -> Lookup:
        stored = await self.client.hget(self._keys(session_id)[0], "owner")
        if stored is None:
            return "unknown"
        if not hmac.compare_digest(str(stored).encode(), owner.encode()):
            return "foreign"
        return "ok"

    async def history(self, session_id: str) -> list[tuple[str, str]]:
        if self.max_turns == 0:
            return []
        rows = await self.client.lrange(self._keys(session_id)[1], -self.max_turns, -1)
        return [(str(q), str(a)) for q, a in (json.loads(row) for row in rows)]

    async def append(self, session_id: str, question: str, answer: str) -> None:
        record, turns = self._keys(session_id)
        async with self.client.pipeline(transaction=True) as pipe:
            if self.max_turns > 0:
                pipe.rpush(turns, json.dumps([question, answer], ensure_ascii=False))
                pipe.ltrim(turns, -self.max_turns, -1)
            pipe.expire(record, _seconds(self.ttl))
            pipe.expire(turns, _seconds(self.ttl))
            await pipe.execute()

    async def touch(self, session_id: str) -> None:
        record, turns = self._keys(session_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.expire(record, _seconds(self.ttl))
            pipe.expire(turns, _seconds(self.ttl))
            await pipe.execute()

    async def close(self) -> None:
        return None  # the client is the store's, closed once


class RedisCache:
    """The search and page cache as ``<prefix>:cache:<kind>:<sha256(key)>`` with Redis' own expiry."""

    def __init__(self, client: Redis, prefix: str, ttl: float) -> None:
        self.client, self.prefix, self.ttl = client, prefix, ttl
        self.enabled = ttl > 0

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:cache:{kind}:{_digest(key)}"

    async def lookup(self, kind: str, key: str) -> Any | None:
        if not self.enabled:
            return None
        raw = await self.client.get(self._key(kind, key))
        telemetry.cache_lookup(kind, raw is not None)
        return json.loads(raw) if raw is not None else None

    async def store(self, kind: str, key: str, value: Any, ttl: float | None = None) -> None:
        ttl = self.ttl if ttl is None else ttl
        if not self.enabled or ttl <= 0:
            return
        payload = json.dumps(value, ensure_ascii=False)
        await self.client.set(self._key(kind, key), payload, px=max(1, int(ttl * 1000)))

    def close(self) -> None:
        return None


class RedisKeys:
    """User API keys: ``<prefix>:keys`` maps each key's SHA-256 to its name, ``:keynames`` the reverse."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.by_digest, self.by_name = f"{prefix}:keys", f"{prefix}:keynames"

    async def add(self, name: str) -> str:
        key = new_key()
        digest = key_digest(key)
        if not await self.client.hsetnx(self.by_name, name, digest):
            raise ValueError(f"a key named {name!r} exists; remove it first")
        await self.client.hset(self.by_digest, digest, name)
        return key

    async def verify(self, token: str) -> str | None:
        name = await self.client.hget(self.by_digest, key_digest(token))
        return str(name) if name is not None else None

    async def any(self) -> bool:
        return bool(await self.client.hlen(self.by_digest))

    async def names(self) -> list[str]:
        return sorted(str(n) for n in await self.client.hkeys(self.by_name))

    async def remove(self, name: str) -> bool:
        digest = await self.client.hget(self.by_name, name)
        if digest is None:
            return False
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.by_name, name)
            pipe.hdel(self.by_digest, digest)
            await pipe.execute()
        return True

    async def close(self) -> None:
        return None
