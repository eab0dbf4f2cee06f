"""The typed, versioned event stream: the only contract between the engine and what renders it.

The CLI, the REST API and the UI read these events and nothing else. Every event is a pydantic model
with a ``type`` tag and the schema version ``v``; ``Event`` is their discriminated union, and
``event_json_schema()`` is what ``docs/events.schema.json`` holds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 3

RewriteStatus = Literal["none", "rewritten", "unchanged", "failed"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[2] = 2  # the version these events last changed in; see docs/events.md "Versioning"


class _Event3(BaseModel):
    """An event new in version 3 (research mode). It says ``v: 3`` while the events unchanged since
    version 2 still say ``v: 2``, so a version-2 reader that skips what it cannot read keeps reading them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[3] = 3


class PlannedNode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    question: str
    depends_on: list[str] = Field(default_factory=list)


class Reference(BaseModel):
    """One numbered source: a web page (url) or a local document (path in ``url``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int
    title: str
    url: str


class Hit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str
    title: str
    snippet: str
    engine: str


class RunStarted(_Event):
    """``question`` is what is searched: the follow-up rewritten to stand alone when there is history.

    ``rewrite`` says what became of the follow-up: ``none`` (no history, nothing to rewrite),
    ``rewritten`` (``question`` is the rewrite of ``asked``), ``unchanged`` (the model found it stands
    alone) or ``failed`` (the follow-up is searched as asked; ``rewrite_error`` says why).
    ``run_id`` names the run in the server's logs, metrics and traces.
    """

    type: Literal["run_started"] = "run_started"
    run_id: str = ""
    question: str
    asked: str = ""
    language: Literal["en", "zh"]
    llm: str
    engines: list[str]
    rewrite: RewriteStatus = "none"
    rewrite_error: str = ""


class Plan(_Event):
    """One planner round: the nodes it added, and whether it said the plan is finished.

    A round that recovered from a bad planner reply is a plan, not an error: ``note`` says how in a few
    words ("repaired after one round", "used the question as one sub-question") and ``recovered_from``
    what was wrong with the reply.
    """

    type: Literal["plan"] = "plan"
    round: int
    added: list[PlannedNode]
    finish: bool
    note: str = ""
    recovered_from: str = ""


class NodeStarted(_Event):
    type: Literal["node_started"] = "node_started"
    node_id: str
    question: str


class NodeRewritten(_Event):
    """A sub-question was changed before it was searched; ``was`` is the question as planned.

    A dependent sub-question that names a parent's answer (``#1`` in MuSiQue-style plans) is rewritten
    with that parent's short answer, so readers see the question that was really searched.
    """

    type: Literal["node_rewritten"] = "node_rewritten"
    node_id: str
    question: str
    was: str


class Queries(_Event):
    type: Literal["queries"] = "queries"
    node_id: str
    queries: list[str]


class SearchResults(_Event):
    type: Literal["search_results"] = "search_results"
    node_id: str
    query: str
    hits: list[Hit]


class PageRead(_Event):
    type: Literal["page_read"] = "page_read"
    node_id: str
    url: str
    title: str = ""
    chars: int = 0
    ok: bool = True
    cached: bool = False
    error: str | None = None


class Sources(_Event):
    """The sources whose passages are shown to the model for a sub-question, numbered as it sees them."""

    type: Literal["sources"] = "sources"
    node_id: str
    references: list[Reference]


class NodeAnswerDelta(_Event):
    type: Literal["node_answer_delta"] = "node_answer_delta"
    node_id: str
    text: str


class NodeDone(_Event):
    """A sub-question finished; ``answer`` cites ``references`` with numbers local to this node.

    ``short_answer`` is the answer in a few words (an entity, a date), without citations: what a
    dependent sub-question is given, and what evaluation scores.
    """

    type: Literal["node_done"] = "node_done"
    node_id: str
    ok: bool
    answer: str
    references: list[Reference]
    error: str | None = None
    short_answer: str = ""


class AnswerDelta(_Event):
    type: Literal["answer_delta"] = "answer_delta"
    text: str


class CitationDropped(_Event):
    """A citation the model wrote that points at no source, or at one that does not support the sentence."""

    type: Literal["citation_dropped"] = "citation_dropped"
    node_id: str | None = None
    marker: str
    reason: Literal["dangling", "unsupported"]


UsageSource = Literal["server", "backend", "tokenizer", "estimate"]


class Usage(BaseModel):
    """The tokens of one model call, and how they were counted.

    ``source``: ``server`` (the model server reported them), ``backend`` (the in-process backend counted
    what it ran), ``tokenizer`` (counted with the model's own tokenizer on the text sent and received;
    a chat template's few tokens are not in it) or ``estimate`` (no count was to be had: about four
    characters, or one CJK character, per token). An estimate is never passed off as a count.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    total_tokens: int = Field(0, ge=0)
    source: UsageSource = "estimate"


ModelCallStep = Literal["rewrite", "plan", "queries", "answer", "write", "other"]
CallOutcome = Literal["ok", "truncated", "error", "cancelled"]


class ModelCall(_Event):
    """One call to the language model ended: what it was for, how long it took, what it cost.

    ``step``: ``rewrite`` (a follow-up made to stand alone), ``plan`` (a planner round), ``queries`` and
    ``answer`` (a sub-question's search queries and answer; ``node_id`` says which), ``write`` (the final
    answer), ``other``. ``outcome``: ``ok``, ``truncated`` (cut at the token limit; the text was used),
    ``error`` (``error`` says why in a few words) or ``cancelled`` (the run or the step stopped it).
    ``seconds`` runs from the request to the last piece. Summing ``usage`` over a run's ``model_call``
    events gives its cost (``RunState.usage`` does).
    """

    type: Literal["model_call"] = "model_call"
    node_id: str | None = None
    step: ModelCallStep
    model: str
    outcome: CallOutcome
    seconds: float
    usage: Usage
    error: str | None = None


class References(_Event):
    type: Literal["references"] = "references"
    references: list[Reference]


class OutlineSection(BaseModel):
    """One section of a research report's outline, and the sub-questions researched for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    title: str
    questions: list[str]
    node_ids: list[str] = Field(default_factory=list)  # the ids its sub-questions run under


class Outline(_Event3):
    """Research mode's outline: the report's title and sections, before any section is researched.

    ``note`` and ``recovered_from`` say, as in ``plan``, how a bad reply was recovered from
    ("repaired after one round", "used a standard outline").
    """

    type: Literal["outline"] = "outline"
    title: str
    sections: list[OutlineSection]
    note: str = ""
    recovered_from: str = ""


SectionKind = Literal["section", "summary"]


class SectionStarted(_Event3):
    """A section's research began (``kind`` section) or, for the closing summary, its writing."""

    type: Literal["section_started"] = "section_started"
    section_id: str
    title: str
    kind: SectionKind = "section"


class SectionDelta(_Event3):
    """A piece of a section's text, with citations numbered for the whole report (also sent as an
    ``answer_delta``, so a client that knows nothing of sections still shows the report)."""

    type: Literal["section_delta"] = "section_delta"
    section_id: str
    text: str


class SectionDone(_Event3):
    """A section is written. ``ok`` is false when it is incomplete; ``error`` says why."""

    type: Literal["section_done"] = "section_done"
    section_id: str
    ok: bool
    text: str
    error: str | None = None
    kind: SectionKind = "section"


class Error(_Event):
    """Something failed; ``stage`` says where. The run goes on unless ``fatal``."""

    type: Literal["error"] = "error"
    stage: Literal["settings", "plan", "search", "fetch", "node", "answer", "llm", "run"]
    message: str
    node_id: str | None = None
    fatal: bool = False


class Done(_Event):
    type: Literal["done"] = "done"
    answer: str
    references: list[Reference]
    nodes: list[PlannedNode]
    seconds: float
    ok: bool


Event = Annotated[
    RunStarted
    | Plan
    | NodeStarted
    | NodeRewritten
    | Queries
    | SearchResults
    | PageRead
    | Sources
    | NodeAnswerDelta
    | NodeDone
    | AnswerDelta
    | CitationDropped
    | ModelCall
    | References
    | Outline
    | SectionStarted
    | SectionDelta
    | SectionDone
    | Error
    | Done,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of one event line (what ``mindsearch ask --json`` writes)."""
    schema = EVENT_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"mindsearch event, schema version {SCHEMA_VERSION}"
    return schema


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Read one event back (for clients of the REST API and the tests)."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)
