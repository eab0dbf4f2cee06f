"""What the HTTP search APIs share: one aiohttp session per engine, JSON in and out, clear errors."""

from __future__ import annotations

from typing import Any

import aiohttp

from .base import SearchEngine, SearchError
from .failures import log, raw, reason


class HttpEngine(SearchEngine):
    def __init__(self, *, timeout: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            async with self.session().request(
                method, url, params=params, json=json, headers=headers
            ) as response:
                if response.status == 429:
                    raise SearchError(f"{self.name}: rate limited (HTTP 429)")
                if response.status in (401, 403):
                    raise SearchError(f"{self.name}: the API key was refused (HTTP {response.status})")
                if response.status >= 400:
                    raise SearchError(f"{self.name}: HTTP {response.status}")
                return await response.json(content_type=None)
        except SearchError:
            raise
        except TimeoutError as exc:
            raise SearchError(f"{self.name}: no answer within {self.timeout.total:g} s") from exc
        except ValueError as exc:  # not JSON
            log.info("%s: unreadable reply from %s: %s", self.name, url, raw(exc))
            raise SearchError(f"{self.name}: the reply is not JSON") from exc
        except (aiohttp.ClientError, OSError) as exc:
            log.info("%s: %s failed: %s", self.name, url, raw(exc))
            raise SearchError(f"{self.name}: {reason(exc)}") from exc

    check_url: str = ""

    async def check(self) -> tuple[bool, str]:
        """Reachable when the endpoint answers at all (any HTTP status)."""
        url = self.check_url or getattr(self, "url", "")
        try:
            async with self.session().get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                return True, f"{url} answered HTTP {response.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("%s: %s cannot be reached: %s", self.name, url, raw(exc))
            return False, f"{url} cannot be reached: {reason(exc)}"

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
