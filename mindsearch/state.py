"""One run's state, folded from its event stream: the one model every reader of a run shares.

The CLI, the REST API's non-streaming reply, the chat UI and evaluation all want the same things from
the events (the graph and each node's progress, the answer, the errors), so they fold them here, once,
instead of each keeping its own copy of the rules. ``RunState.apply`` takes typed events;
``RunState.apply_json`` takes events as JSON from a server that may be newer or older than this code, and
skips what it cannot read instead of failing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError

from . import events as ev

NodeStatus = Literal["waiting", "running", "done", "failed"]
RunStatus = Literal["running", "done", "failed"]

# the ``type`` tag of every event this code can read, and the schema version its model has
VERSIONS: dict[str, int] = {
    model.model_fields["type"].default: model.model_fields["v"].default
    for model in get_args(get_args(ev.Event)[0])
}
KNOWN_TYPES: frozenset[str] = frozenset(VERSIONS)
SectionStatus = Literal["waiting", "researching", "writing", "done", "incomplete"]


class RunUsage(BaseModel):
    """Tokens summed over ``model_call`` events: a run's (``RunState.usage``) or a node's.

    ``estimated`` is true when some of the tokens are estimates (a backend that gave no count and had
    no tokenizer): then the sum is an estimate too, never a count.
    """

    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    estimated: bool = False
    seconds: float = 0.0  # model time: the calls' seconds added up (calls at once overlap)

    def add(self, call: ev.ModelCall) -> None:
        self.calls += 1
        self.failed_calls += 1 if call.outcome == "error" else 0
        self.prompt_tokens += call.usage.prompt_tokens
        self.completion_tokens += call.usage.completion_tokens
        self.total_tokens += call.usage.prompt_tokens + call.usage.completion_tokens
        self.estimated = self.estimated or call.usage.source == "estimate"
        self.seconds = round(self.seconds + call.seconds, 3)

    def openai(self) -> dict[str, Any]:
        """As the ``usage`` of an OpenAI chat completion (with ``estimated`` only when it is one)."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.estimated:
            usage["estimated"] = True
        return usage


class RunNode(BaseModel):
    """One sub-question as the events tell it: planned, started, searched, read, answered or failed."""

    id: str
    question: str = ""
    planned_question: str | None = None  # the question as planned, set when ``node_rewritten`` changed it
    depends_on: list[str] = Field(default_factory=list)
    state: NodeStatus = "waiting"
    queries: list[str] = Field(default_factory=list)
    searches: list[ev.SearchResults] = Field(default_factory=list)
    pages: list[ev.PageRead] = Field(default_factory=list)
    sources: list[ev.Reference] = Field(default_factory=list)  # the passages shown to the model
    answer: str = ""
    short_answer: str = ""
    references: list[ev.Reference] = Field(default_factory=list)
    error: str | None = None
    dropped: list[ev.CitationDropped] = Field(default_factory=list)
    usage: RunUsage = Field(default_factory=RunUsage)  # the model calls made for this sub-question

    @property
    def hits(self) -> list[ev.Hit]:
        """Every search result of the node, in the order the engines answered."""
        return [hit for search in self.searches for hit in search.hits]

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class RunSection(BaseModel):
    """One section of a research report as the events tell it: outlined, researched, written."""

    id: str
    title: str = ""
    kind: ev.SectionKind = "section"
    questions: list[str] = Field(default_factory=list)
    node_ids: list[str] = Field(default_factory=list)  # its sub-questions in ``RunState.nodes``
    state: SectionStatus = "waiting"
    text: str = ""
    error: str | None = None


class RunState(BaseModel):
    """Everything a run's events say, folded in order; ``apply`` never raises on a surprising stream.

    ``answer`` grows with ``answer_delta`` and becomes ``done.answer`` at the end (likewise a node's
    ``answer`` with ``node_answer_delta`` and ``node_done``). A stream that breaks the protocol (a second
    ``done``, events after it, a malformed event) is not an exception: what was ignored is said in
    ``protocol_errors``, so a reader can still show what arrived.
    """

    question: str = ""  # what is searched: a follow-up rewritten to stand alone
    asked: str = ""  # the question as the user asked it
    rewrite: ev.RewriteStatus = "none"  # what became of a follow-up (see ``run_started``)
    rewrite_error: str = ""  # why the follow-up could not be rewritten, when it could not
    run_id: str = ""  # names the run in the server's logs, metrics and traces
    language: Literal["en", "zh"] | None = None
    llm: str = ""
    engines: list[str] = Field(default_factory=list)
    nodes: dict[str, RunNode] = Field(default_factory=dict)  # in plan order
    answer: str = ""
    references: list[ev.Reference] = Field(default_factory=list)
    dropped: list[ev.CitationDropped] = Field(default_factory=list)  # citations dropped from the answer
    errors: list[ev.Error] = Field(default_factory=list)
    plan_notes: list[ev.Plan] = Field(default_factory=list)  # planner rounds that recovered from a bad reply
    usage: RunUsage = Field(default_factory=RunUsage)  # every model call of the run, summed
    title: str = ""  # a research report's title (from ``outline``); empty for a plain answer
    sections: dict[str, RunSection] = Field(default_factory=dict)  # a report's sections, in order
    outline_note: str = ""  # how a bad outline reply was recovered from, if it was
    status: RunStatus = "running"  # "failed" from a fatal error on, or when ``done`` is not ok
    ok: bool = False
    seconds: float = 0.0
    finished: bool = False  # ``done`` arrived
    ignored: int = 0  # JSON events of unknown types or other schema versions, skipped
    protocol_errors: list[str] = Field(default_factory=list)

    @classmethod
    def from_events(cls, events: Iterable[ev.Event]) -> RunState:
        """The state after all of ``events``: what a reader that saw the whole run at once needs."""
        state = cls()
        for event in events:
            state.apply(event)
        return state

    def apply_json(self, data: dict[str, Any]) -> None:
        """Fold one event read as JSON; what this version cannot read is skipped, never raised.

        A newer server may send event types or schema versions this code does not know (skipped and
        counted in ``ignored``) and new optional fields (dropped, as docs/events.md allows).
        """
        if not isinstance(data, dict):
            self.protocol_errors.append(
                f"an event that is not a JSON object ({type(data).__name__}): ignored"
            )
            return
        kind, version = data.get("type"), data.get("v")
        # an event newer than this code's model of its type (its meaning changed) is skipped, not misread
        readable = (
            isinstance(kind, str)
            and kind in KNOWN_TYPES
            and isinstance(version, int)
            and not isinstance(version, bool)
            and 1 <= version <= VERSIONS[kind]
        )
        if not readable:
            self.ignored += 1
            return
        try:  # version 1 events are version 2 events without the later fields (docs/events.md)
            event = _parse_lenient({**data, "v": VERSIONS[str(kind)]})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"][1:])
            self.protocol_errors.append(f"unreadable {kind} event ({where}: {first['msg']}): ignored")
            return
        self.apply(event)

    def apply(self, event: ev.Event) -> None:
        """Fold one event into the state."""
        if self.finished:
            what = "a second done" if isinstance(event, ev.Done) else f"{event.type} after done"
            self.protocol_errors.append(f"{what}: ignored")
            return
        if isinstance(event, ev.RunStarted):
            self.question, self.asked = event.question, event.asked or event.question
            self.rewrite, self.rewrite_error = event.rewrite, event.rewrite_error
            self.run_id = event.run_id
            self.language, self.llm, self.engines = event.language, event.llm, list(event.engines)
        elif isinstance(event, ev.Plan):
            for planned in event.added:
                self._plan(planned)
            if event.note:
                self.plan_notes.append(event)
        elif isinstance(event, ev.NodeStarted):
            node = self._node(event.node_id, event.question)
            if node.state == "waiting":
                node.state = "running"
        elif isinstance(event, ev.NodeRewritten):
            node = self._node(event.node_id, event.was)
            node.planned_question = node.planned_question or event.was
            node.question = event.question
        elif isinstance(event, ev.Queries):
            self._node(event.node_id).queries = list(event.queries)
        elif isinstance(event, ev.SearchResults):
            self._node(event.node_id).searches.append(event)
        elif isinstance(event, ev.PageRead):
            self._node(event.node_id).pages.append(event)
        elif isinstance(event, ev.Sources):
            self._node(event.node_id).sources = list(event.references)
        elif isinstance(event, ev.NodeAnswerDelta):
            self._node(event.node_id).answer += event.text
        elif isinstance(event, ev.NodeDone):
            node = self._node(event.node_id)
            node.state = "done" if event.ok else "failed"
            node.answer, node.short_answer = event.answer, event.short_answer
            node.references, node.error = list(event.references), event.error
        elif isinstance(event, ev.AnswerDelta):
            self.answer += event.text
        elif isinstance(event, ev.CitationDropped):
            (self._node(event.node_id).dropped if event.node_id is not None else self.dropped).append(event)
        elif isinstance(event, ev.ModelCall):
            self.usage.add(event)
            if event.node_id is not None:
                self._node(event.node_id).usage.add(event)
        elif isinstance(event, ev.References):
            self.references = list(event.references)
        elif isinstance(event, ev.Outline):
            self.title, self.outline_note = event.title, event.note
            for outlined in event.sections:
                self.sections[outlined.id] = RunSection(
                    id=outlined.id,
                    title=outlined.title,
                    questions=list(outlined.questions),
                    node_ids=list(outlined.node_ids),
                )
        elif isinstance(event, ev.SectionStarted):
            section = self._section(event.section_id, event.title, event.kind)
            section.state = "writing" if event.kind == "summary" else "researching"
        elif isinstance(event, ev.SectionDelta):
            section = self._section(event.section_id)
            section.state, section.text = "writing", section.text + event.text
        elif isinstance(event, ev.SectionDone):
            section = self._section(event.section_id, kind=event.kind)
            section.state = "done" if event.ok else "incomplete"
            section.text, section.error = event.text, event.error
        elif isinstance(event, ev.Error):
            self.errors.append(event)
            if event.fatal:
                self.status = "failed"
        elif isinstance(event, ev.Done):
            self._done(event)

    def _node(self, node_id: str, question: str = "") -> RunNode:
        """The node with this id; one never planned is made, so an unexpected event is not a crash."""
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = RunNode(id=node_id, question=question)
        elif not node.question:
            node.question = question
        return node

    def _section(self, section_id: str, title: str = "", kind: ev.SectionKind = "section") -> RunSection:
        """The section with this id; one not in the outline (the summary) is added at the end."""
        section = self.sections.get(section_id)
        if section is None:
            section = self.sections[section_id] = RunSection(id=section_id, title=title, kind=kind)
        elif title and not section.title:
            section.title = title
        return section

    @property
    def incomplete_sections(self) -> list[RunSection]:
        """The report's sections that were not finished (the budget ran out, or they failed)."""
        return [s for s in self.sections.values() if s.state != "done"]

    def _plan(self, planned: ev.PlannedNode) -> None:
        node = self._node(planned.id, planned.question)
        if not node.depends_on:
            node.depends_on = list(planned.depends_on)

    def _done(self, event: ev.Done) -> None:
        self.answer, self.references = event.answer, list(event.references)
        self.seconds, self.ok, self.finished = event.seconds, event.ok, True
        self.status = "done" if event.ok and self.status != "failed" else "failed"
        for planned in event.nodes:  # the final graph: a node whose plan event was lost still shows
            if planned.id not in self.nodes:
                self._plan(planned)

    def sources_read(self) -> set[str]:
        """The urls of every passage shown to a model, over all sub-questions."""
        return {ref.url for node in self.nodes.values() for ref in node.sources}


def _parse_lenient(data: dict[str, Any]) -> ev.Event:
    """Parse an event, dropping fields its model does not have (a newer server may add optional ones)."""
    try:
        return ev.parse_event(data)
    except ValidationError as exc:
        problems = exc.errors()
        if any(problem["type"] != "extra_forbidden" for problem in problems):
            raise
        trimmed = copy.deepcopy(data)
        for problem in problems:
            *path, name = problem["loc"][1:]  # loc[0] is the event's type tag
            container: Any = trimmed
            for part in path:
                container = container[part]
            del container[name]
        return ev.parse_event(trimmed)
