"""The rule planner: comparison and bridge questions split with no model, in English and Chinese."""

from __future__ import annotations

import pytest

from mindsearch._decompose import rule_plan
from mindsearch._graph import QuestionGraph


def shape(question: str, language: str = "en") -> list[tuple[str, str, list[str]]]:
    plan = rule_plan(question, language)  # type: ignore[arg-type]
    assert plan is not None, question
    QuestionGraph(8).check(plan)  # a valid plan: known ids, no cycles
    return [(s.id, s.question, s.depends_on) for s in plan]


def test_an_or_comparison_gets_one_node_per_option_and_a_comparing_node() -> None:
    assert shape("Which band was formed first, The Exies or Circus Diablo?") == [
        ("q1", "When was The Exies formed?", []),
        ("q2", "When was Circus Diablo formed?", []),
        ("q3", "Which band was formed first, The Exies or Circus Diablo?", ["q1", "q2"]),
    ]


@pytest.mark.parametrize(
    ("question", "first", "second"),
    [
        (
            "Are Christopher Nolan and Sathish Kalathil both film directors?",
            "Is Christopher Nolan film directors?",
            "Is Sathish Kalathil film directors?",
        ),
        ("Are Medici and Senet both board games?", "Is Medici board games?", "Is Senet board games?"),
        (
            "Both Never Cry Wolf and Big Hero 6 films were released by what label?",
            "Never Cry Wolf films were released by what label?",
            "Big Hero 6 films were released by what label?",
        ),
        (
            "Who is the oldest, Sid Haig or Vic Darchinyan?",
            "When was Sid Haig born?",
            "When was Vic Darchinyan born?",
        ),
        (
            "Which plant is larger, the Pterocarya or the Cotula?",
            "How large is the Pterocarya?",
            "How large is the Cotula?",
        ),
        (
            "Which singer is American, Mark King or Nick Hexum?",
            "Mark King: singer is American?",
            "Nick Hexum: singer is American?",
        ),
    ],
)
def test_and_comparisons(question: str, first: str, second: str) -> None:
    nodes = shape(question)
    assert [n[1] for n in nodes[:2]] == [first, second]
    assert nodes[2][2] == ["q1", "q2"]


@pytest.mark.parametrize(
    ("question", "steps"),
    [
        ("Where was the director of Jaws born?", ["Who is the director of Jaws?", "Where was #1 born?"]),
        (
            "What is the name of the waterfall in the country where the Bubye River is found?",
            [
                "What is the country where the Bubye River is found?",
                "What is the name of the waterfall in #1?",
            ],
        ),
        (
            "Who was in charge of the country where the composer of Aschenbrodel was a citizen?",
            [
                "Who is the composer of Aschenbrodel?",
                "What is the country where #1 was a citizen?",
                "Who was in charge of #2?",
            ],
        ),
        (
            "What kind of plane dropped the bomb on Akinoshu Kenji's birthplace?",
            ["What is Akinoshu Kenji's birthplace?", "What kind of plane dropped the bomb on #1?"],
        ),
    ],
)
def test_bridge_questions_find_the_thing_then_ask_about_it(question: str, steps: list[str]) -> None:
    nodes = shape(question)
    assert [n[1] for n in nodes] == steps
    assert all(n[2] == [f"q{i}"] for i, n in enumerate(nodes[1:], start=1)), "each step needs the one before"


def test_chinese_comparisons_and_bridges() -> None:
    assert shape("哪个乐队成立得更早，The Exies还是Circus Diablo？", "zh") == [
        ("q1", "The Exies是什么时候成立的？", []),
        ("q2", "Circus Diablo是什么时候成立的？", []),
        ("q3", "哪个乐队成立得更早，The Exies还是Circus Diablo？", ["q1", "q2"]),
    ]
    assert [n[1] for n in shape("克里斯托弗·诺兰和萨蒂什都是电影导演吗？", "zh")][:2] == [
        "克里斯托弗·诺兰是电影导演吗？",
        "萨蒂什是电影导演吗？",
    ]
    assert [n[1] for n in shape("珠穆朗玛峰和K2哪个更高？", "zh")][:2] == ["珠穆朗玛峰有多高？", "K2有多高？"]
    assert shape("《大白鲨》的导演出生在哪里？", "zh") == [
        ("q1", "《大白鲨》的导演是谁？", []),
        ("q2", "#1出生在哪里？", ["q1"]),
    ]


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("How large is Lake Varnholm?", "en"),
        ("Who directed Jaws?", "en"),
        ("Who is the wife of Kim Jong-chul?", "en"),
        ("", "en"),
        ("《大白鲨》的导演是谁？", "zh"),
        ("珠穆朗玛峰有多高？", "zh"),
    ],
)
def test_a_question_no_rule_fits_is_left_alone(question: str, language: str) -> None:
    assert rule_plan(question, language) is None  # type: ignore[arg-type]


def test_a_plan_never_exceeds_the_node_limit() -> None:
    question = "Who was in charge of the country where the composer of Aschenbrodel was a citizen?"
    assert rule_plan(question, "en", max_nodes=2) is None
