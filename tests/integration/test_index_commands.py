"""``mindsearch index`` --list, --remove and --reset, run as new processes the way a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mindsearch.search.local import LocalIndex, open_local_index, plural
from mindsearch.testing import clean_env

DEMO_LINE = "demo corpus: 2,884 Wikipedia paragraphs (searched until you add documents)"


def index(*args: str, data_dir: Path, cwd: Path | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "mindsearch", "index", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=cwd,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "trips").mkdir(parents=True)
    (folder / "lighthouse.md").write_text("# Zorbington\nMarisol Quennell keeps the Zorbington lighthouse.\n")
    (folder / "trips" / "rottnest.txt").write_text("The quokka lives on Rottnest Island.")
    (folder / "trips" / "towns.jsonl").write_text(
        "".join(
            json.dumps({"title": t, "text": f"{t} is a town in Switzerland."}) + "\n"
            for t in ("Glarus", "Chur")
        )
    )
    return folder


def test_list_shows_each_file_with_its_count_and_the_total(notes: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert index("--list", data_dir=data) == (0, DEMO_LINE + "\n", "")
    assert not (data / "index").exists() and not (data / "demo-index").exists(), "--list only reads"
    code, _out, err = index(str(notes), data_dir=data)
    assert code == 0, err
    code, out, err = index("--list", data_dir=data)
    assert code == 0, err
    assert out.splitlines() == [
        f"1 document   {notes / 'lighthouse.md'}",
        f"1 document   {notes / 'trips' / 'rottnest.txt'}",
        f"2 documents  {notes / 'trips' / 'towns.jsonl'}",
        f"4 documents from 3 files in {data / 'index'}",
    ]


def test_adding_reports_counts_with_plurals_and_that_the_demo_corpus_is_replaced(
    notes: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    code, out, err = index(str(notes / "lighthouse.md"), data_dir=data)
    assert code == 0 and out == ""
    assert f"indexed      1 document  from {notes / 'lighthouse.md'}" in err
    assert "1 document from 1 file; the index holds 1 document from 1 file" in err
    assert "searched instead of the bundled demo corpus (2,884 Wikipedia paragraphs)" in err
    code, _out, err = index(str(notes / "trips"), data_dir=data)
    assert code == 0
    assert f"indexed      2 documents from {notes / 'trips' / 'towns.jsonl'}" in err
    assert "3 documents from 2 files; the index holds 4 documents from 3 files" in err
    assert "demo corpus" not in err, "only the first run into an empty index says it replaces the demo"
    assert open_local_index(data).search("quokka", 1)[0].title == "rottnest"


def test_indexing_a_file_again_replaces_its_documents_even_with_none(notes: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    towns = notes / "trips" / "towns.jsonl"
    assert index(str(notes), data_dir=data)[0] == 0
    towns.write_text(json.dumps({"title": "Bern", "text": "Bern is the Swiss capital."}) + "\n")
    assert index(str(towns), data_dir=data)[0] == 0
    assert f"1 document   {towns}" in index("--list", data_dir=data)[1]
    towns.write_text("")
    code, _out, err = index(str(towns), data_dir=data)
    assert code == 0 and "indexed      0 documents from" in err
    listing = index("--list", data_dir=data)[1]
    assert str(towns) not in listing and listing.endswith(
        "2 documents from 2 files in " + str(data / "index") + "\n"
    )


def test_remove_takes_out_a_file_or_a_folder(notes: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert index(str(notes), data_dir=data)[0] == 0
    code, out, err = index("--remove", "notes/trips", data_dir=data, cwd=tmp_path)  # relative to cwd
    assert code == 0 and out == "", err
    assert f"removed 1 document from {notes / 'trips' / 'rottnest.txt'}" in err
    assert f"removed 2 documents from {notes / 'trips' / 'towns.jsonl'}" in err
    assert "the index holds 1 document from 1 file" in err
    assert index("--list", data_dir=data)[1].splitlines()[0] == f"1 document   {notes / 'lighthouse.md'}"
    # a folder's name is not a prefix of its neighbour's: notes/light matches nothing
    code, _out, err = index("--remove", str(notes / "light"), data_dir=data)
    assert code == 1
    assert f"no document in the index came from {notes / 'light'}" in err and "--list" in err
    # the file need not exist any more
    (notes / "lighthouse.md").unlink()
    code, _out, err = index("--remove", str(notes / "lighthouse.md"), data_dir=data)
    assert code == 0 and "removed 1 document from" in err
    assert "the index is empty: the bundled demo corpus (2,884 Wikipedia paragraphs) is searched" in err
    assert index("--list", data_dir=data)[1] == DEMO_LINE + "\n"
    assert open_local_index(data).demo


def test_remove_with_several_paths_says_which_matched_nothing(notes: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert index(str(notes), data_dir=data)[0] == 0
    code, _out, err = index(
        "--remove", str(notes / "lighthouse.md"), str(tmp_path / "elsewhere"), data_dir=data
    )
    assert code == 0
    assert "removed 1 document from" in err and f"no document came from {tmp_path / 'elsewhere'}" in err


def test_remove_on_the_demo_corpus_is_nothing_done(tmp_path: Path) -> None:
    code, _out, err = index("--remove", str(tmp_path / "x.md"), data_dir=tmp_path / "data")
    assert code == 1 and "no document in the index came from" in err


def test_reset_brings_the_demo_corpus_back(notes: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert index(str(notes), data_dir=data)[0] == 0
    assert not open_local_index(data).demo
    code, out, err = index("--reset", data_dir=data)
    assert code == 0 and out == ""
    assert "removed 4 documents from 3 files" in err
    assert "the bundled demo corpus (2,884 Wikipedia paragraphs) is searched again" in err
    assert index("--list", data_dir=data)[1] == DEMO_LINE + "\n"
    demo = open_local_index(data)
    assert demo.demo and demo.search("Exies band", 1)[0].url.startswith("https://en.wikipedia.org/")
    # resetting again is not an error: the demo corpus is what is asked for, and what there is
    code, _out, err = index("--reset", data_dir=data)
    assert code == 0 and "the index held none of your documents" in err
    # and adding works after a reset
    assert index(str(notes / "lighthouse.md"), data_dir=data)[0] == 0
    assert index("--list", data_dir=data)[1].endswith(f"1 document from 1 file in {data / 'index'}\n")


def test_reset_deletes_an_index_that_cannot_be_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "index").mkdir(parents=True)
    (data / "index" / "meta.json").write_text("{not json")
    code, _out, err = index("--list", data_dir=data)
    assert code == 1 and "cannot open the index at" in err and "Traceback" not in err
    code, _out, err = index("--reset", data_dir=data)
    assert code == 0 and "the index could not be read, so it was deleted" in err
    assert not (data / "index").exists()
    assert index("--list", data_dir=data)[1] == DEMO_LINE + "\n"


@pytest.mark.parametrize(
    "args",
    [
        [],  # nothing to do
        ["--list", "notes"],  # a mode and files to add
        ["--reset", "notes"],
        ["--list", "--reset"],  # two modes
        ["--remove"],  # --remove without a path
    ],
)
def test_bad_usage_exits_2(args: list[str], tmp_path: Path) -> None:
    code, _out, err = index(*args, data_dir=tmp_path / "data")
    assert code == 2 and "Traceback" not in err and err.strip()
    assert not (tmp_path / "data" / "index").exists()


def test_nothing_to_index_exits_1(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _out, err = index(str(tmp_path / "empty"), data_dir=tmp_path / "data")
    assert code == 1 and "no .txt .md .markdown .html .htm .json .jsonl files in" in err
    (tmp_path / "bad.json").write_text("{not json")
    code, _out, err = index(str(tmp_path / "bad.json"), data_dir=tmp_path / "data")
    assert code == 1 and "skipped" in err and "the index is unchanged" in err
    assert index(str(tmp_path / "missing.md"), data_dir=tmp_path / "data")[0] == 2


def test_a_busy_index_waits_for_the_other_writer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "a.txt").write_text("Alpha.")
    held = LocalIndex(data / "index")
    with held.writing():  # another process's writer, as far as the subprocess can tell
        child = subprocess.Popen(
            [sys.executable, "-m", "mindsearch", "index", str(tmp_path / "a.txt"), "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=3)
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert "waiting for another process that is writing to the index" in err
    assert "1 document from 1 file" in err


def test_plural() -> None:
    assert [plural(n, "document") for n in (0, 1, 2, 2884)] == [
        "0 documents",
        "1 document",
        "2 documents",
        "2,884 documents",
    ]
    assert plural(1, "file") == "1 file" and plural(3, "file") == "3 files"
