"""The local engine over the shared Wikipedia corpora, and ``mindsearch index``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindsearch.cli import main
from mindsearch.search.local import LocalEngine, LocalIndex, iter_files, open_local_index, read_documents


@pytest.fixture(scope="module")
def musique_index(tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    corpus = Path(__file__).resolve().parents[2].parent / "shared/eval/hipporag_v1/musique_train_corpus.json"
    index = LocalIndex(tmp_path_factory.mktemp("idx"))
    index.add(read_documents(corpus))
    assert index.num_docs >= 1800
    return index


def test_gold_paragraphs_are_found_for_gold_sub_questions(musique_index: LocalIndex, shared: Path) -> None:
    questions = json.loads((shared / "hipporag_v1/musique_train.json").read_text())[:20]
    found = total = 0
    for question in questions:
        for step in question["question_decomposition"]:
            if "#" in step["question"]:
                continue  # needs the previous answer
            gold = question["paragraphs"][step["paragraph_support_idx"]]
            titles_texts = {(h.title, h.text) for h in musique_index.search(step["question"], 10)}
            found += (gold["title"], gold["paragraph_text"]) in titles_texts
            total += 1
    assert total >= 15 and found / total >= 0.7, f"recall@10 {found}/{total}"


async def test_local_engine_returns_text_without_fetching(musique_index: LocalIndex) -> None:
    hits = await LocalEngine(musique_index).search("Journal of Psychotherapy Integration publisher", limit=3)
    assert hits and hits[0].engine == "local" and hits[0].text
    assert any("Psychotherapy" in h.text for h in hits if h.text)


def test_odd_queries_do_not_raise(musique_index: LocalIndex) -> None:
    for query in ['AND OR "(', "title:[a TO", "???", "", "中文问题"]:
        musique_index.search(query, 5)


def test_index_command_reads_every_supported_format(tmp_path: Path, shared: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Zanzibar notes\nThe quokka lives on Rottnest Island.\n")
    (docs / "plain.txt").write_text("Tantivy is a full-text search engine library written in Rust.")
    (docs / "records.jsonl").write_text(
        json.dumps({"title": "Glarus", "text": "Glarus is a Swiss town."}) + "\n"
    )
    (docs / "page.html").write_text(
        (shared / "html/readability_test_pages/wikipedia/source.html").read_text(encoding="utf-8")
    )
    data = tmp_path / "data"
    assert (
        main(["index", str(docs), str(shared / "hipporag_v1/hotpotqa_train.json"), "--data-dir", str(data)])
        == 0
    )
    index = LocalIndex(data / "index")
    assert index.search("quokka Rottnest", 1)[0].title == "Zanzibar notes"
    assert index.search("tantivy rust", 1)[0].url.endswith("plain.txt")
    assert index.search("Glarus Swiss", 1)[0].title == "Glarus"
    assert "Mozilla" in index.search("Mozilla free software community Netscape", 1)[0].title
    assert index.search("Gallu demon", 3), "paragraphs inside a HotpotQA question file are indexed"
    count = index.num_docs
    assert main(["index", str(docs / "note.md"), "--data-dir", str(data)]) == 0
    assert index.num_docs == count, "indexing a file again replaces its documents"


def test_index_command_reports_bad_files_and_keeps_going(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "good.txt").write_text("A good document about lighthouses.")
    assert (
        main(
            [
                "index",
                str(tmp_path / "bad.json"),
                str(tmp_path / "good.txt"),
                "--data-dir",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "skipped" in err and "bad.json" in err
    assert main(["index", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "d")]) == 2


def test_demo_corpus_is_used_until_the_user_indexes_something(tmp_path: Path) -> None:
    demo = open_local_index(tmp_path)
    assert demo.path.name == "demo-index" and demo.num_docs == 2884
    assert demo.search("Exies band", 1)[0].url.startswith("https://en.wikipedia.org/wiki/")
    LocalIndex(tmp_path / "index").add(
        read_documents(_write(tmp_path / "mine.txt", "my own lighthouse notes"))
    )
    assert open_local_index(tmp_path).path.name == "index"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_iter_files_walks_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a" / "x.md", "x")
    _write(tmp_path / "a" / "skip.bin", "x")
    assert [p.name for p in iter_files([tmp_path])] == ["x.md"]


def test_chinese_documents_are_found_by_chinese_questions(tmp_path: Path) -> None:
    records = [
        {"title": "北京", "text": "北京是中华人民共和国的首都，也是全国的政治和文化中心。"},
        {"title": "上海", "text": "上海是中国最大的城市，位于长江入海口。"},
    ]
    docs = tmp_path / "zh.jsonl"
    docs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    index = LocalIndex(tmp_path / "idx")
    index.add(read_documents(docs))
    assert index.search("中国的首都是哪里？", 1)[0].title == "北京"
    assert index.search("长江入海口的城市", 1)[0].title == "上海"


async def test_an_engine_over_a_fixed_index_sees_commits_from_elsewhere(tmp_path: Path) -> None:
    """An index given directly (as eval does) is reloaded when another writer commits to it."""
    engine = LocalEngine(LocalIndex(tmp_path / "idx"))
    assert await engine.search("lighthouse", limit=1) == []
    assert await engine.check() == (False, "local index: 0 documents from 0 files")
    LocalIndex(tmp_path / "idx").add(read_documents(_write(tmp_path / "a.txt", "A lighthouse on a rock.")))
    assert (await engine.search("lighthouse", limit=1))[0].url == str(tmp_path / "a.txt")
    assert await engine.check() == (True, "local index: 1 document from 1 file")


def test_reading_never_creates_your_index_and_a_stale_demo_index_is_rebuilt(tmp_path: Path) -> None:
    demo = open_local_index(tmp_path)
    assert demo.demo and not (tmp_path / "index").exists()
    (tmp_path / "demo-index" / ".complete").write_text("0:0")  # as an older version left it
    again = open_local_index(tmp_path)
    assert again.demo and again.num_docs == 2884
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-index"], "no half-built folder is left"


def test_remove_matches_files_and_folders_not_name_prefixes(tmp_path: Path) -> None:
    (tmp_path / "notes" / "sub").mkdir(parents=True)
    (tmp_path / "notes-old").mkdir()
    for name in ("notes/a.txt", "notes/sub/b.txt", "notes-old/c.txt"):
        _write(tmp_path / name, f"text of {name}")
    index = LocalIndex(tmp_path / "idx")
    for path in iter_files([tmp_path / "notes", tmp_path / "notes-old"]):
        index.add(read_documents(path))
    assert [n for _, n in index.sources()] == [1, 1, 1]
    assert index.remove([tmp_path / "notes"]) == [
        (str(tmp_path / "notes" / "a.txt"), 1),
        (str(tmp_path / "notes" / "sub" / "b.txt"), 1),
    ]
    assert index.sources() == [(str(tmp_path / "notes-old" / "c.txt"), 1)]
    assert index.remove([tmp_path / "notes"]) == []
    assert index.clear() == [(str(tmp_path / "notes-old" / "c.txt"), 1)] and index.num_docs == 0
