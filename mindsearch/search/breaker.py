"""A circuit breaker per search engine: an engine that keeps failing is skipped, not waited for.

Closed, every query goes through; ``max_failures`` failures in a row open the circuit. While open,
queries are refused at once; after ``retry_after`` seconds one trial query goes through (half-open).
A success closes the circuit, a failure opens it for another ``retry_after``.

One transient timeout therefore does not cost an engine the rest of a run (as it did when a failed
engine was dropped for the run), and an engine that is down costs one timeout per ``retry_after``
instead of one per query. A breaker lives as long as its engine object (``breaker_for``), that is across
the runs of one ``MindSearch``: a server that answers many questions stops waiting on a dead engine
after the first failures instead of paying ``search_timeout`` again in every run.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Literal

from .base import SearchEngine

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    def __init__(
        self, max_failures: int = 2, retry_after: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.retry_after = retry_after
        self.clock = clock
        self.failures = 0  # in a row
        self._opened_at: float | None = None
        self._trial = False  # the half-open trial query is out

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "open" if self.retry_in() > 0 else "half-open"

    def retry_in(self) -> float:
        """Seconds until a trial query may go through (0 when closed or due)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.retry_after - self.clock())

    def allow(self) -> bool:
        """Whether a query may go to the engine now; a True when half-open is the one trial."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial:
            self._trial = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures, self._opened_at, self._trial = 0, None, False

    def failed(self) -> None:
        self.failures += 1
        self._trial = False
        if self.failures >= self.max_failures:
            self._opened_at = self.clock()

    def abandoned(self) -> None:
        """The trial query ended without an answer either way (cancelled): the next query is the trial."""
        self._trial = False


_BREAKERS: weakref.WeakKeyDictionary[SearchEngine, CircuitBreaker] = weakref.WeakKeyDictionary()


def breaker_for(engine: SearchEngine, max_failures: int, retry_after: float) -> CircuitBreaker:
    """The engine's breaker, made on first use; the limits given (a run's settings) apply from now on."""
    breaker = _BREAKERS.get(engine)
    if breaker is None:
        breaker = _BREAKERS[engine] = CircuitBreaker(max_failures, retry_after)
    breaker.max_failures, breaker.retry_after = max_failures, retry_after
    return breaker
