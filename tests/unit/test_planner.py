from __future__ import annotations

import json

from mindsearch._graph import QuestionGraph, SubQuestion
from mindsearch._planner import Planner
from mindsearch.llm.base import LLMError
from mindsearch.testing import ScriptedModel, plan_json

QUESTION = "Where was the director of Jaws born?"


def planner(model: ScriptedModel, style: str = "chat") -> Planner:
    return Planner(model, style=style, language="en", max_rounds=3, max_tokens=200)  # type: ignore[arg-type]


async def test_valid_plan_is_returned() -> None:
    model = ScriptedModel(
        lambda r: plan_json(
            ("q1", "Who directed Jaws?", []), ("q2", "Where was the Jaws director born?", ["q1"])
        )
    )
    outcome = await planner(model).plan(QUESTION, QuestionGraph(8), 1)
    assert outcome.action is not None and [s.id for s in outcome.action.add] == ["q1", "q2"]
    assert outcome.error is None


async def test_invalid_reply_gets_one_repair_round_that_shows_the_error() -> None:
    replies = iter(["not json at all", plan_json(("q1", "Who directed Jaws?", []))])
    model = ScriptedModel(lambda r: next(replies))
    outcome = await planner(model).plan(QUESTION, QuestionGraph(8), 1)
    assert outcome.action is not None and "repaired" in outcome.note
    repair = model.calls[1].request
    assert repair.messages[-2].content == "not json at all"
    assert "not JSON" in repair.messages[-1].content


async def test_second_invalid_reply_is_a_clear_error() -> None:
    cyclic = plan_json(("a", "Who directed Jaws?", ["b"]), ("b", "Where was Jaws director born?", ["a"]))
    model = ScriptedModel(lambda r: cyclic)
    outcome = await planner(model).plan(QUESTION, QuestionGraph(8), 1)
    assert outcome.action is None and "cycle" in (outcome.error or "")
    assert len(model.calls) == 2


async def test_model_failure_is_an_error_not_an_exception() -> None:
    model = ScriptedModel(lambda r: LLMError("server down"))
    outcome = await planner(model).plan(QUESTION, QuestionGraph(8), 1)
    assert outcome.action is None and "server down" in (outcome.error or "")


async def test_echo_of_the_question_becomes_a_one_node_plan() -> None:
    echo = json.dumps(
        {
            "add": [
                {"id": "q1", "question": QUESTION, "depends_on": []},
                {"id": "q2", "question": "Who is his wife?", "depends_on": []},
                {"id": "q3", "question": "Where was the director of Jaws born", "depends_on": ["q1"]},
            ],
            "finish": False,
        }
    )
    outcome = await planner(ScriptedModel(lambda r: echo), "base").plan(QUESTION, QuestionGraph(8), 1)
    assert outcome.action is not None
    assert [(s.id, s.question) for s in outcome.action.add] == [("q1", QUESTION)]
    assert outcome.action.finish


async def test_repeats_of_existing_nodes_are_folded_into_them() -> None:
    graph = QuestionGraph(8)
    graph.add([SubQuestion(id="q1", question="Who directed Jaws?")])
    reply = plan_json(
        ("x", "Who directed Jaws?", []),
        ("q2", "Where was Steven Spielberg, director of Jaws, born?", ["x"]),
        finish=False,
    )
    outcome = await planner(ScriptedModel(lambda r: reply)).plan(QUESTION, graph, 2)
    assert outcome.action is not None
    assert [(s.id, s.depends_on) for s in outcome.action.add] == [("q2", ["q1"])]


async def test_planner_sees_answers_of_finished_nodes() -> None:
    graph = QuestionGraph(8)
    node = graph.add([SubQuestion(id="q1", question="Who directed Jaws?")])[0]
    node.state, node.answer = node.state.DONE, "Steven Spielberg directed Jaws [1]."
    model = ScriptedModel(lambda r: '{"add": [], "finish": true}')
    await planner(model).plan(QUESTION, graph, 2)
    assert "Steven Spielberg directed Jaws" in model.calls[0].request.text
    assert "[1]" not in model.calls[0].request.text


async def test_chat_models_keep_sub_questions_that_share_no_word_with_the_question() -> None:
    reply = plan_json(("q1", "Who directed Jaws?", []), ("q2", "Which city is Steven Spielberg from?", []))
    outcome = await planner(ScriptedModel(lambda r: reply)).plan(QUESTION, QuestionGraph(8), 1)
    assert outcome.action is not None and len(outcome.action.add) == 2
