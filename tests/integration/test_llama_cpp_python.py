"""llama-cpp-python on our wheels: its release that vendors the pin, installed from its PyPI sdist with
nothing compiled (-DLLAMA_BUILD=OFF), runs on the core wheel's libllama and best CPU variant, through
`llama_cpp_runtime.use_for("llama_cpp")` in the same process or the `env` command's variables in another.
A release made for another llama.cpp is refused with both versions named, before any call could crash.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import tiny_models
from helpers.real_llama_cpp import cache_root, download_sdist, locked
from helpers.support import GitRepo, Project
from helpers.venvs import in_venv, pip, runtime, venv, wheels_of

pytestmark = [
    pytest.mark.real_upstream,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real llama.cpp trees are tested on Linux"),
]
# No compiler at all: `false` stands in for one, and CMake is told not to try it (nothing is compiled)
NO_COMPILER = "-DCMAKE_C_COMPILER_FORCED=ON -DCMAKE_CXX_COMPILER_FORCED=ON"
NOTHING_BUILT = {"CMAKE_ARGS": f"-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF {NO_COMPILER}", "CC": "false", "CXX": "false"}


def with_llama_cpp_python(tmp_path: Path, pinned: Project, version: str) -> Path:
    """A fresh venv: the core wheel of the pin and llama-cpp-python `version` from its sdist, compiling nothing."""
    python = venv(tmp_path)
    sdist = download_sdist(version, cache_root() / "sdists")
    with locked(pinned.root.parent.parent / "pinned-runtime.lock"):
        core = wheels_of(pinned)["llama_cpp_runtime"]
    pip(python, "install", "--no-index", str(core))
    environment = {**os.environ, **NOTHING_BUILT}
    pip(python, "install", str(sdist), env=environment)
    site = Path(
        in_venv(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip()
    )
    libraries = sorted(p.name for p in (site / "llama_cpp").rglob("*") if ".so" in p.name or p.suffix == ".dylib")
    assert libraries == [], f"llama-cpp-python compiled libraries of its own: {libraries}"
    return python


def script(python: Path, code: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    result = in_venv(python, "-c", textwrap.dedent(code), *args, cwd=cwd, env=env)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.write_llama_model(tmp_path_factory.mktemp("model") / "tiny.gguf", vocab="spm", dtype="f16")


@pytest.fixture(scope="module")
def served(pinned: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_llama_cpp_python(tmp_path_factory.mktemp("llama-cpp-python"), pinned, "0.3.35")


def test_llama_cpp_python_generates_tokenizes_and_embeds_as_our_runtime_does(
    served: Path, model: Path, tmp_path: Path
) -> None:
    outcome = script(
        served,
        """
        import json, sys
        import llama_cpp_runtime as lcr
        llama_cpp = lcr.use_for("llama_cpp")
        from llama_cpp import Llama

        path = sys.argv[1]
        llm = Llama(model_path=path, n_ctx=256, verbose=False, seed=0)
        theirs_ids = llm.tokenize(b"Hello world")
        generated = []
        for token in llm.generate(theirs_ids, top_k=1, temp=0.0, reset=True):
            generated.append(token)
            if len(generated) == 8:
                break
        embedder = Llama(model_path=path, n_ctx=256, verbose=False, embedding=True,
                         pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)  # ours: the mean, without the model's
        theirs_embedding = embedder.embed("Hello world")

        runtime = lcr.load()
        with runtime.load_model(path) as model:
            ours_ids = model.tokenize("Hello world")
            with model.context(n_ctx=256) as ctx:
                ours_generated = ctx.generate(ours_ids, max_tokens=8)
            with model.context(n_ctx=256, embeddings=True) as ctx:
                ours_embedding = ctx.embed(ours_ids)
        print(json.dumps({
            "ids": [theirs_ids, ours_ids], "generated": [generated, ours_generated],
            "embedding": [list(theirs_embedding), list(ours_embedding)], "variant": runtime.report().cpu_variant,
            "library": llama_cpp.llama_cpp._lib._name,
        }))
    """,
        str(model),
        cwd=tmp_path,
    )

    assert outcome["ids"][0] == outcome["ids"][1]
    assert outcome["generated"][0] == outcome["generated"][1] and len(outcome["generated"][0]) == 8
    theirs, ours = outcome["embedding"]
    # the same vector up to summation order (llama-cpp-python runs half the CPUs' threads by default)
    assert len(theirs) == len(ours) and theirs == pytest.approx(ours, abs=1e-3)
    assert outcome["variant"]  # our loader chose the CPU variant llama-cpp-python computed with
    assert outcome["library"].endswith("/libllama.so")


def test_the_env_command_serves_llama_cpp_python_in_another_process(served: Path, model: Path, tmp_path: Path) -> None:
    printed = runtime(served, "env", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    variables = dict(line.split("=", 1) for line in printed.stdout.splitlines())
    variables = {name: shlex.split(value)[0] for name, value in variables.items()}
    assert set(variables) == {"LLAMA_CPP_LIB_PATH", "MTMD_CPP_LIB", "GGML_BACKEND_PATH"}
    links = Path(variables["LLAMA_CPP_LIB_PATH"])
    assert (links / "libllama.so").resolve() == (links / "libllama.so.0").resolve()  # one copy, two names
    assert "/libggml-cpu-" in variables["GGML_BACKEND_PATH"]

    generated = script(
        served,
        """
        import json, sys
        from llama_cpp import Llama
        llm = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)
        tokens = llm.tokenize(b"Hello world")
        print(json.dumps([t for _, t in zip(range(4), llm.generate(tokens, top_k=1, temp=0.0))]))
    """,
        str(model),
        cwd=tmp_path,
        env=variables,
    )
    assert len(generated) == 4

    late = in_venv(
        served,
        "-c",
        textwrap.dedent("""
        import llama_cpp
        import llama_cpp_runtime
        llama_cpp_runtime.use_for("llama_cpp")
    """),
        cwd=tmp_path,
        env=variables,
    )
    assert late.returncode == 1
    assert "llama_cpp was imported before use_for('llama_cpp')" in late.stderr


def test_a_release_made_for_another_llama_cpp_is_refused_with_both_versions_named(
    pinned: Project, real_llama_cpp: Path, tmp_path: Path
) -> None:
    python = with_llama_cpp_python(tmp_path, pinned, "0.3.36")

    refused = in_venv(
        python,
        "-c",
        textwrap.dedent("""
        import sys
        import llama_cpp_runtime as lcr
        try:
            lcr.use_for("llama_cpp")
        except lcr.DownstreamError as error:
            print(error)
            print("imported" if "llama_cpp" in sys.modules else "not imported")
    """),
        cwd=tmp_path,
    )

    assert refused.returncode == 0, refused.stderr
    message, state = refused.stdout.strip().splitlines()
    assert message.startswith("llama-cpp-python 0.3.36 does not match libllama of llama.cpp ")
    pin = GitRepo(real_llama_cpp, os.environ).out("rev-parse", "v0.3.35^{commit}")
    assert f"libllama of llama.cpp {pin[:12]}" in message, message
    # 0.3.36 declares a function this libllama lacks (so its import fails) and a moved field (main_gpu):
    # whichever is met first is named; the struct comparison itself is tested in tests/unit/test_downstream.py
    assert "undefined symbol: llama_adapter_lora_init_from_file_ptr" in message or "llama_model_params" in message
    assert state == "not imported"
