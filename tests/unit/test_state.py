"""RunState: the one fold of a run's events that the CLI, the API, the UI and evaluation share."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mindsearch import events as ev
from mindsearch.state import RunState

JAWS = ev.Reference(n=1, title="Jaws (film)", url="https://en.wikipedia.org/wiki/Jaws_(film)")
BORN = ev.Reference(n=1, title="Steven Spielberg", url="https://en.wikipedia.org/wiki/Steven_Spielberg")
FINAL = "Steven Spielberg, who directed Jaws, was born in Cincinnati, Ohio [1][2]."


def hit(title: str) -> ev.Hit:
    return ev.Hit(url=f"https://example.org/{title}", title=title, snippet=f"about {title}", engine="local")


def realistic_run() -> list[ev.Event]:
    """A follow-up with three sub-questions: q2 waits for q1 and is rewritten with its answer, q3 fails."""
    return [
        ev.RunStarted(
            question="Where was the director of Jaws born?",
            asked="where was he born?",
            language="en",
            llm="fake:model",
            engines=["local", "duckduckgo"],
        ),
        ev.Plan(
            round=1,
            added=[
                ev.PlannedNode(id="q1", question="Who directed Jaws?"),
                ev.PlannedNode(id="q2", question="Where was #1 born?", depends_on=["q1"]),
                ev.PlannedNode(id="q3", question="When was Jaws released?"),
            ],
            finish=False,
        ),
        ev.NodeStarted(node_id="q1", question="Who directed Jaws?"),
        ev.NodeStarted(node_id="q3", question="When was Jaws released?"),
        ev.Queries(node_id="q1", queries=["jaws director", "jaws 1975 film"]),
        ev.Queries(node_id="q3", queries=["jaws release date"]),
        ev.SearchResults(node_id="q1", query="jaws director", hits=[hit("Jaws"), hit("Spielberg")]),
        ev.SearchResults(node_id="q3", query="jaws release date", hits=[hit("Release")]),
        ev.SearchResults(node_id="q1", query="jaws 1975 film", hits=[hit("Jaws 1975")]),
        ev.PageRead(node_id="q1", url="https://example.org/Jaws", title="Jaws", chars=1200),
        ev.PageRead(node_id="q1", url="https://example.org/Spielberg", ok=False, error="HTTP 404"),
        ev.Sources(node_id="q1", references=[JAWS]),
        ev.NodeAnswerDelta(node_id="q1", text="Steven "),
        ev.NodeAnswerDelta(node_id="q3", text="In 19"),
        ev.NodeAnswerDelta(node_id="q1", text="Spielberg [1][2]."),
        ev.CitationDropped(node_id="q1", marker="[2]", reason="dangling"),
        ev.Error(stage="node", node_id="q3", message="timed out after 30 s"),
        ev.NodeDone(
            node_id="q3", ok=False, answer="", references=[], error="timed out after 30 s", short_answer=""
        ),
        ev.NodeDone(
            node_id="q1",
            ok=True,
            answer="Steven Spielberg [1].",
            references=[JAWS],
            short_answer="Steven Spielberg",
        ),
        ev.NodeStarted(node_id="q2", question="Where was #1 born?"),
        ev.NodeRewritten(node_id="q2", question="Where was Steven Spielberg born?", was="Where was #1 born?"),
        ev.Error(
            stage="search", node_id="q2", message="duckduckgo: no answer within 10 s; going on with local"
        ),
        ev.Sources(node_id="q2", references=[BORN]),
        ev.NodeAnswerDelta(node_id="q2", text="In Cincinnati, Ohio [1]."),
        ev.NodeDone(
            node_id="q2",
            ok=True,
            answer="In Cincinnati, Ohio [1].",
            references=[BORN],
            short_answer="Cincinnati",
        ),
        ev.Plan(round=2, added=[], finish=True, note="nothing to add"),
        ev.AnswerDelta(text="Steven Spielberg, who directed Jaws, "),
        ev.AnswerDelta(text="was born in Cincinnati [1][2][3]."),
        ev.CitationDropped(marker="[3]", reason="unsupported"),
        ev.References(references=[JAWS, BORN.model_copy(update={"n": 2})]),
        ev.Done(
            answer=FINAL,
            references=[JAWS, BORN.model_copy(update={"n": 2})],
            nodes=[
                ev.PlannedNode(id="q1", question="Who directed Jaws?"),
                ev.PlannedNode(id="q2", question="Where was Steven Spielberg born?", depends_on=["q1"]),
                ev.PlannedNode(id="q3", question="When was Jaws released?"),
            ],
            seconds=4.25,
            ok=True,
        ),
    ]


def test_a_realistic_run_folds_into_the_graph_the_answer_and_the_errors() -> None:
    state = RunState.from_events(realistic_run())
    assert (state.question, state.asked) == ("Where was the director of Jaws born?", "where was he born?")
    assert (state.language, state.llm, state.engines) == ("en", "fake:model", ["local", "duckduckgo"])
    assert list(state.nodes) == ["q1", "q2", "q3"]
    q1, q2, q3 = state.nodes["q1"], state.nodes["q2"], state.nodes["q3"]
    assert [node.state for node in (q1, q2, q3)] == ["done", "done", "failed"]
    assert q1.queries == ["jaws director", "jaws 1975 film"]
    assert [h.title for h in q1.hits] == ["Jaws", "Spielberg", "Jaws 1975"]
    assert [(p.url, p.ok, p.error) for p in q1.pages] == [
        ("https://example.org/Jaws", True, None),
        ("https://example.org/Spielberg", False, "HTTP 404"),
    ]
    assert q1.sources == [JAWS] and q1.references == [JAWS]
    assert (q1.answer, q1.short_answer) == ("Steven Spielberg [1].", "Steven Spielberg")
    assert [(d.marker, d.reason) for d in q1.dropped] == [("[2]", "dangling")]
    assert (q2.question, q2.planned_question, q2.depends_on) == (
        "Where was Steven Spielberg born?",
        "Where was #1 born?",
        ["q1"],
    )
    assert q1.planned_question is None
    assert (q3.answer, q3.error) == ("", "timed out after 30 s")  # the streamed "In 19" is replaced
    assert [(e.stage, e.node_id, e.fatal) for e in state.errors] == [
        ("node", "q3", False),
        ("search", "q2", False),
    ]
    assert [(d.marker, d.reason) for d in state.dropped] == [("[3]", "unsupported")]
    assert state.answer == FINAL and [r.n for r in state.references] == [1, 2]
    assert (state.status, state.ok, state.finished, state.seconds) == ("done", True, True, 4.25)
    assert state.sources_read() == {JAWS.url, BORN.url}
    assert state.protocol_errors == [] and state.ignored == 0


def test_while_running_the_answer_is_the_deltas_so_far() -> None:
    events = realistic_run()
    state = RunState.from_events(events[:-1])
    assert state.answer == "Steven Spielberg, who directed Jaws, was born in Cincinnati [1][2][3]."
    assert (state.status, state.ok, state.finished) == ("running", False, False)
    partial = RunState.from_events(events[:15])  # q1 and q3 half answered
    assert partial.nodes["q1"].answer == "Steven Spielberg [1][2]."
    assert partial.nodes["q3"].answer == "In 19" and partial.nodes["q3"].state == "running"
    assert partial.nodes["q2"].state == "waiting"


def test_a_fatal_error_fails_the_run_and_done_does_not_undo_it() -> None:
    state = RunState()
    state.apply(ev.Error(stage="llm", message="cannot reach the model", fatal=True))
    assert (state.status, state.finished) == ("failed", False)
    state.apply(ev.Done(answer="", references=[], nodes=[], seconds=0.5, ok=True))
    assert (state.status, state.finished, state.ok) == ("failed", True, True)
    refused = RunState.from_events([ev.Done(answer="", references=[], nodes=[], seconds=0.0, ok=False)])
    assert refused.status == "failed" and not refused.ok


def test_a_second_done_and_later_events_are_ignored_and_recorded() -> None:
    state = RunState.from_events(realistic_run())
    state.apply(ev.Done(answer="another answer", references=[], nodes=[], seconds=9.0, ok=False))
    state.apply(ev.AnswerDelta(text=" and more"))
    assert (state.answer, state.ok, state.status, state.seconds) == (FINAL, True, "done", 4.25)
    assert len(state.protocol_errors) == 2
    assert "second done" in state.protocol_errors[0] and "answer_delta" in state.protocol_errors[1]


def test_events_of_nodes_never_planned_make_the_node_instead_of_raising() -> None:
    state = RunState.from_events(
        [
            ev.NodeAnswerDelta(node_id="x", text="partial"),
            ev.NodeDone(node_id="y", ok=True, answer="an answer", references=[JAWS]),
            ev.NodeRewritten(node_id="z", question="new", was="old"),
            ev.CitationDropped(node_id="x", marker="[4]", reason="dangling"),
            ev.NodeStarted(node_id="w", question="started unplanned"),
            ev.NodeStarted(node_id="y", question="a late start does not undo a finished node"),
            ev.Plan(
                round=1,
                added=[ev.PlannedNode(id="w", question="planned late", depends_on=["y"])],
                finish=True,
            ),
            ev.Done(
                answer="",
                references=[],
                nodes=[ev.PlannedNode(id="v", question="only in the final graph")],
                seconds=1.0,
                ok=True,
            ),
        ]
    )
    assert list(state.nodes) == ["x", "y", "z", "w", "v"]
    assert state.nodes["x"].answer == "partial" and state.nodes["x"].dropped[0].marker == "[4]"
    assert (state.nodes["y"].state, state.nodes["y"].answer) == ("done", "an answer")
    assert (state.nodes["z"].question, state.nodes["z"].planned_question) == ("new", "old")
    assert (state.nodes["w"].question, state.nodes["w"].depends_on) == ("started unplanned", ["y"])
    assert (state.nodes["v"].question, state.nodes["v"].state) == ("only in the final graph", "waiting")


def test_json_from_a_newer_server_is_read_where_it_can_be_and_skipped_where_not() -> None:
    state = RunState()
    state.apply_json({"v": 2, "type": "answer_delta", "text": "known. "})
    state.apply_json({"v": 2, "type": "telepathy", "thought": "unknown type"})
    state.apply_json({"v": 3, "type": "answer_delta", "text": "newer meaning. "})
    state.apply_json({"v": 3, "type": "something_new"})
    state.apply_json({"v": 1, "type": "answer_delta", "text": "from an older server. "})
    state.apply_json({"text": "no type at all"})
    state.apply_json(  # a new optional field, on the event and inside a hit, is dropped
        {
            "v": 2,
            "type": "search_results",
            "node_id": "q1",
            "query": "jaws",
            "hits": [{**hit("Jaws").model_dump(), "rank": 1}],
            "took_ms": 12,
        }
    )
    state.apply_json({"v": 2, "type": "answer_delta", "text": "also known."})
    assert state.answer == "known. from an older server. also known."
    assert state.ignored == 4 and state.protocol_errors == []
    assert [h.title for h in state.nodes["q1"].hits] == ["Jaws"]


def test_malformed_json_events_are_protocol_errors_not_exceptions() -> None:
    state = RunState()
    state.apply_json(
        {"v": 2, "type": "node_done", "node_id": "q1", "answer": "no ok field", "references": []}
    )
    state.apply_json({"v": 2, "type": ["not", "a", "string"]})
    state.apply_json(["not", "an", "object"])  # type: ignore[arg-type]
    assert state.nodes == {} and state.ignored == 1
    assert len(state.protocol_errors) == 2 and "node_done" in state.protocol_errors[0]
    assert "not a JSON object" in state.protocol_errors[1]


# --- the property: any valid stream folds the same way, however it is fed ---------------------------------
texts = st.text(max_size=12)


@st.composite
def valid_runs(draw: st.DrawFn) -> list[ev.Event]:
    """A plan in rounds, then the nodes' events interleaved (each node's in order), then the answer."""
    count = draw(st.integers(1, 5))
    ids = [f"q{i + 1}" for i in range(count)]
    planned = [
        ev.PlannedNode(
            id=node_id, question=draw(texts), depends_on=sorted(draw(st.sets(st.sampled_from(ids[:i]))))
        )
        if i
        else ev.PlannedNode(id=node_id, question=draw(texts))
        for i, node_id in enumerate(ids)
    ]
    cut = draw(st.integers(1, count))
    events: list[ev.Event] = [
        ev.RunStarted(question=draw(texts), asked=draw(texts), language="en", llm="fake", engines=["local"]),
        ev.Plan(round=1, added=planned[:cut], finish=cut == count),
    ]
    if cut < count:
        events.append(ev.Plan(round=2, added=planned[cut:], finish=True))
    streams: list[list[ev.Event]] = []
    for node in planned:
        stream: list[ev.Event] = [ev.NodeStarted(node_id=node.id, question=node.question)]
        if draw(st.booleans()):
            stream.append(ev.NodeRewritten(node_id=node.id, question=draw(texts), was=node.question))
        stream.append(ev.Queries(node_id=node.id, queries=draw(st.lists(texts, max_size=3))))
        for query in draw(st.lists(texts, max_size=2)):
            stream.append(ev.SearchResults(node_id=node.id, query=query, hits=[hit(query)]))
        stream += [ev.NodeAnswerDelta(node_id=node.id, text=t) for t in draw(st.lists(texts, max_size=4))]
        ok = draw(st.booleans())
        stream.append(
            ev.NodeDone(
                node_id=node.id,
                ok=ok,
                answer=draw(texts) if ok else "",
                references=[JAWS] if ok else [],
                error=None if ok else "failed",
                short_answer=draw(texts),
            )
        )
        streams.append(stream)
    order = draw(st.permutations([i for i, stream in enumerate(streams) for _ in stream]))
    positions = [0] * len(streams)
    for i in order:
        events.append(streams[i][positions[i]])
        positions[i] += 1
    events += [ev.AnswerDelta(text=t) for t in draw(st.lists(texts, max_size=5))]
    events.append(ev.References(references=[JAWS]))
    events.append(ev.Done(answer=draw(texts), references=[JAWS], nodes=planned, seconds=1.0, ok=True))
    return events


@settings(max_examples=150, deadline=None)
@given(events=valid_runs(), data=st.data())
def test_any_valid_run_folds_the_same_one_by_one_from_json_or_resumed(
    events: list[ev.Event], data: st.DataObject
) -> None:
    whole = RunState.from_events(events)

    from_json = RunState()
    for event in events:
        from_json.apply_json(json.loads(event.model_dump_json()))
    assert from_json == whole

    # a state saved half-way (as the UI keeps it between reruns) and fed the rest ends the same
    split = data.draw(st.integers(0, len(events)))
    saved: dict[str, Any] = RunState.from_events(events[:split]).model_dump(mode="json")
    resumed = RunState.model_validate(saved)
    for event in events[split:]:
        resumed.apply(event)
    assert resumed == whole

    done = events[-1]
    assert isinstance(done, ev.Done)
    assert whole.answer == done.answer and whole.finished and whole.status == "done"
    deltas = "".join(e.text for e in events if isinstance(e, ev.AnswerDelta))
    assert RunState.from_events(events[:-1]).answer == deltas
    assert list(whole.nodes) == [node.id for node in done.nodes]
    for finished in (e for e in events if isinstance(e, ev.NodeDone)):
        node = whole.nodes[finished.node_id]
        assert node.state == ("done" if finished.ok else "failed")
        assert (node.answer, node.short_answer) == (finished.answer, finished.short_answer)


def test_research_events_fold_into_sections_and_a_version_2_reader_still_reads_the_report() -> None:
    """Research mode's events say v 3; everything else still says v 2, so a reader that only knows
    version 2 skips the section events and still gets the whole report from answer_delta and done."""
    events: list[dict[str, Any]] = [
        {"v": 2, "type": "run_started", "question": "Q", "language": "en", "llm": "m", "engines": []},
        {
            "v": 3,
            "type": "outline",
            "title": "T",
            "sections": [
                {"id": "s1", "title": "One", "questions": ["a?"], "node_ids": ["s1q1"]},
                {"id": "s2", "title": "Two", "questions": ["b?"], "node_ids": ["s2q1"]},
            ],
        },
        {"v": 3, "type": "section_started", "section_id": "s1", "title": "One"},
        {"v": 3, "type": "section_started", "section_id": "s2", "title": "Two"},
        {"v": 2, "type": "answer_delta", "text": "# T\n\n## One\n\n"},
        {"v": 3, "type": "section_delta", "section_id": "s1", "text": "A [1]."},
        {"v": 2, "type": "answer_delta", "text": "A [1]."},
        {"v": 3, "type": "section_done", "section_id": "s1", "ok": True, "text": "A [1]."},
        {"v": 3, "type": "section_done", "section_id": "s2", "ok": False, "text": "", "error": "time"},
        {
            "v": 2,
            "type": "done",
            "answer": "# T\n\n## One\n\nA [1].",
            "references": [],
            "nodes": [],
            "seconds": 1.0,
            "ok": False,
        },
    ]
    state = RunState()
    for event in events:
        state.apply_json(event)
    assert state.title == "T" and list(state.sections) == ["s1", "s2"]
    assert state.sections["s1"].state == "done" and state.sections["s1"].node_ids == ["s1q1"]
    assert [s.title for s in state.incomplete_sections] == ["Two"]
    assert state.ignored == 0

    class Version2Reader(RunState):
        """What a version-2 client's reader does: skip any v above 2."""

        def apply_json(self, data: dict[str, Any]) -> None:
            if data.get("v", 0) > 2:
                self.ignored += 1
                return
            super().apply_json(data)

    old = Version2Reader()
    for event in events:
        old.apply_json(event)
    assert old.finished and old.answer == state.answer and old.ignored == 6 and old.protocol_errors == []
