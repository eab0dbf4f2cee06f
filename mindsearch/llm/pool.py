"""Several OpenAI-compatible servers as one model: ``MINDSEARCH_BASE_URL`` listing more than one URL
(comma-separated). Each call goes to the server with the fewest calls in flight from this process (ties
go round in turn); a server that cannot be reached is skipped for ``MINDSEARCH_LLM_COOLDOWN`` seconds and
the call goes to the next one, so one server down costs a failed connection, not a failed run.

This balances within one process. For a fleet, LMDeploy's own ``lmdeploy serve proxy`` or a load balancer
in front of vLLM replicas balances across every process (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator

import aiohttp

from ..settings import Settings
from .base import ChatModel, LLMError, ModelRequest
from .openai import OpenAIModel

log = logging.getLogger("mindsearch.llm")


def base_urls(value: str) -> list[str]:
    """The URLs of ``MINDSEARCH_BASE_URL``: one, or several separated by commas."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _unreachable(exc: LLMError) -> bool:
    """Whether the call failed because the server could not be reached (nothing was answered)."""
    return isinstance(exc.__cause__, aiohttp.ClientConnectionError | asyncio.TimeoutError)


class PooledModel(ChatModel):
    """One model served by several servers: least busy first, the next one when a server is unreachable."""

    def __init__(self, members: list[OpenAIModel], cooldown: float = 30.0) -> None:
        if not members:
            raise ValueError("a pool needs at least one server")
        self.members = members
        self.cooldown = cooldown
        self.style = members[0].style
        self.name = f"{members[0].name.split('@', 1)[0]}@{','.join(m.base_url for m in members)}"
        self.busy = dict.fromkeys(range(len(members)), 0)
        self.down_until = dict.fromkeys(range(len(members)), 0.0)
        self._turn = itertools.count()

    @classmethod
    def from_settings(cls, settings: Settings) -> PooledModel:
        members = [
            OpenAIModel.from_settings(settings.with_changes(base_url=url))
            for url in base_urls(settings.base_url)
        ]
        return cls(members, settings.llm_cooldown)

    def order(self) -> list[int]:
        """Servers to try, best first: reachable ones by calls in flight (ties in turn), then resting ones."""
        now = time.monotonic()
        start = next(self._turn) % len(self.members)
        turn = {index: (index - start) % len(self.members) for index in self.busy}
        return sorted(self.busy, key=lambda i: (self.down_until[i] > now, self.busy[i], turn[i]))

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        failure: LLMError | None = None
        for index in self.order():
            member = self.members[index]
            self.busy[index] += 1
            streamed = False
            try:
                async for piece in member._stream(request):
                    streamed = True
                    yield piece
                return
            except LLMError as exc:
                if streamed or not _unreachable(exc):
                    raise
                self.down_until[index] = time.monotonic() + self.cooldown
                log.warning("model server %s unreachable; trying the next one", member.base_url)
                failure = exc
            finally:
                self.busy[index] -= 1
        assert failure is not None
        raise failure

    async def ready(self) -> None:
        """Ready when any server is (the others are skipped until they answer)."""
        failure: LLMError | None = None
        for index in self.order():
            try:
                await self.members[index].ready()
                return
            except LLMError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        for member in self.members:
            await member.aclose()
