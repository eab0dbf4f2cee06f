"""`mindsearch index --collection NAME`: files into a shared collection of documents (type judged from
the content, a bad file named while the others land), listed and reset; every caller may search it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindsearch import Settings
from mindsearch._documents import SHARED, DocumentStore
from mindsearch._sessions import OPEN
from mindsearch.cli import main


def test_index_collection_adds_lists_and_resets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.txt").write_text("# Setup\n\nRun the installer.\n\n## Usage\n\nAsk it a question.\n")
    (docs / "photo.md").write_bytes(b"\x89PNG\r\n\x1a\n not really markdown")
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["index", "--collection", "handbook", str(docs), *data]) == 0
    err = capsys.readouterr().err
    assert "guide.txt: markdown, 2 parts" in err and "photo.md: unsupported type: a PNG image" in err
    assert "collection handbook: 1 files added" in err
    store = DocumentStore(Settings(data_dir=tmp_path / "data"))
    try:
        assert [d.filename for d in store.documents(SHARED, "handbook")] == ["guide.txt"]
        assert list(store.collections(OPEN)) == ["handbook"], "every caller may search it"
    finally:
        store.close()
    assert main(["index", "--list", "--collection", "handbook", *data]) == 0
    assert "guide.txt  markdown  2 parts" in capsys.readouterr().err
    assert main(["index", "--reset", "--collection", "handbook", *data]) == 0
    assert "1 documents removed" in capsys.readouterr().err
    assert main(["index", "--collection", "bad name!", str(docs), *data]) == 2
