"""Export (issue 14): a finished run as Markdown, HTML, PDF and DOCX, read back with the libraries that
read them: the answer, the references and a Chinese paragraph are in the PDF's text, the DOCX opens
with python-docx and has the table, a report with a 20-row table exports, and a run belongs to the
credential that asked for it. Real uvicorn, a fake model server and a subprocess for the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import docx
from pypdf import PdfReader

from mindsearch import MindSearch, Settings
from mindsearch import events as ev
from mindsearch._exports import export, parse, report_of
from mindsearch.api import create_app
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import AppServer, FakeOpenAIServer, MemoryEngine, doc_hit

CHINESE = "长江是中国最长的河流，全长约六千三百公里"
DOCS = [doc_hit("长江", f"{CHINESE}，流经十一个省级行政区。", url="https://zh.wikipedia.org/wiki/长江")]
KEYS = ["key-alice", "key-bob"]
TABLE_ROWS = 20


def reply(body: dict[str, Any]) -> Any:
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    fmt = json.dumps(body.get("response_format") or {})
    if "PlanAction" in fmt or '"finish"' in text:
        return json.dumps({"add": [{"id": "q1", "question": "长江有多长？"}], "finish": True})
    if "QueryList" in fmt or '"queries"' in text:
        return json.dumps({"queries": ["长江 长度"]})
    if re.search(r"^\[1\] ", text, re.M):
        return f"{CHINESE} [1]。\n简短答案：六千三百公里"
    return f"{CHINESE} [1]。"


def report_with_table() -> str:
    rows = "".join(f"| 第{i}行 | {i * 10} | row {i} |\n" for i in range(1, TABLE_ROWS + 1))
    return (
        "# Rivers\n\n## Lengths\n\n"
        f"{CHINESE} [1].\n\n- first point [1]\n- second point\n\n"
        f"| name | km | note |\n|---|---|---|\n{rows}\n"
    )


def test_a_report_with_a_20_row_table_exports_to_every_format(tmp_path: Path) -> None:
    refs = [ev.Reference(n=1, title="长江 <script>", url="https://zh.wikipedia.org/wiki/长江")]
    report = report_of("question", report_with_table(), refs)
    pdf = PdfReader(io.BytesIO(export(report, "pdf", language="zh")))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert CHINESE in text and "第20行" in text and "200" in text and "first point" in text
    assert "[1] 长江 <script> - https://zh.wikipedia.org/wiki/长江" in text
    document = docx.Document(io.BytesIO(export(report, "docx", language="zh")))
    assert len(document.tables) == 1 and len(document.tables[0].rows) == TABLE_ROWS + 1
    assert document.tables[0].cell(TABLE_ROWS, 0).text == f"第{TABLE_ROWS}行"
    paragraphs = [p.text for p in document.paragraphs]
    assert any(CHINESE in p for p in paragraphs) and "first point [1]" in paragraphs
    assert any(p.startswith("[1] 长江") for p in paragraphs)
    page = export(report, "html").decode()
    assert "&lt;script&gt;" in page and "<script>" not in page  # a source's title is text, not markup
    assert '<a class="cite" href="#ref-1">[1]</a>' in page and page.count("<tr>") == TABLE_ROWS + 1
    markdown = export(report, "md").decode()
    assert markdown.startswith("# Rivers") and "| 第20行 | 200 | row 20 |" in markdown
    assert "1. 长江 <script> <https://zh.wikipedia.org/wiki/长江>" in markdown
    kinds = [b.kind for b in parse(markdown)]  # the export reads back as the same blocks, then the list
    assert kinds == [b.kind for b in parse(report_with_table())] + ["heading", "list"]


async def test_a_finished_run_exports_for_its_owner_only(tmp_path: Path) -> None:
    async with FakeOpenAIServer(reply) as llm:
        settings = Settings(
            llm="openai", base_url=f"{llm.url}/v1", model="fake", data_dir=tmp_path / "d", api_keys=KEYS
        )
        engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
        async with AppServer(create_app(settings, engine=engine)) as api, aiohttp.ClientSession() as http:
            alice, bob = ({"Authorization": f"Bearer {key}"} for key in KEYS)
            body = {"question": "长江有多长？", "stream": False}
            async with http.post(f"{api.url}/v1/search", json=body, headers=alice) as r:
                result = await r.json()
            assert r.status == 200 and result["ok"] and result["run_id"], result
            url = f"{api.url}/v1/runs/{result['run_id']}/export"
            async with http.get(url, params={"format": "pdf"}, headers=alice) as r:
                assert r.status == 200 and r.content_type == "application/pdf"
                assert "attachment" in r.headers["Content-Disposition"]
                pdf = await r.read()
            text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
            assert CHINESE in text and "参考文献" in text and "https://zh.wikipedia.org/wiki/长江" in text
            async with http.get(url, params={"format": "docx"}, headers=alice) as r:
                assert r.status == 200
                document = docx.Document(io.BytesIO(await r.read()))
            assert any(CHINESE in p.text for p in document.paragraphs)
            async with http.get(url, params={"format": "pdf"}, headers=bob) as r:
                assert r.status == 404  # another credential's run is not there
            async with http.get(url, params={"format": "exe"}, headers=alice) as r:
                assert r.status == 422


async def test_ask_output_writes_the_pdf(tmp_path: Path) -> None:
    async with FakeOpenAIServer(reply) as llm:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mindsearch",
            "ask",
            "长江有多长？",
            *llm.cli_flags(),
            "--output",
            str(tmp_path / "report.pdf"),
            "--data-dir",
            str(tmp_path / "data"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await process.communicate()
    assert "report.pdf" in err.decode()
    data = (tmp_path / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert "长江有多长" in text  # the question is the title of a plain answer


async def test_ask_output_with_an_unknown_suffix_is_refused_before_the_run(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mindsearch",
        "ask",
        "q",
        "--output",
        str(tmp_path / "a.exe"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await process.communicate()
    assert process.returncode == 2 and "use .md, .html, .pdf or .docx" in err.decode()
