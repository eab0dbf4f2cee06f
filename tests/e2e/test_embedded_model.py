"""End to end with the real embedded model (Gemma 3 270M on llama.cpp), as a new user runs it.

Each test checks the answer, not only that one came: a question whose answer is not in the question
(Pizza Hut's founding: 1958, Dan and Frank Carney) must be answered with those facts, cited to the page
that holds them; a comparison must pick the right side (The Exies, formed in 1997, before Circus Diablo,
2006), cited to the page that says so, since a bare "Exies" in the output is in the question already.
The model is greedy (temperature 0) over a fixed bundled index, so a right answer today is a right answer
tomorrow unless something changed. Where a test is about something else (the JSON events, the answer's
language), the honest "not found" reply is accepted as well, but a wrong answer never is.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from mindsearch.testing import clean_env

pytestmark = pytest.mark.model
PIZZA_HUT = "When was Pizza Hut founded, and by whom?"
EXIES = "Which band was formed first, The Exies or Circus Diablo?"
NOT_FOUND = "I could not find an answer to this question in the sources I read."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mindsearch",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def check_cited_answer(out: str) -> tuple[str, dict[int, str]]:
    """The answer's text and its numbered references (``[n] title - url``), checked to match."""
    answer_and_refs = out.split("References")
    assert len(answer_and_refs) == 2, out
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer_and_refs[0])}
    listed = {int(n): line for n, line in re.findall(r"^\[(\d+)\] (.*)$", answer_and_refs[1], re.MULTILINE)}
    assert numbers and numbers == set(listed) == set(range(1, len(listed) + 1)), out
    return answer_and_refs[0], listed


def cited_where(answer: str, words: str, references: dict[int, str]) -> list[str]:
    """The references cited in the sentences of the answer that contain ``words``."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer) if words in s]
    return [references[int(n)] for s in sentences for n in re.findall(r"\[(\d+)\]", s)]


def check_pizza_hut(out: str) -> None:
    answer, references = check_cited_answer(out)
    assert "1958" in answer and "Carney" in answer, f"wrong or incomplete answer: {answer!r}"
    cited = cited_where(answer, "1958", references)
    assert any(line.endswith("/wiki/Pizza_Hut") for line in cited), f"1958 not cited to Pizza Hut: {out}"


def check_exies(out: str) -> None:
    answer, references = check_cited_answer(out)
    # the band named first is the one said to be formed first; Circus Diablo may follow (as the later)
    named = [m.group(0) for m in re.finditer(r"Exies|Circus Diablo", answer)]
    assert named and named[0] == "Exies", f"does not answer The Exies: {answer!r}"
    cited = cited_where(answer, "Exies", references) or list(references.values())
    assert any(line.endswith("/wiki/The_Exies") for line in cited), f"The Exies' page not cited: {out}"


async def test_default_run_gives_a_right_streamed_cited_answer(data_dir: Path) -> None:
    code, out, err = await run_cli("ask", PIZZA_HUT, "--data-dir", str(data_dir))
    assert code == 0, out + err
    check_pizza_hut(out)
    assert "Traceback" not in out + err


async def test_a_comparison_is_answered_with_the_right_side_or_honestly_in_part(data_dir: Path) -> None:
    """The 270M model compares wrongly more often than not ("Circus Diablo was formed first", "formed in
    2014"): what must hold is that a wrong side never reaches the answer. A complete run (exit 0) names
    The Exies first, cited to its page; an incomplete one (exit 1, the comparing step's answer had no
    source) keeps only cited facts that are true of The Exies, or says it found nothing."""
    code, out, err = await run_cli("ask", EXIES, "--data-dir", str(data_dir))
    assert "Traceback" not in out + err
    if code == 0:
        check_exies(out)
        return
    assert code == 1, out + err
    if NOT_FOUND in out:
        return
    answer, references = check_cited_answer(out)
    assert "Circus Diablo" not in answer.split("Exies")[0], f"a wrong side came first: {answer!r}"
    assert "first" not in answer or re.search(r"Exies\b[^.]*\bfirst", answer), answer
    cited = cited_where(answer, "Exies", references)
    assert cited and all(line.endswith("/wiki/The_Exies") for line in cited), out


async def test_json_events_of_the_embedded_run(data_dir: Path) -> None:
    _code, out, _err = await run_cli(
        "ask",
        "Who founded the American Psychological Association journal Journal of Psychotherapy Integration?",
        "--json",
        "--data-dir",
        str(data_dir),
    )
    events = [json.loads(line) for line in out.splitlines()]
    done = events[-1]
    assert done["type"] == "done", out
    assert any(e["type"] == "node_done" for e in events)
    # published by the APA on behalf of the Society for the Exploration of Psychotherapy Integration:
    # that society, cited to the journal's page, or honestly not found; never a wrong founder
    urls = [r["url"] for r in done["references"]]
    right = "Society for the Exploration of Psychotherapy Integration" in done["answer"] and any(
        url.endswith("/wiki/Journal_of_Psychotherapy_Integration") for url in urls
    )
    assert right or (done["answer"] == NOT_FOUND and not urls), done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def llama_server(data_dir: Path) -> AsyncIterator[str]:
    """llama.cpp's OpenAI-compatible server (llama-cpp-python's) with the embedded model, on loopback."""
    from mindsearch.llm.llamacpp import default_model_path

    model = default_model_path(data_dir)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "8192",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(120):
                try:
                    async with session.get(f"{url}/models") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.5)
            else:
                pytest.fail("llama.cpp's server did not start")
        yield url
    finally:
        process.terminate()
        await process.wait()


async def test_openai_backend_against_llama_cpp_server(llama_server: str, data_dir: Path) -> None:
    code, out, err = await run_cli(
        "ask",
        PIZZA_HUT,
        "--llm",
        "openai",
        "--base-url",
        llama_server,
        "--prompt-style",
        "base",
        "--data-dir",
        str(data_dir),
    )
    assert code == 0, out + err
    check_pizza_hut(out)


async def test_a_chinese_question_gets_a_chinese_answer_or_a_chinese_not_found(data_dir: Path) -> None:
    _code, out, err = await run_cli(
        "ask", "Pizza Hut 是哪一年由谁创立的？", "--json", "--data-dir", str(data_dir)
    )
    events = [json.loads(line) for line in out.splitlines()]
    done = events[-1]
    assert done["type"] == "done", out + err
    answer = done["answer"]
    assert re.search(r"[\u4e00-\u9fff]", answer), f"not a Chinese answer: {answer!r}"
    internal = re.search(r"model gave|sub-question|timed out|could not|error|failed", answer, re.IGNORECASE)
    assert internal is None, f"internal English text in the answer: {answer!r}"
    # the demo corpus has Pizza Hut's founding (1958, Dan and Frank Carney): answered and cited to that
    # page, or honestly not found (the 270M model often loses its way in Chinese over English passages)
    urls = [r["url"] for r in done["references"]]
    answered = "1958" in answer and any(url.endswith("/wiki/Pizza_Hut") for url in urls)
    assert answered or (answer == "我在读到的资料中没有找到这个问题的答案。" and not urls), answer
