"""Uploads (issue 14): real PDF and DOCX files made inside the test (a Chinese paragraph, a table), and the
files an upload must refuse (an encrypted PDF, a zip bomb named .docx, an empty file, one over the cap),
each refused by name while the others land; then the uploaded text is found by the next question and
cited with its file name and page, only within the caller's own collections. Real uvicorn, a fake
OpenAI-compatible model server, loopback only."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from mindsearch import MindSearch, Settings
from mindsearch._documents import extract, sniff
from mindsearch._exports import cjk_font
from mindsearch.api import create_app
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import AppServer, FakeOpenAIServer

CHINESE = "长江是中国最长的河流，全长约六千三百公里，流经十一个省级行政区。"
TABLE = [["River", "Length (km)"], ["Yangtze", "6300"], ["Yellow River", "5464"]]
KEYS = ["key-alice", "key-bob"]


def make_pdf(pages: list[str], table: list[list[str]] | None = None) -> bytes:
    font = cjk_font()
    assert font is not None, "the tests need a CJK font (fonts-wqy-microhei; .ci/run installs it)"
    pdf = FPDF()
    pdf.add_font("cjk", "", str(font))
    pdf.add_font("cjk", "B", str(font))
    for text in pages:
        pdf.add_page()
        pdf.set_font("cjk", size=12)
        pdf.multi_cell(0, 8, text)
    if table:
        with pdf.table() as grid:
            for row in table:
                cells = grid.row()
                for cell in row:
                    cells.cell(cell)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Rivers of China", level=1)
    document.add_paragraph(CHINESE)
    document.add_heading("Lengths", level=1)
    grid = document.add_table(rows=len(TABLE), cols=2)
    for r, row in enumerate(TABLE):
        for c, cell in enumerate(row):
            grid.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Secret plans for the Varn dam."]))))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_bomb() -> bytes:
    """A small ZIP that unpacks to 20 MB, with the parts a .docx has."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * 20_000_000)
    return out.getvalue()


def reply(body: dict[str, Any]) -> Any:
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    fmt = json.dumps(body.get("response_format") or {})
    if "PlanAction" in fmt or '"finish"' in text:
        return json.dumps({"add": [{"id": "q1", "question": "How long is the Yangtze?"}], "finish": True})
    if "QueryList" in fmt or '"queries"' in text:
        return json.dumps({"queries": ["长江 最长的河流"]})
    passage = re.search(r"^\[1\] (.+?): (.+)$", text, re.M)
    if passage:
        first = re.split(r"(?<=[。.])", passage.group(2))[0].rstrip("。.")
        return f"{first} [1]。\nShort answer: 6300 km"
    answer = re.search(r"^- .+?\? (.+\[1\].*)$", text, re.M)  # the writer: the sub-answer, as it is
    return answer.group(1) if answer else "Nothing found."


def server(tmp_path: Path, llm: FakeOpenAIServer, **changes: Any) -> AppServer:
    settings = Settings(
        llm="openai",
        base_url=f"{llm.url}/v1",
        model="fake",
        data_dir=tmp_path / "data",
        engines=["local"],
        api_keys=KEYS,
        upload_max_file_bytes=300_000,
        upload_max_unzipped_bytes=10_000_000,
        **changes,
    )
    engine = MindSearch(settings, model=OpenAIModel.from_settings(settings))
    return AppServer(create_app(settings, engine=engine))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload_form(files: list[tuple[str, bytes]], collection: str = "mine") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("collection", collection)
    for name, data in files:
        form.add_field("files", data, filename=name, content_type="application/octet-stream")
    return form


async def test_an_upload_lands_what_it_can_and_names_each_file_it_refuses(tmp_path: Path) -> None:
    files = [
        ("rivers.pdf", make_pdf(["An atlas of rivers.", CHINESE], TABLE)),
        ("rivers.docx", make_docx()),
        ("locked.pdf", encrypted_pdf()),
        ("report.docx", zip_bomb()),
        ("empty.txt", b""),
        ("huge.txt", b"long text " * 40_000),
    ]
    async with FakeOpenAIServer(reply) as llm, server(tmp_path, llm) as api, aiohttp.ClientSession() as http:
        async with http.post(f"{api.url}/v1/documents", data=upload_form(files), headers=auth(KEYS[0])) as r:
            result = await r.json()
        assert r.status == 207, result
        assert [(d["filename"], d["type"]) for d in result["documents"]] == [
            ("rivers.pdf", "pdf"),
            ("rivers.docx", "docx"),
        ]
        assert result["documents"][0]["parts"] == 2  # one per page
        refused = {e["file"]: (e["status"], e["message"]) for e in result["errors"]}
        assert set(refused) == {"locked.pdf", "report.docx", "empty.txt", "huge.txt"}
        assert refused["locked.pdf"][0] == 422 and "encrypted" in refused["locked.pdf"][1]
        assert refused["report.docx"][0] == 413 and "zip bomb" in refused["report.docx"][1]
        assert refused["empty.txt"][0] == 400 and "empty" in refused["empty.txt"][1]
        assert refused["huge.txt"][0] == 413 and "300,000" in refused["huge.txt"][1]
        assert all(400 <= status < 500 for status, _m in refused.values())

        # the next question finds the uploaded Chinese paragraph and cites the file and its page
        body = {
            "question": "长江有多长？",
            "stream": False,
            "settings": {"engines": ["local"], "collections": ["mine"]},
        }
        async with http.post(f"{api.url}/v1/search", json=body, headers=auth(KEYS[0])) as r:
            answer = await r.json()
        assert r.status == 200, answer
        titles = [ref["title"] for ref in answer["references"]]
        assert any(t == "rivers.pdf, page 2" for t in titles), answer
        assert "长江是中国最长的河流" in answer["answer"]

        # another key sees none of it: not in its list, not searchable, not deletable
        async with http.get(f"{api.url}/v1/documents", headers=auth(KEYS[1])) as r:
            assert (await r.json())["documents"] == []
        async with http.post(f"{api.url}/v1/search", json=body, headers=auth(KEYS[1])) as r:
            foreign = await r.json()
        assert r.status == 422 and "no such collection: mine" in foreign["error"]["message"]
        doc_id = result["documents"][0]["id"]
        async with http.delete(f"{api.url}/v1/documents/{doc_id}", headers=auth(KEYS[1])) as r:
            assert r.status == 404
        # its owner deletes it: gone from the list
        async with http.delete(f"{api.url}/v1/documents/{doc_id}", headers=auth(KEYS[0])) as r:
            assert r.status == 200
        async with http.get(f"{api.url}/v1/documents", headers=auth(KEYS[0])) as r:
            assert [d["filename"] for d in (await r.json())["documents"]] == ["rivers.docx"]


async def test_an_upload_of_only_bad_files_is_a_4xx_and_a_body_over_the_total_is_413(tmp_path: Path) -> None:
    async with (
        FakeOpenAIServer(reply) as llm,
        server(tmp_path, llm, upload_max_total_bytes=500_000) as api,
        aiohttp.ClientSession() as http,
    ):
        form = upload_form([("notes.pdf", b"%PDF-1.7 this is not really a PDF")])
        async with http.post(f"{api.url}/v1/documents", data=form, headers=auth(KEYS[0])) as r:
            result = await r.json()
        assert r.status == 422 and "notes.pdf" in result["error"]["message"], result
        big = upload_form([("a.txt", b"x" * 300_000), ("b.txt", b"y" * 300_000)])
        async with http.post(f"{api.url}/v1/documents", data=big, headers=auth(KEYS[0])) as r:
            assert r.status == 413
        async with http.post(f"{api.url}/v1/documents", data=upload_form([]), headers=auth(KEYS[0])) as r:
            assert r.status == 422


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("page.txt", b"<!doctype html><html><body><h1>Hi</h1><p>x</p></body></html>", "html"),
        ("data.md", b'{"title": "t", "text": "body"}', "json"),
        ("rows.json", b'{"title": "a", "text": "1"}\n{"title": "b", "text": "2"}\n', "jsonl"),
        ("notes.html", b"# Heading\n\nSome *markdown* text.\n", "markdown"),
        ("plain.pdf", "纯文本，没有格式。".encode("gb18030"), "text"),
    ],
)
def test_the_type_comes_from_the_content_not_the_name(name: str, data: bytes, kind: str) -> None:
    assert sniff(name, data) == kind


def test_references_name_the_heading_of_markdown_and_docx() -> None:
    _kind, parts = extract("guide.md", b"# Setup\n\nRun it.\n\n## Usage\n\nAsk it.\n", max_unzipped=10**6)
    assert [(p.label, p.anchor) for p in parts] == [("Setup", "setup"), ("Usage", "usage")]
    _kind, parts = extract("rivers.docx", make_docx(), max_unzipped=10**7)
    assert [p.label for p in parts] == ["Rivers of China", "Lengths"]
    assert "Yangtze | 6300" in parts[1].text
