"""Prometheus metrics of this process: runs, nodes, model calls and tokens, engines, fetches, the cache.

Served at ``/metrics`` by ``mindsearch serve`` in Prometheus' text format (prometheus-client). Every
name starts with ``mindsearch_``; labels hold only names the operator chose (models, engines) and
fixed words (outcomes, steps), never a question, a URL or a key. Without prometheus-client installed
every function here does nothing and ``exposition`` says how to get it.
"""

from __future__ import annotations

from typing import Any

try:
    import prometheus_client as _prom
except ImportError:  # pragma: no cover - a core dependency; kept optional for embedders
    _prom = None  # type: ignore[assignment]

# seconds: from a cached page (milliseconds) to a whole run on a CPU (minutes)
_FAST = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
_SLOW = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

_metrics: dict[str, Any] = {}


def _make() -> None:
    if _prom is None or _metrics:
        return
    p = _prom
    _metrics.update(
        runs_started=p.Counter("mindsearch_runs_started", "Runs started (questions asked)."),
        runs_finished=p.Counter(
            "mindsearch_runs_finished",
            "Runs finished, by outcome: ok (complete answer), incomplete (an answer, not complete), "
            "failed (no answer) or cancelled (the client left).",
            ["outcome"],
        ),
        runs_active=p.Gauge("mindsearch_runs_active", "Runs in progress."),
        run_seconds=p.Histogram(
            "mindsearch_run_duration_seconds", "Wall time of a run, by outcome.", ["outcome"], buckets=_SLOW
        ),
        node_seconds=p.Histogram(
            "mindsearch_node_duration_seconds",
            "Wall time of a sub-question, from its start to its answer or failure, by outcome (ok, failed).",
            ["outcome"],
            buckets=_SLOW,
        ),
        call_seconds=p.Histogram(
            "mindsearch_model_call_duration_seconds",
            "Wall time of one model call, by model, step (rewrite, plan, queries, answer, write, other) "
            "and outcome (ok, truncated, error, cancelled).",
            ["model", "step", "outcome"],
            buckets=_SLOW,
        ),
        first_token_seconds=p.Histogram(
            "mindsearch_model_time_to_first_token_seconds",
            "Time from a model call's request to its first piece of text, by model.",
            ["model"],
            buckets=_SLOW,
        ),
        tokens=p.Counter(
            "mindsearch_model_tokens",
            "Tokens of model calls, by model, type (prompt, completion) and source (server, backend, "
            "tokenizer: counted; estimate: no count was to be had).",
            ["model", "type", "source"],
        ),
        engine_queries=p.Counter(
            "mindsearch_engine_queries",
            "Queries sent to a search engine, by engine and outcome (ok, error, timeout, cancelled); "
            "cached results are not queries.",
            ["engine", "outcome"],
        ),
        engine_seconds=p.Histogram(
            "mindsearch_engine_query_duration_seconds",
            "Wall time of one query to a search engine, by engine.",
            ["engine"],
            buckets=_FAST,
        ),
        fetches=p.Counter(
            "mindsearch_page_fetches",
            "Web pages fetched, by outcome (ok, error, timeout, blocked, cancelled); pages from the cache "
            "are not fetched.",
            ["outcome"],
        ),
        fetch_seconds=p.Histogram(
            "mindsearch_page_fetch_duration_seconds", "Wall time of one page fetch.", buckets=_FAST
        ),
        pages_read=p.Counter(
            "mindsearch_pages_read",
            "Pages a run read (page_read events), by result (ok, failed) and origin (web, cache).",
            ["result", "origin"],
        ),
        cache=p.Counter(
            "mindsearch_cache_lookups",
            "Lookups in the search and page cache, by kind (search, page) and result (hit, miss).",
            ["kind", "result"],
        ),
    )


_make()


def run_started() -> None:
    if _metrics:
        _metrics["runs_started"].inc()
        _metrics["runs_active"].inc()


def run_finished(outcome: str, seconds: float) -> None:
    if _metrics:
        _metrics["runs_finished"].labels(outcome).inc()
        _metrics["runs_active"].dec()
        _metrics["run_seconds"].labels(outcome).observe(seconds)


def node_finished(outcome: str, seconds: float) -> None:
    if _metrics:
        _metrics["node_seconds"].labels(outcome).observe(seconds)


def model_call(
    model: str,
    step: str,
    outcome: str,
    seconds: float,
    first_token: float | None,
    prompt_tokens: int,
    completion_tokens: int,
    source: str,
) -> None:
    if not _metrics:
        return
    _metrics["call_seconds"].labels(model, step, outcome).observe(seconds)
    if first_token is not None:
        _metrics["first_token_seconds"].labels(model).observe(first_token)
    if prompt_tokens:
        _metrics["tokens"].labels(model, "prompt", source).inc(prompt_tokens)
    if completion_tokens:
        _metrics["tokens"].labels(model, "completion", source).inc(completion_tokens)


def engine_query(engine: str, outcome: str, seconds: float) -> None:
    if _metrics:
        _metrics["engine_queries"].labels(engine, outcome).inc()
        if outcome != "cancelled":
            _metrics["engine_seconds"].labels(engine).observe(seconds)


def page_fetch(outcome: str, seconds: float) -> None:
    if _metrics:
        _metrics["fetches"].labels(outcome).inc()
        if outcome != "cancelled":
            _metrics["fetch_seconds"].observe(seconds)


def page_read(ok: bool, cached: bool) -> None:
    if _metrics:
        _metrics["pages_read"].labels("ok" if ok else "failed", "cache" if cached else "web").inc()


def cache_lookup(kind: str, hit: bool) -> None:
    if _metrics:
        _metrics["cache"].labels(kind, "hit" if hit else "miss").inc()


def exposition() -> tuple[bytes, str]:
    """This process's metrics in Prometheus' text format, and its content type."""
    if _prom is None:
        return b"# prometheus-client is not installed: pip install prometheus-client\n", "text/plain"
    return _prom.generate_latest(_prom.REGISTRY), str(_prom.CONTENT_TYPE_LATEST)
