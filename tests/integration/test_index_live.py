"""A running server follows ``mindsearch index`` run in another process: the real API on uvicorn, the
fake model server, and the command line as a subprocess into the same data folder."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mindsearch import MindSearch, Settings
from mindsearch.api import create_app
from mindsearch.search.local import LocalEngine, LocalIndex, open_local_index, read_documents
from mindsearch.testing import AppServer, FakeOpenAIServer, clean_env, kind_of_body, plan_json

EXIES = "Which band was formed first, The Exies or Circus Diablo?"
LIGHTHOUSE = "Who keeps the Zorbington lighthouse?"
KEY = "k3y"  # /health gives engines' details only to a caller with the server's key
AUTH = {"Authorization": f"Bearer {KEY}"}
NOTE = "# Zorbington\nMarisol Quennell keeps the Zorbington lighthouse. She has kept it since 2011.\n"


def _prompt(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


def reply(body: dict[str, Any]) -> Any:
    """A model that plans the question as it is, searches its words, and answers by quoting the first
    sentence of passage [1] (so the citation check passes whatever the index holds)."""
    text = _prompt(body)
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(("q1", text.split("Question: ", 1)[1].split("\n", 1)[0], []))
    if kind == "queries":
        query = "Zorbington lighthouse" if "Zorbington" in text else "The Exies band formed"
        return json.dumps({"queries": [query]})
    if kind == "answer":
        found = re.search(r"^\[1\] [^\n]*?: (.+?[.!?])(?:\s|$)", text, re.MULTILINE)
        if not found:
            return "The passages do not answer the sub-question.\nShort answer: unknown"
        return f"{found.group(1).rstrip('.!?')} [1].\nShort answer: see above"
    answers = text.split("Sub-questions and their answers:", 1)[-1]
    cited = re.search(r"([^\n:]+ \[1\]\.)", answers)
    return cited.group(1).strip() if cited else "The sub-answers do not settle the question."


async def run_index(*args: str, data_dir: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mindsearch",
        "index",
        *args,
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    try:
        out, err = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled: leave no indexer behind
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def ask(client: aiohttp.ClientSession, api: AppServer, question: str) -> dict[str, Any]:
    body = {"question": question, "stream": False, "settings": {"language": "en"}}
    async with client.post(f"{api.url}/v1/search", json=body) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
    return result


async def local_health(client: aiohttp.ClientSession, api: AppServer) -> dict[str, Any]:
    async with client.get(f"{api.url}/health") as response:
        report: dict[str, Any] = await response.json()
    return dict(report["engines"]["local"])


def urls(result: dict[str, Any]) -> list[str]:
    return [ref["url"] for ref in result["references"]]


async def test_a_running_server_answers_from_what_mindsearch_index_adds_then_resets(tmp_path: Path) -> None:
    notes = tmp_path / "my_notes"
    notes.mkdir()
    note = notes / "lighthouse.md"
    note.write_text(NOTE)
    data = tmp_path / "data"
    async with FakeOpenAIServer(reply) as llm:
        settings = Settings(
            llm="openai", base_url=f"{llm.url}/v1", model=llm.model, data_dir=data, api_key=KEY
        )
        engine = MindSearch(settings)  # the local engine built from settings, as `mindsearch serve` does
        async with (
            AppServer(create_app(settings, engine=engine)) as api,
            aiohttp.ClientSession(headers=AUTH) as client,
        ):
            assert await local_health(client, api) == {
                "ok": True,
                "detail": "demo corpus: 2,884 Wikipedia paragraphs",
            }
            before = await ask(client, api, EXIES)
            assert before["ok"] and urls(before)[0].startswith("https://en.wikipedia.org/wiki/")

            code, _out, err = await run_index(str(notes), data_dir=data)
            assert code == 0, err
            assert "indexed      1 document  from" in err and "instead of the bundled demo corpus" in err

            answer = await ask(client, api, LIGHTHOUSE)  # the very next question, no wait
            assert answer["ok"], answer
            assert urls(answer) == [str(note.resolve())]
            assert "Marisol Quennell keeps the Zorbington lighthouse [1]." in answer["answer"]
            assert await local_health(client, api) == {
                "ok": True,
                "detail": "local index: 1 document from 1 file",
            }
            # your documents replace the demo corpus: Wikipedia is no longer searched
            after = await ask(client, api, EXIES)
            assert not any(url.startswith("https://en.wikipedia.org") for url in urls(after))

            code, _out, err = await run_index("--reset", data_dir=data)
            assert code == 0, err
            assert (await local_health(client, api))["detail"] == "demo corpus: 2,884 Wikipedia paragraphs"
            again = await ask(client, api, EXIES)
            assert urls(again)[0].startswith("https://en.wikipedia.org/wiki/")


async def test_removing_a_file_takes_its_answers_out_of_a_running_server(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lighthouse.md").write_text(NOTE)
    (notes / "other.txt").write_text("Glarus is a town in Switzerland.")
    data = tmp_path / "data"
    assert (await run_index(str(notes), data_dir=data))[0] == 0
    async with FakeOpenAIServer(reply) as llm:
        settings = Settings(
            llm="openai", base_url=f"{llm.url}/v1", model=llm.model, data_dir=data, api_key=KEY
        )
        async with (
            AppServer(create_app(settings, engine=MindSearch(settings))) as api,
            aiohttp.ClientSession(headers=AUTH) as client,
        ):
            assert (await local_health(client, api))["detail"] == "local index: 2 documents from 2 files"
            assert urls(await ask(client, api, LIGHTHOUSE)) == [str((notes / "lighthouse.md").resolve())]
            code, _out, err = await run_index("--remove", str(notes / "lighthouse.md"), data_dir=data)
            assert code == 0, err
            assert (await local_health(client, api))["detail"] == "local index: 1 document from 1 file"
            assert urls(await ask(client, api, LIGHTHOUSE)) == []


async def test_searching_while_another_process_indexes_never_fails(tmp_path: Path, shared: Path) -> None:
    """Searches and health checks run without pause while `mindsearch index` adds a large corpus, removes
    it, adds files one by one and resets, in another process; every one succeeds, and the engine ends on
    the final state."""
    data = tmp_path / "data"
    notes = tmp_path / "notes"
    notes.mkdir()
    for n in range(40):
        (notes / f"note{n}.md").write_text(f"# Note {n}\nThe quokka number {n} lives on Rottnest Island.\n")
    corpus = shared / "hipporag_v1/musique_train_corpus.json"
    engine = LocalEngine(open_local_index(data))
    stop = asyncio.Event()
    seen: set[str] = set()
    searches = 0

    async def read() -> None:
        nonlocal searches
        while not stop.is_set():
            hits = await engine.search("quokka Rottnest Island", limit=5)
            assert all(hit.text for hit in hits)
            ok, detail = await engine.check()
            assert ok and engine.error is None, detail
            seen.add(detail)
            searches += 1
            await asyncio.sleep(0)

    async def write() -> None:
        try:
            steps: list[list[str]] = [
                [str(corpus)],
                [str(notes)],
                ["--remove", str(corpus)],
                *[[str(notes / f"note{n}.md")] for n in range(5)],
                ["--remove", str(notes)],
                [str(notes)],
            ]
            for step in steps:
                code, _out, err = await run_index(*step, data_dir=data)
                assert code == 0, (step, err)
        finally:
            stop.set()

    tasks = [asyncio.create_task(work()) for work in (read, read, write)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=240)
    finally:  # a failure in one stops the others
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert searches > 20
    paragraphs = sum(1 for _ in read_documents(corpus))
    states = {  # what the index holds after each step (a step is one commit: nothing in between is seen)
        "demo corpus: 2,884 Wikipedia paragraphs",
        f"local index: {paragraphs:,} documents from 1 file",
        f"local index: {paragraphs + 40:,} documents from 41 files",
        "local index: 40 documents from 40 files",
    }
    assert seen <= states and len(seen) >= 3, seen
    assert (await engine.check())[1] == "local index: 40 documents from 40 files"
    assert (await engine.search("quokka number 7", limit=1))[0].url == str((notes / "note7.md").resolve())


async def test_two_index_commands_at_once_both_land(tmp_path: Path) -> None:
    """The second waits for the first's writer instead of failing."""
    data = tmp_path / "data"
    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        for n in range(30):
            (folder / f"{name}{n}.txt").write_text(f"Document {n} of folder {name}.")
        folders.append(folder)
    results = await asyncio.gather(*(run_index(str(f), data_dir=data) for f in folders))
    assert [code for code, _out, _err in results] == [0, 0], results
    code, out, _err = await run_index("--list", data_dir=data)
    assert code == 0 and out.splitlines()[-1] == f"60 documents from 60 files in {data / 'index'}"


async def test_an_index_that_cannot_be_reopened_keeps_the_old_one_searchable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    note = tmp_path / "lighthouse.md"
    note.write_text(NOTE)
    LocalIndex(data / "index").add(read_documents(note))
    engine = LocalEngine(open_local_index(data), retry_after=0.0)
    assert (await engine.search("Zorbington", limit=1))[0].url == str(note.resolve())
    meta = data / "index" / "meta.json"
    saved = meta.read_text()
    meta.write_text("{not json")  # as if replaced by something broken
    assert (await engine.search("Zorbington", limit=1))[0].url == str(note.resolve())
    ok, detail = await engine.check()
    assert not ok and detail.startswith("local index: 1 document from 1 file; it changed on disk but")
    meta.write_text(saved)
    assert await engine.check() == (True, "local index: 1 document from 1 file")
    assert engine.error is None


@pytest.mark.parametrize("replace", ["delete", "replace"])
async def test_an_index_folder_deleted_or_replaced_is_followed(tmp_path: Path, replace: str) -> None:
    import shutil

    data = tmp_path / "data"
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("The quokka lives on Rottnest Island.")
    second.write_text("The quokka also lives in Western Australia.")
    LocalIndex(data / "index").add(read_documents(first))
    engine = LocalEngine(open_local_index(data))
    assert (await engine.check())[1] == "local index: 1 document from 1 file"
    shutil.rmtree(data / "index")
    if replace == "replace":
        LocalIndex(data / "index").add([*read_documents(first), *read_documents(second)])
        assert (await engine.check())[1] == "local index: 2 documents from 2 files"
    else:
        assert (await engine.check())[1] == "demo corpus: 2,884 Wikipedia paragraphs"
        assert not (data / "index").exists(), "a reader never creates an index"
