from __future__ import annotations

from mindsearch.citations import CitationStream, Registry, Source, renumber, strip_markers
from mindsearch.graph import Node, NodeState
from mindsearch.searcher import NodeResult
from mindsearch.writer import pool

JAWS = Source(
    "jaws", "Jaws", "https://example.org/jaws", ["Jaws is a 1975 film directed by Steven Spielberg."]
)
BORN = Source(
    "born", "Spielberg", "https://example.org/sp", ["Steven Spielberg was born in Cincinnati, Ohio, in 1946."]
)
NOLAN = Source(
    "nolan", "Nolan", "https://example.org/nolan", ["Christopher Nolan is a British film director."]
)


def run(
    pieces: list[str], sources: dict[int, Source], registry: Registry | None = None
) -> tuple[str, CitationStream]:
    stream = CitationStream(sources, registry or Registry(), min_support=0.3, attach_support=0.5)
    out = "".join(stream.feed(p) for p in pieces) + stream.finish()
    return out, stream


def test_numbers_follow_first_use_not_the_models_numbers() -> None:
    out, stream = run(
        ["Spielberg was born in Cincinnati [2]. ", "Jaws is a film by Spielberg [1]."], {1: JAWS, 2: BORN}
    )
    assert out == "Spielberg was born in Cincinnati [1]. Jaws is a film by Spielberg [2]."
    assert [r.title for r in stream.registry.references()] == ["Spielberg", "Jaws"]


def test_marker_split_across_pieces_and_moved_to_sentence_end() -> None:
    out, _ = run(["Jaws [", "1", "] was directed by Spielberg", "."], {1: JAWS})
    assert out == "Jaws was directed by Spielberg [1]."


def test_dangling_marker_is_dropped_and_reported() -> None:
    out, stream = run(["Jaws was directed by Spielberg [7]."], {1: JAWS})
    assert "[7]" not in out
    assert [(d.marker, d.reason) for d in stream.dropped] == [("[7]", "dangling")]
    assert out.endswith("[1].")  # the supporting source was attached instead


def test_unsupported_marker_is_dropped_and_best_source_attached() -> None:
    out, stream = run(["Spielberg was born in Cincinnati, Ohio [1]."], {1: JAWS, 2: BORN})
    assert [(d.marker, d.reason) for d in stream.dropped] == [("[1]", "unsupported")]
    assert out == "Spielberg was born in Cincinnati, Ohio [1]."
    assert stream.registry.references()[0].title == "Spielberg"


def test_no_citation_when_nothing_supports_the_sentence() -> None:
    out, _ = run(["Bananas are yellow fruit eaten worldwide."], {1: JAWS})
    assert out == "Bananas are yellow fruit eaten worldwide."


def test_decimal_points_and_brackets_that_are_not_markers_survive() -> None:
    out, _ = run(["The ratio is 3.5 [see below] today."], {1: JAWS})
    assert out == "The ratio is 3.5 [see below] today."


def test_comma_lists_and_chinese_sentences() -> None:
    zh = Source("zh", "大白鲨", "u", ["《大白鲨》是史蒂文·斯皮尔伯格执导的电影。"])
    out, _ = run(["《大白鲨》由斯皮尔伯格执导[1, 1]。"], {1: zh})
    assert out == "《大白鲨》由斯皮尔伯格执导 [1]。"


def test_sources_shared_across_nodes_get_one_number_in_order_of_first_use() -> None:
    nodes = [
        Node("a", "Who directed Jaws?", []),
        Node("b", "Where was Spielberg born?", []),
        Node("c", "Who is Nolan?", []),
    ]
    answers = {
        "a": ("Jaws was directed by Steven Spielberg [1].", [JAWS]),
        "b": ("Spielberg was born in Cincinnati [1]. Jaws is a 1975 film [2].", [BORN, JAWS]),
        "c": ("Christopher Nolan is a British film director [1].", [NOLAN]),
    }
    results = {}
    for node in nodes:
        node.state, node.answer = NodeState.DONE, answers[node.id][0]
        results[node.id] = NodeResult(node.answer, [], answers[node.id][1])
    draft = pool(nodes, results, {})
    assert [s.key for _, s in sorted(draft.sources.items())] == ["jaws", "born", "nolan"]
    assert draft.answers[1][1] == "Spielberg was born in Cincinnati [2]. Jaws is a 1975 film [1]."
    # the writer cites 3, 2, 1 (provisional); the reader sees 1, 2, 3 with no gaps
    registry = Registry()
    out, _ = run(
        [
            "Nolan is a British film director [3]. Spielberg was born in Cincinnati [2]. ",
            "Jaws is a 1975 film [1][9].",
        ],
        draft.sources,
        registry,
    )
    expected = "Nolan is a British film director [1]. Spielberg was born in Cincinnati [2]. "
    assert out == expected + "Jaws is a 1975 film [3]."
    assert [r.n for r in registry.references()] == [1, 2, 3]
    assert [r.title for r in registry.references()] == ["Nolan", "Spielberg", "Jaws"]


def test_renumber_and_strip() -> None:
    assert renumber("a [1][2] b [3]", {1: 5, 3: 1}) == "a [5] b [1]"
    assert strip_markers("a [1] b [2, 3].") == "a b."


def test_initials_and_abbreviations_do_not_end_a_sentence() -> None:
    source = Source(
        "r", "Reber", "u", ["Thomas V. Reber was a psychologist; Dr. Smith met him in the U.S. in 1990."]
    )
    out, _ = run(["Thomas V. Reber was a psychologist. Dr. Smith met him in 1990."], {1: source})
    assert out == "Thomas V. Reber was a psychologist [1]. Dr. Smith met him in 1990 [1]."
