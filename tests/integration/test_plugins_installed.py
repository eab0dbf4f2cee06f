"""A real plugin package, pip-installed into this venv: its engine and its model backend used by name from
the command line (a new process, as a user runs it) and from the API, and a broken plugin beside them that
stops only the commands that use it.

The package is a folder with a pyproject.toml declaring the entry points, as a plugin author writes it.
It is installed offline with ``pip install --no-deps --no-index``: straight from the folder when the
venv's setuptools can build a wheel without a network (setuptools 70.1+, or the ``wheel`` package),
otherwise from a wheel this module builds from the same folder (the wheel format is a zip with the
module, METADATA, entry_points.txt and RECORD). It is uninstalled when the module's tests end.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import json
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomllib

from mindsearch import Settings, plugins
from mindsearch.api import create_app
from mindsearch.testing import AppServer, FakeOpenAIServer, kind_of_body

DIST = "mindsearch-test-plugin"
PLUGIN_URL = "https://plugin.example/zephyr"
QUESTION = "When was the Zephyr Lighthouse built?"

PYPROJECT = f"""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "0.1.0"
description = "A mindsearch plugin for the tests: an engine with fixed hits and a scripted model"
dependencies = ["mindsearch"]

[project.entry-points."mindsearch.engines"]
myengine = "mindsearch_test_plugin:factory"
brokenengine = "mindsearch_test_broken_plugin:factory"

[project.entry-points."mindsearch.models"]
mymodel = "mindsearch_test_plugin:model"

[tool.setuptools]
py-modules = ["mindsearch_test_plugin", "mindsearch_test_broken_plugin"]
"""

PLUGIN = f'''\
"""An engine that always finds one document, and a model with fixed replies."""

from mindsearch.search.base import SearchEngine, SearchHit

TEXT = "The Zephyr Lighthouse on Corvo Island was built in 1887 by the engineer Alda Moreno."


class ZephyrEngine(SearchEngine):
    name = "myengine"
    is_web = False

    async def search(self, query, *, limit):  # the signature from before time ranges and languages
        return [SearchHit("{PLUGIN_URL}", "Zephyr Lighthouse", TEXT[:80], self.name, text=TEXT)][:limit]


def factory(settings):
    return ZephyrEngine()


def model(settings):
    from mindsearch.testing import ScriptedModel, kind_of

    def reply(request):
        if kind_of(request) == "queries":
            return '{{"queries": ["Zephyr Lighthouse built"]}}'
        return "The Zephyr Lighthouse was built in 1887 by Alda Moreno [1]."

    return ScriptedModel(reply, name="mymodel")
'''

BROKEN = '''\
"""A plugin whose dependency is missing."""

import mindsearch_plugin_dependency_that_is_not_installed  # noqa: F401


def factory(settings):
    raise AssertionError("never reached")
'''


def write_plugin(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "mindsearch_test_plugin.py").write_text(PLUGIN)
    (folder / "mindsearch_test_broken_plugin.py").write_text(BROKEN)
    return folder


def can_build_offline() -> bool:
    """Whether setuptools can build a wheel here without fetching anything."""
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def build_wheel(folder: Path, out: Path) -> Path:
    """A wheel of the plugin folder: its modules and the metadata its pyproject.toml declares."""
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files: dict[str, bytes] = {path.name: path.read_bytes() for path in sorted(folder.glob("*.py"))}
    requires = "".join(f"Requires-Dist: {dependency}\n" for dependency in project.get("dependencies", []))
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}".encode()
    )
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: mindsearch-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    groups = project.get("entry-points", {})
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items()) + "\n"
        for group, entries in groups.items()
    ).encode()
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = out / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def rediscover() -> None:
    """Find the plugins again in this process, keeping the test doubles ``block_real_models`` put in."""
    doubles = dict(plugins.BACKENDS)
    plugins.refresh()
    for name, factory in doubles.items():
        plugins.BACKENDS[name] = factory


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = write_plugin(tmp_path_factory.mktemp("plugin") / "mindsearch-test-plugin")
    target = folder if can_build_offline() else build_wheel(folder, tmp_path_factory.mktemp("wheel"))
    done = pip("install", "--no-deps", "--no-index", "--no-build-isolation", str(target))
    assert done.returncode == 0, done.stderr
    try:
        yield folder
    finally:
        removed = pip("uninstall", "-y", DIST)
        for module in ("mindsearch_test_plugin", "mindsearch_test_broken_plugin"):
            sys.modules.pop(module, None)
        rediscover()
        assert removed.returncode == 0, removed.stderr


def answers(body: dict[str, Any]) -> Any:
    if kind_of_body(body) == "queries":
        return '{"queries": ["Zephyr Lighthouse built"]}'
    if "Pizza Hut" in json.dumps(body):
        return "Pizza Hut was founded in 1958 by Dan and Frank Carney [1]."
    return "The Zephyr Lighthouse was built in 1887 by Alda Moreno [1]."


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(answers) as server:
        yield server


async def mindsearch(*args: str) -> tuple[int, str, str]:
    """The ``mindsearch`` command of this venv, as a user runs it."""
    command = Path(sys.executable).with_name("mindsearch")
    program = [str(command)] if command.exists() else [sys.executable, "-m", "mindsearch"]
    process = await asyncio.create_subprocess_exec(
        *program, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def test_the_cli_searches_with_a_plugins_engine_by_name(
    installed: Path, llm: FakeOpenAIServer, tmp_path: Path
) -> None:
    code, out, err = await mindsearch(
        "ask", QUESTION, "--engine", "myengine", "--depth", "quick", "--time-range", "week", "--json",
        "--llm", "openai", "--base-url", f"{llm.url}/v1", "--model", "fake", "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    lines = events(out)
    assert lines[0]["engines"] == ["myengine"]
    done = lines[-1]
    assert done["type"] == "done" and done["ok"] and "1887" in done["answer"]
    assert [ref["url"] for ref in done["references"]] == [PLUGIN_URL], (
        "the answer cites the plugin's document"
    )
    notes = [line["message"] for line in lines if line["type"] == "error"]
    assert notes == ["myengine: cannot limit results to the past week; its results are used unfiltered"], (
        "a plugin written without time ranges is called as before, and the run says what it cannot do"
    )


async def test_the_cli_answers_with_a_plugins_model_by_name(installed: Path, tmp_path: Path) -> None:
    code, out, err = await mindsearch(
        "ask", QUESTION, "--llm", "mymodel", "--engine", "myengine", "--depth", "quick", "--json",
        "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    lines = events(out)
    assert lines[0]["llm"] == "mymodel"
    assert lines[-1]["answer"] == "The Zephyr Lighthouse was built in 1887 by Alda Moreno [1]."


async def test_the_help_lists_the_plugins_names(installed: Path) -> None:
    code, out, _err = await mindsearch("ask", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "local, duckduckgo, searxng, brave, serper, tavily, myengine, brokenengine" in text
    assert "llamacpp, openai, lmdeploy, mymodel" in text


async def test_a_broken_plugin_stops_only_the_commands_that_use_it(
    installed: Path, llm: FakeOpenAIServer, tmp_path: Path
) -> None:
    code, out, err = await mindsearch("index", "--list", "--data-dir", str(tmp_path))
    assert code == 0 and "demo corpus" in out and not err, err
    code, out, err = await mindsearch(
        "ask", "When was Pizza Hut founded, and by whom?", "--engine", "local", "--depth", "quick", "--json",
        *llm.cli_flags(), "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0 and "broken" not in out + err, err
    code, out, err = await mindsearch(
        "ask", QUESTION, "--engine", "local,brokenengine", *llm.cli_flags(), "--data-dir", str(tmp_path)
    )
    assert code == 2 and not out
    assert err.strip() == (
        "mindsearch: the engine plugin 'brokenengine' (mindsearch_test_broken_plugin:factory, from the "
        f"package {DIST}) cannot be loaded: ModuleNotFoundError: No module named "
        "'mindsearch_plugin_dependency_that_is_not_installed'"
    )
    code, _out, err = await mindsearch("ask", QUESTION, "--engine", "bing", "--data-dir", str(tmp_path))
    assert code == 2 and "unknown engine(s) ['bing']; choose from local, duckduckgo" in err
    assert "myengine, brokenengine" in err


async def test_the_api_answers_from_a_plugins_engine_and_lists_it(
    installed: Path, llm: FakeOpenAIServer, tmp_path: Path
) -> None:
    rediscover()  # installed after this process first looked
    settings = Settings(
        llm="openai",
        base_url=f"{llm.url}/v1",
        model="fake",
        data_dir=tmp_path,
        engines=["myengine"],
        api_key="k",
    )
    headers = {"Authorization": "Bearer k"}
    async with AppServer(create_app(settings)) as api, aiohttp.ClientSession(headers=headers) as client:
        body = {"question": QUESTION, "stream": False, "settings": {"depth": "quick"}}
        async with client.post(f"{api.url}/v1/search", json=body) as response:
            assert response.status == 200, await response.text()
            result = await response.json()
        async with client.get(f"{api.url}/v1/engines") as response:
            listing = await response.json()
        async with client.get(f"{api.url}/openapi.json") as response:
            schema = await response.json()
    assert result["ok"] and [ref["url"] for ref in result["references"]] == [PLUGIN_URL]
    assert listing["enabled"] == ["myengine"]
    by_name = {engine["name"]: engine for engine in listing["engines"]}
    assert by_name["myengine"] == {
        "name": "myengine",
        "enabled": True,
        "package": DIST,
        "time_ranges": [],
        "search_language": False,
    }
    assert by_name["brokenengine"]["enabled"] is False, "listed from its metadata, never imported"
    assert "mindsearch_test_broken_plugin" not in sys.modules
    options = next(v for k, v in schema["components"]["schemas"].items() if k.startswith("SearchOptions"))
    array = next(v for v in options["properties"]["engines"]["anyOf"] if v.get("type") == "array")
    assert array["items"]["enum"] == ["myengine"]
