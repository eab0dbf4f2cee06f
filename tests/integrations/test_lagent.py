"""mindsearch as a lagent 0.5 tool, driven by lagent's own classes: its InternLM tool-calling agents
(``AgentForInternLM`` and ``AsyncAgentForInternLM``, with their ``ActionExecutor``s, parsers, hooks and
memory) and a scripted LLM implementing lagent's model interface, so the only thing faked is the agent's
model. The tool is the real ``MindSearchAction`` / ``AsyncMindSearchAction`` around a real ``MindSearch``
run (``ScriptedModel`` + ``MemoryEngine``): the agent must get back the cited answer and its references.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mindsearch import MindSearch, Settings
from mindsearch.llm.base import ModelRequest
from mindsearch.testing import MemoryEngine, ScriptedModel, block_real_models, doc_hit, kind_of, plan_json

LAGENT: str | None
try:
    LAGENT = importlib.metadata.version("lagent")
except importlib.metadata.PackageNotFoundError:
    LAGENT = None
if not (LAGENT or "").startswith("0.5"):
    WHY = f"lagent 0.5 is not installed (found {LAGENT}): pip install --no-deps lagent==0.5.0rc2"
    if os.environ.get("CI"):  # CI installs it: a missing lagent there is a broken install, not a skip
        pytest.fail(WHY, pytrace=False)
    pytest.skip(WHY, allow_module_level=True)

from lagent.agents import AgentForInternLM, AsyncAgentForInternLM  # noqa: E402 (after the skip)
from lagent.agents.stream import PLUGIN_CN, get_plugin_prompt  # noqa: E402 (after the skip)
from lagent.llms import INTERNLM2_META, AsyncBaseLLM, BaseLLM  # noqa: E402 (after the skip)
from lagent.prompts.parsers import PluginParser  # noqa: E402 (after the skip)
from lagent.schema import ActionReturn, ActionStatusCode, AgentMessage  # noqa: E402 (after the skip)

from mindsearch.integrations.lagent import AsyncMindSearchAction, MindSearchAction  # noqa: E402 (after the skip)

QUESTION = "Which band was formed first, The Exies or Circus Diablo?"
DOCS = [
    doc_hit("The Exies", "The Exies are an American rock band formed in 1997, before Circus Diablo."),
    doc_hit("Circus Diablo", "Circus Diablo is an American rock band formed in 2004."),
]
ANSWER = "The Exies were formed in 1997 [1]."
REFERENCE = "[1] The Exies - doc://The_Exies"
ENVIRONMENT = "<|im_start|>environment"  # how INTERNLM2_META opens a tool's reply in the prompt


def searcher(request: ModelRequest) -> str:
    """mindsearch's own model: plans one node, searches, answers with a citation."""
    kind = kind_of(request)
    if kind == "plan":
        return plan_json(("q1", QUESTION, []))
    if kind == "queries":
        return '{"queries": ["The Exies formed", "Circus Diablo formed"]}'
    return ANSWER


def engine(tmp_path: Path, docs: list[Any] = DOCS) -> tuple[MindSearch, ScriptedModel]:
    model = ScriptedModel(searcher)
    return MindSearch(Settings(data_dir=tmp_path), model=model, engines=[MemoryEngine(docs)]), model


def tool_call(tool: str) -> str:
    """What an InternLM2 model writes to call a plugin."""
    call = json.dumps({"name": tool, "parameters": {"query": QUESTION}})
    return f"I should search for this.<|action_start|><|plugin|>\n{call}<|action_end|>\n"


def conclude(prompt: str) -> str:
    """The agent's last turn: it repeats the first line of what the tool gave it."""
    observation = prompt.rsplit(ENVIRONMENT, 1)[1].split("\n", 1)[1]
    return "According to mindsearch: " + observation.split("\n", 1)[0]


class ScriptedLLM(BaseLLM):  # type: ignore[misc]
    """lagent's model interface (generate on the prompt its template built): calls the tool once, then
    answers from what the tool returned. Every prompt it got is kept."""

    def __init__(self, tool: str) -> None:
        super().__init__(path="scripted", meta_template=INTERNLM2_META)
        self.tool = tool
        self.prompts: list[str] = []

    def generate(self, inputs: str, **gen_params: Any) -> str:
        self.prompts.append(inputs)
        return conclude(inputs) if ENVIRONMENT in inputs else tool_call(self.tool)


class AsyncScriptedLLM(AsyncBaseLLM):  # type: ignore[misc]
    def __init__(self, tool: str) -> None:
        super().__init__(path="scripted", meta_template=INTERNLM2_META)
        self.tool = tool
        self.prompts: list[str] = []

    async def generate(self, inputs: str, session_ids: Any = None, **gen_params: Any) -> str:
        self.prompts.append(inputs)
        return conclude(inputs) if ENVIRONMENT in inputs else tool_call(self.tool)


def plugin_parser(action: Any) -> PluginParser:
    """The tool list in the system prompt, as MindSearch's own agents build it."""
    return PluginParser(template=PLUGIN_CN, prompt=get_plugin_prompt([action]))


def check_the_agent_got_the_cited_answer(agent: Any, llm: Any, reply: AgentMessage, tool: str) -> None:
    system, last = llm.prompts[0], llm.prompts[-1]
    assert f'"name": "{tool}"' in system and '"name": "query"' in system  # tool_api's description
    assert len(llm.prompts) == 2  # one tool call, then the answer
    assert ANSWER in last and REFERENCE in last  # the tool's text reached the model's prompt
    assert reply.content == f"According to mindsearch: {ANSWER}"
    steps = agent.get_steps()
    assert [step["role"] for step in steps] == ["thought", "tool", "environment", "thought"]
    assert steps[1]["content"] == {"name": tool, "parameters": {"query": QUESTION}}
    assert steps[2]["content"].startswith(ANSWER) and REFERENCE in steps[2]["content"]


def test_the_tool_describes_itself_to_the_model(tmp_path: Path) -> None:
    for cls in (MindSearchAction, AsyncMindSearchAction):
        action = cls(engine=engine(tmp_path)[0])
        description = dict(action.description)
        assert description.pop("parameter_description").startswith("If you call this tool")  # JsonParser
        assert description == {
            "name": cls.__name__,
            "description": "Answer a question by searching, with numbered citations such as [1] and a "
            "reference list.",
            "parameters": [
                {
                    "name": "query",
                    "type": "STRING",
                    "description": "the question to answer, in English or Chinese",
                }
            ],
            "required": ["query"],
        }
        assert not action.is_toolkit


def test_a_lagent_agent_calls_mindsearch_and_gets_the_cited_answer(tmp_path: Path) -> None:
    search, model = engine(tmp_path)
    action = MindSearchAction(engine=search)
    llm = ScriptedLLM(action.name)
    agent = AgentForInternLM(llm=llm, plugins=[action], output_format=plugin_parser(action))
    try:
        reply = agent(AgentMessage(sender="user", content=QUESTION))
    finally:
        action.close()
    check_the_agent_got_the_cited_answer(agent, llm, reply, "MindSearchAction")
    assert {kind_of(call.request) for call in model.calls} >= {"plan", "queries", "answer"}


async def test_an_async_lagent_agent_calls_mindsearch_and_gets_the_cited_answer(tmp_path: Path) -> None:
    search, model = engine(tmp_path)
    async with AsyncMindSearchAction(engine=search) as action:
        llm = AsyncScriptedLLM(action.name)
        agent = AsyncAgentForInternLM(llm=llm, plugins=[action], output_format=plugin_parser(action))
        reply = await agent(AgentMessage(sender="user", content=QUESTION))
    check_the_agent_got_the_cited_answer(agent, llm, reply, "AsyncMindSearchAction")
    assert {kind_of(call.request) for call in model.calls} >= {"plan", "queries", "answer"}


async def test_the_async_action_returns_text_lagent_would_have_mangled(tmp_path: Path) -> None:
    """The answer reaches the agent as written: lagent's parser would re-encode a plain string through
    GBK and drop what it lacks ("ö" in a title); the action returns its own ActionReturn instead."""
    docs = [doc_hit("The Exies (Mötley)", "The Exies are an American rock band formed in 1997.")]
    async with AsyncMindSearchAction(engine=engine(tmp_path, docs)[0]) as action:
        result = await action(json.dumps({"query": QUESTION}))
    assert isinstance(result, ActionReturn)
    assert result.state == ActionStatusCode.SUCCESS, result.errmsg
    assert result.args == {"query": QUESTION} and result.type == "AsyncMindSearchAction"
    text = result.format_result()
    assert text.startswith(ANSWER) and "[1] The Exies (Mötley) - doc://The_Exies_(Mötley)" in text


def test_bad_arguments_and_a_run_that_cannot_start_are_errors_the_agent_reads(tmp_path: Path) -> None:
    """lagent's parser refuses a wrong argument before mindsearch runs; a run that cannot start (here:
    its model cannot be built) is an API_ERROR whose message says why, not a traceback."""
    with block_real_models():  # the default model is refused, as a missing or broken backend would be
        action = MindSearchAction(
            engine=MindSearch(Settings(data_dir=tmp_path), engines=[MemoryEngine(DOCS)])
        )
        try:
            bad = action('{"question": "wrong argument name"}')
            failed = action(json.dumps({"query": QUESTION}))
        finally:
            action.close()
    assert bad.state == ActionStatusCode.ARGS_ERROR and "unknown arguments" in bad.errmsg
    assert failed.state == ActionStatusCode.API_ERROR, failed
    assert failed.errmsg.startswith("No answer: LLMError: real model calls are blocked"), failed.errmsg
