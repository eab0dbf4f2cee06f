"""One request per key: callers asking for the same thing at the same time share one answer.

Sibling sub-questions often search the same query or read the same page at once. A ``Coalescer``
(one per run) lets the first caller do the work while the others wait for its result, and keeps the
result for later callers of the run when ``keep`` says so (a page read once is not fetched again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Coalescer(Generic[K, T]):
    def __init__(self) -> None:
        self._futures: dict[K, asyncio.Future[T]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._futures

    async def get(
        self, key: K, load: Callable[[], Awaitable[T]], *, keep: Callable[[T], bool] = lambda _: True
    ) -> tuple[T, bool]:
        """``load()``'s result, and whether it was shared (another caller did the work).

        When the caller doing the work is cancelled, a waiting caller does it itself; when ``load``
        raises, the error reaches the caller that ran it, and waiting callers run it again.
        """
        while (future := self._futures.get(key)) is not None:
            try:
                return await asyncio.shield(future), True
            except asyncio.CancelledError:
                task = asyncio.current_task()
                cancelling = task is not None and getattr(task, "cancelling", lambda: 0)() > 0
                if not future.cancelled() or cancelling:  # we were cancelled, not the one loading
                    raise
        future = asyncio.get_running_loop().create_future()
        self._futures[key] = future
        try:
            result = await load()
        except BaseException:
            self._forget(key, future)
            future.cancel()
            raise
        if not keep(result):
            self._forget(key, future)
        future.set_result(result)
        return result, False

    def _forget(self, key: K, future: asyncio.Future[T]) -> None:
        if self._futures.get(key) is future:
            del self._futures[key]
