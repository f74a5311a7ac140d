"""Upstream's llama-server from the llama-cpp-runtime-server wheel, on real llama.cpp at the pin: installed
beside the core wheel into a fresh venv, started by its `llama-server` command on 127.0.0.1 with a tiny
generated model, and asked by the `openai` client from PyPI; SIGTERM stops it. Every wait is bounded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from helpers import tiny_models
from helpers.real_llama_cpp import locked
from helpers.server_process import answering, free_port
from helpers.support import Project
from helpers.venvs import pip, venv, wheels_of

pytestmark = [
    pytest.mark.real_upstream,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real llama.cpp trees are tested on Linux"),
]
START_TIMEOUT = 120.0  # seconds for the server to load the model and answer /health
STOP_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def python(pinned: Project, pinned_server: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    interpreter = venv(tmp_path_factory.mktemp("server-venv"))
    with locked(pinned.root.parent.parent / "pinned-runtime.lock"):
        core = wheels_of(pinned)["llama_cpp_runtime"]
    pip(interpreter, "install", "--no-index", str(core), str(wheels_of(pinned_server)["llama_cpp_runtime_server"]))
    return interpreter


@pytest.fixture(scope="module")
def server(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`llama-server` on a free loopback port with a tiny model, answering /health; stopped afterwards."""
    folder = tmp_path_factory.mktemp("served-model")
    model = tiny_models.write_llama_model(folder / "tiny.gguf", n_layer=2, seed=3)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(python.parent / "llama-server"), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-c", "256", "-np", "1", "--alias", "tiny"]
    with answering(
        command, folder / "server.log", lambda: _status(f"{url}/health") == 200, timeout=START_TIMEOUT
    ) as process:
        yield process, url


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return 0


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


# A random-weight model emits byte tokens that are no UTF-8, which the server's chat parser refuses (HTTP 500):
# llama-server's own `grammar` parameter keeps the output to letters, as a user's JSON schema would.
LETTERS = {"grammar": "root ::= [a-z ]+"}


def client(url: str) -> openai.OpenAI:
    """The real client from PyPI (the test group's), in this process: it needs only HTTP."""
    return openai.OpenAI(base_url=f"{url}/v1", api_key="none", timeout=60, max_retries=0)


def test_the_wheel_ships_the_server_without_a_copy_of_the_core(pinned_server: Project) -> None:
    with zipfile.ZipFile(wheels_of(pinned_server)["llama_cpp_runtime_server"]) as archive:
        names = archive.namelist()
    assert "llama_cpp_runtime_server/bin/llama-server" in names
    assert not [n for n in names if "/libggml" in n or "/libllama.so" in n or "/libmtmd" in n], names


def test_health_and_models(server: tuple[subprocess.Popen[str], str]) -> None:
    _, url = server
    assert _get_json(f"{url}/health") == {"status": "ok"}
    models = _get_json(f"{url}/v1/models")
    assert isinstance(models, dict) and [m["id"] for m in models["data"]] == ["tiny"], models


def test_a_chat_completion_through_the_openai_client(server: tuple[subprocess.Popen[str], str]) -> None:
    reply = client(server[1]).chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=8,
        temperature=0,
        seed=1,
        extra_body=LETTERS,
    )
    assert reply.choices[0].finish_reason in {"length", "stop"}, reply
    assert reply.usage is not None and 1 <= reply.usage.completion_tokens <= 8, reply
    assert reply.choices[0].message.content and set(reply.choices[0].message.content) <= set(
        "abcdefghijklmnopqrstuvwxyz "
    ), reply


def test_a_streamed_completion_through_the_openai_client(server: tuple[subprocess.Popen[str], str]) -> None:
    stream = client(server[1]).completions.create(
        model="tiny", prompt="Once upon", max_tokens=8, temperature=0, stream=True, extra_body=LETTERS
    )
    chunks = [chunk for chunk in stream if chunk.choices]
    assert len(chunks) >= 2, chunks
    assert chunks[-1].choices[0].finish_reason in {"length", "stop"}, chunks[-1]


def test_sigterm_stops_the_server(server: tuple[subprocess.Popen[str], str]) -> None:
    process, url = server
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"llama-server did not stop within {STOP_TIMEOUT}s of SIGTERM")
    assert status in {0, -signal.SIGTERM, 128 + signal.SIGTERM}, status
    assert _status(f"{url}/health") == 0
