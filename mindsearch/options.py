"""``RunOptions``: what one request or one call may change, and nothing else.

The model, the prompt style, the fetcher and the cache belong to the engine (they are built once from
its ``Settings``), so a per-run ``temperature`` or ``max_page_bytes`` could only be ignored. Rather than
ignore it, a ``RunOptions`` refuses it with an error that names the setting: unknown fields are
errors. The API takes the same type (422 on anything else) and bounds each number by the server's
own setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._errors import MindSearchError
from .settings import Settings, TimeRangeSetting, check_engines, language_code

Depth = Literal["quick", "normal", "deep"]


class RunOptions(BaseModel):
    """Per-run options. Every field left unset keeps the engine's setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engines: list[str] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Search engines for this run: registered names (the built-ins and installed plugins' "
        "`mindsearch.engines` entry points; a server takes only those it has enabled, GET /v1/engines).",
        json_schema_extra=lambda schema: _engine_enum(schema),
    )
    collections: list[str] | None = Field(
        None,
        max_length=20,
        description="Search only these collections of uploaded documents with the local engine "
        "(POST /v1/documents); the caller's own and the server's shared ones.",
    )
    language: Literal["auto", "en", "zh"] | None = Field(None, description="Answer language.")
    search_language: str | None = Field(
        None,
        max_length=20,
        description="Language of the search results: auto (the question's) or a code such as en, zh, "
        "zh-TW, de, pt-BR; engines that cannot honour a chosen code say so once.",
    )
    time_range: TimeRangeSetting | None = Field(
        None,
        description="Only results from the past day, week, month or year (any: no limit); engines that "
        "cannot honour it say so once.",
    )
    depth: Depth | None = Field(
        None,
        description="quick: the question is searched as one sub-question, with no planner; "
        "normal: the planner splits it; deep: research mode, an outlined report of cited sections.",
    )
    max_nodes: int | None = Field(None, ge=1, le=100, description="Sub-questions in the graph.")
    max_rounds: int | None = Field(None, ge=1, le=50, description="Planner rounds.")
    max_concurrency: int | None = Field(None, ge=1, le=64, description="Sub-questions searched at once.")
    queries_per_node: int | None = Field(None, ge=1, le=3, description="Queries per sub-question.")
    results_per_query: int | None = Field(None, ge=1, le=50, description="Hits asked of each engine.")
    pages_per_node: int | None = Field(None, ge=0, le=20, description="Pages read per sub-question.")
    pages_per_question: int | None = Field(None, ge=0, le=500, description="Pages read per question.")
    passages_per_node: int | None = Field(None, ge=1, le=40, description="Passages shown per sub-question.")
    max_tokens: int | None = Field(None, ge=16, le=32768, description="Max tokens of one model reply.")
    node_timeout: float | None = Field(None, gt=0, description="Seconds for one sub-question.")
    total_timeout: float | None = Field(None, gt=0, description="Seconds for the whole question.")
    research_sections: int | None = Field(None, ge=3, le=8, description="Sections of a report (deep).")
    research_timeout: float | None = Field(None, gt=0, description="Seconds for a report (deep).")
    citation_min_support: float | None = Field(None, ge=0.0, le=1.0, description="See Settings.")
    citation_attach_support: float | None = Field(None, ge=0.0, le=1.0, description="See Settings.")

    @field_validator("engines")
    @classmethod
    def _known_engines(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_engines(value)

    @field_validator("search_language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        return None if value is None else language_code(value)

    def changes(self) -> dict[str, Any]:
        """The settings this run changes (depth is the run's own, not a setting)."""
        return {k: v for k, v in self.model_dump(exclude={"depth"}).items() if v is not None}

    def apply(self, settings: Settings) -> Settings:
        """The engine's settings with this run's changes, validated together."""
        changes = self.changes()
        return settings.with_changes(**changes) if changes else settings


class OptionsError(MindSearchError, ValueError):
    """Per-run options that cannot be honoured; the message says which and why, in one line."""


def run_options(options: RunOptions | Mapping[str, Any] | None) -> RunOptions:
    """Options given as a RunOptions or a plain mapping, validated; unknown names are refused."""
    if options is None:
        return RunOptions()
    if isinstance(options, RunOptions):
        return options
    try:
        return RunOptions.model_validate(dict(options))
    except ValidationError as exc:
        raise OptionsError(describe(exc)) from exc


def describe(exc: ValidationError) -> str:
    """A validation error as one line; an unknown field says it is not a per-run option."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "options"
        if error["type"] == "extra_forbidden":
            hint = "it belongs to the engine's Settings" if where in Settings.model_fields else "unknown"
            parts.append(f"{where}: not a per-run option ({hint}); per-run options are {_NAMES}")
        else:
            parts.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def _engine_enum(schema: dict[str, Any]) -> None:
    """The JSON schema of ``engines`` lists the names registered when the schema is made."""
    from .plugins import ENGINES

    for variant in schema.get("anyOf", [schema]):
        if variant.get("type") == "array":
            variant["items"] = {"type": "string", "enum": ENGINES.names()}


_NAMES = ", ".join(RunOptions.model_fields)
