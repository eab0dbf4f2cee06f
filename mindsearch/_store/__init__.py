"""Where the server's shared state lives, chosen in one place (``open_store``): SQLite files in the data
folder when ``MINDSEARCH_REDIS_URL`` is unset (one machine, as always), Redis when it is set (a fleet of
API replicas and workers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..settings import Settings
from .base import Keys, Lookup, PageCache, Sessions

__all__ = ["Keys", "Lookup", "PageCache", "Sessions", "Store", "open_cache", "open_store"]


@dataclass
class Store:
    """The sessions and user keys of one server (or worker), and the Redis client when there is one."""

    sessions: Sessions
    keys: Keys
    redis: Any | None = None  # redis.asyncio.Redis

    async def close(self) -> None:
        await self.sessions.close()
        await self.keys.close()
        if self.redis is not None:
            await self.redis.aclose()


def open_store(settings: Settings) -> Store:
    """The one place that picks SQLite or Redis."""
    if settings.redis_url:
        from .redis import RedisKeys, RedisSessions, connect

        client = connect(settings)
        prefix = settings.redis_prefix
        return Store(
            RedisSessions(client, prefix, settings.max_history_turns, settings.session_ttl),
            RedisKeys(client, prefix),
            client,
        )
    from .sqlite import SqliteKeys, SqliteSessions

    return Store(
        SqliteSessions(
            settings.data_dir / "sessions.sqlite3", settings.max_history_turns, settings.session_ttl
        ),
        SqliteKeys(settings.data_dir / "keys.sqlite3"),
    )


def open_cache(settings: Settings) -> tuple[PageCache, Any]:
    """The search and page cache, with what closes it: SQLite in the data folder, or Redis."""
    if settings.redis_url:
        from .redis import RedisCache, connect

        client = connect(settings)
        return RedisCache(client, settings.redis_prefix, settings.cache_ttl), client.aclose
    from ..web.cache import Cache

    cache = Cache(settings.data_dir / "cache.sqlite3", settings.cache_ttl)

    async def close() -> None:
        cache.close()

    return cache, close
