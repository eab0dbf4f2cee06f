"""`mindsearch eval`, killed and run again, resumes where it stopped."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from mindsearch.testing import FakeOpenAIServer, clean_env, kind_of_body, plan_json

QUESTIONS = [
    ("a", "Who founded Alpha Corp?", "Ada Lovelace", "Alpha Corp was founded by Ada Lovelace in 1840."),
    ("b", "Who founded Beta Corp?", "Bob Builder", "Beta Corp was founded by Bob Builder in 1990."),
    ("c", "Who founded Gamma Corp?", "Carl Sagan", "Gamma Corp was founded by Carl Sagan in 1970."),
]


def dataset(tmp_path: Path) -> Path:
    rows = []
    for qid, question, answer, text in QUESTIONS:
        rows.append(
            {
                "id": qid,
                "question": question,
                "answer": answer,
                "answer_aliases": [],
                "answerable": True,
                "question_decomposition": [{"question": question}],
                "paragraphs": [
                    {"idx": 0, "title": f"{qid} corp", "paragraph_text": text, "is_supporting": True},
                    {
                        "idx": 1,
                        "title": "noise",
                        "paragraph_text": "Unrelated text about rivers.",
                        "is_supporting": False,
                    },
                ],
            }
        )
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(rows))
    return path


def asked(body: dict[str, Any]) -> str:
    text = "\n".join(str(m.get("content", "")) for m in body["messages"])
    return next((q for _, q, _, _ in QUESTIONS if q in text), "")


async def reply(body: dict[str, Any]) -> Any:
    kind, question = kind_of_body(body), asked(body)
    if kind == "plan":
        return plan_json(("q1", question, []))
    if kind == "queries":
        return json.dumps({"queries": [question]})
    if "Beta" in question:
        await asyncio.sleep(30)  # the run is killed while it answers the second question
    answer = next(a for _, q, a, _ in QUESTIONS if q == question)
    return f"{answer} founded it [1]."


async def run_eval(
    llm: FakeOpenAIServer, data: Path, out: Path, tmp_path: Path
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mindsearch",
        "eval",
        str(data),
        "--output",
        str(out),
        *llm.cli_flags(),
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )


async def test_killed_eval_resumes_without_redoing_answered_questions(tmp_path: Path) -> None:
    data, out = dataset(tmp_path), tmp_path / "results.jsonl"
    async with FakeOpenAIServer(reply) as llm:
        process = await run_eval(llm, data, out, tmp_path)
        for _ in range(300):  # wait for the first answer line, then kill mid-way through the second
            answering_b = any("Beta" in asked(r.body) for r in llm.requests)
            if out.exists() and out.read_text().count("\n") >= 1 and answering_b:
                break
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        first = [json.loads(line)["id"] for line in out.read_text().splitlines()]
        assert first == ["a"]
        seen_before = len(llm.requests)
        llm.handler = fast_reply
        process = await run_eval(llm, data, out, tmp_path)
        stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        later = llm.requests[seen_before:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert not any("Alpha" in asked(r.body) for r in later), "the answered question was not asked again"
    # "Ada Lovelace founded it [1]." is scored by its short answer, the name: exact match
    assert all(r["em"] == 1.0 and r["short_answer"] == r["gold_answers"][0] for r in rows)
    assert all(r["contains"] == 1.0 and not r["withheld"] for r in rows)
    assert all(r["gold_recall"] == 1.0 and r["citation_precision"] == 1.0 for r in rows)
    assert "| 3 | 3 |" in stdout.decode()


async def fast_reply(body: dict[str, Any]) -> Any:
    kind, question = kind_of_body(body), asked(body)
    if kind == "plan":
        return plan_json(("q1", question, []))
    if kind == "queries":
        return json.dumps({"queries": [question]})
    answer = next(a for _, q, a, _ in QUESTIONS if q == question)
    return f"{answer} founded it [1]."
