"""The model runtime of the binding on real llama.cpp: the core wheel of the pin, built from the real tree
and installed with plain pip into a fresh venv, loads tiny GGUF models written here (tests/helpers/tiny_models.py),
tokenizes, generates, embeds, and refuses bad input with typed errors instead of dying.
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import tiny_models
from helpers.module_build import build_library
from helpers.real_llama_cpp import locked
from helpers.support import Project
from helpers.toolchains_present import openblas, vulkan
from helpers.venvs import in_venv, pip, runtime, venv, wheels_of
from llama_cpp_runtime import read_header

from buildsys.builder.presets import load_matrix

pytestmark = [
    pytest.mark.real_upstream,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real llama.cpp trees are tested on Linux"),
]
TEXTS = ["Hello world", "hello the model", "héllo wörld ✓ 日本語 🦙", "  two  spaces\nand a line", ""]


@pytest.fixture(scope="session")
def python(pinned: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the core wheel of the pin (every CPU variant), installed with plain pip."""
    interpreter = venv(tmp_path_factory.mktemp("cpu-venv"))
    with locked(pinned.root.parent.parent / "pinned-runtime.lock"):
        pip(interpreter, "install", "--no-index", str(wheels_of(pinned)["llama_cpp_runtime"]))
    return interpreter


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    made = {
        f"{vocab}-{dtype}": tiny_models.write_llama_model(root / f"{vocab}-{dtype}.gguf", vocab=vocab, dtype=dtype)
        for vocab in ("spm", "bpe")
        for dtype in ("f32", "f16")
    }
    made["q8_0"] = tiny_models.write_llama_model(root / "q8_0.gguf", dtype="q8_0", n_embd=64, n_ff=128)
    return made


def script(python: Path, code: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    """Run code in the venv; its last stdout line is JSON. A crash or a traceback fails the test."""
    result = in_venv(python, "-c", textwrap.dedent(code), *args, cwd=cwd, env=env)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_load_tokenize_generate_with_and_without_mmap(python: Path, models: dict[str, Path], tmp_path: Path) -> None:
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        out = {}
        for path in sys.argv[2:]:
            for mmap in (True, False):
                with rt.load_model(path, mmap=mmap) as model:
                    texts = json.loads(sys.argv[1])
                    ids = [model.tokenize(t, add_special=False) for t in texts]
                    with model.context(n_ctx=256) as ctx:
                        first = ctx.generate(model.tokenize("Hello world"), max_tokens=12)
                        again = ctx.generate(model.tokenize("Hello world"), max_tokens=12)
                        logits = ctx.decode(model.tokenize("Hello"))
                        n_past = ctx.n_past
                        ctx.reset()
                        after_reset = ctx.n_past
                    out[f"{path}:{mmap}"] = {
                        "ids": ids, "back": [model.detokenize(i) for i in ids], "with_bos": model.tokenize("Hello"),
                        "generated": [first, again], "n_logits": len(logits), "n_vocab": model.n_vocab,
                        "n_past": [n_past, after_reset], "metadata": model.metadata,
                        "text": model.detokenize(first),
                    }
        print(json.dumps(out))
    """
    paths = [str(models[name]) for name in ("spm-f32", "spm-f16", "bpe-f32", "bpe-f16", "q8_0")]
    results = script(python, code, json.dumps(TEXTS), *paths, cwd=tmp_path)
    for path in paths:
        mapped, read = results[f"{path}:True"], results[f"{path}:False"]
        assert mapped["back"] == TEXTS, path  # byte fallback (SPM) and byte-level BPE: any UTF-8 round-trips
        assert all(ids for ids, text in zip(mapped["ids"], TEXTS, strict=True) if text)
        assert mapped["with_bos"][0] != mapped["ids"][0][0]  # add_special put BOS first
        first, again = mapped["generated"]
        assert first == again and 0 < len(first) <= 12, path  # greedy: the same tokens every time
        assert mapped["generated"] == read["generated"] and mapped["ids"] == read["ids"]  # mmap changes nothing
        assert mapped["n_logits"] == mapped["n_vocab"]
        assert mapped["n_past"][1] == 0 and mapped["n_past"][0] > 0
        assert mapped["metadata"]["general.architecture"] == "llama"
        assert mapped["metadata"]["general.name"].startswith("tiny-llama-")
        assert mapped["metadata"]["llama.context_length"] == "256"
    assert results[f"{paths[0]}:True"]["ids"][0] == [
        tiny_models_id(models["spm-f32"], "▁Hello"),
        tiny_models_id(models["spm-f32"], "▁world"),
    ]


def tiny_models_id(path: Path, token: str) -> int:
    import gguf

    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.ggml.tokens"]
    texts = [bytes(field.parts[i]).decode() for i in field.data]
    return texts.index(token)


def test_generation_is_the_same_across_processes_threads_and_thread_counts(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    code = """
        import json, sys, threading
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        model = rt.load_model(sys.argv[1])
        prompt = model.tokenize("the model is")
        def run(n_threads):
            with model.context(n_ctx=128, n_threads=n_threads) as ctx:
                return ctx.generate(prompt, max_tokens=24)
        alone = {n: run(n) for n in (1, 2)}
        results = [None, None]
        def worker(i):
            results[i] = run(1)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        model.close()
        print(json.dumps({"alone": alone, "parallel": results}))
    """
    first = script(python, code, str(models["spm-f32"]), cwd=tmp_path)
    second = script(python, code, str(models["spm-f32"]), cwd=tmp_path)
    assert first == second
    assert first["alone"]["1"] == first["alone"]["2"] == first["parallel"][0] == first["parallel"][1]


def test_embeddings_have_the_model_width_and_are_deterministic(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        with lcr.load().load_model(sys.argv[1]) as model, model.context(embeddings=True) as ctx:
            vectors = [ctx.embed("some text"), ctx.embed("some text"), ctx.embed("other words")]
            unit = ctx.embed("some text", normalize=True)
            try:
                model.context().embed("x")
                plain = "no error"
            except lcr.ContextError as error:
                plain = str(error)
            print(json.dumps({"n_embd": model.n_embd, "vectors": vectors, "unit": unit, "plain": plain}))
    """
    result = script(python, code, str(models["bpe-f32"]), cwd=tmp_path)
    first, same, other = result["vectors"]
    assert len(first) == result["n_embd"] == 64
    assert first == same and first != other
    assert abs(sum(v * v for v in result["unit"]) - 1.0) < 1e-4
    assert "embeddings=True" in result["plain"]


def test_progress_is_reported_and_can_cancel_the_load(python: Path, models: dict[str, Path], tmp_path: Path) -> None:
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        seen = []
        with rt.load_model(sys.argv[1], progress=seen.append) as model:
            loaded = model.n_params
        outcomes = {}
        for name, callback in (("false", lambda f: False), ("raises", lambda f: 1 / 0)):
            try:
                rt.load_model(sys.argv[1], progress=callback)
                outcomes[name] = "loaded"
            except lcr.LoadCancelled as error:
                outcomes[name] = [str(error), type(error.__cause__).__name__]
        print(json.dumps({"seen": seen, "loaded": loaded, "outcomes": outcomes}))
    """
    result = script(python, code, str(models["spm-f16"]), cwd=tmp_path)
    assert result["seen"] and result["seen"][-1] == 1.0 and result["seen"] == sorted(result["seen"])
    assert result["loaded"] > 0
    assert "cancelled by the progress callback" in result["outcomes"]["false"][0]
    assert result["outcomes"]["raises"][1] == "ZeroDivisionError"


def test_bad_models_are_typed_errors_with_upstreams_reason(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = {
        "missing": bad / "missing.gguf",
        "directory": bad,
        "not gguf": tiny_models.write_not_gguf(bad / "text.gguf"),
        "truncated": tiny_models.write_truncated(bad / "truncated.gguf", models["spm-f32"]),
        "header cut": tiny_models.write_truncated(bad / "cut.gguf", models["spm-f32"], n_bytes=1000),
        "duplicate token": tiny_models.write_duplicate_token_vocab(bad / "duplicate.gguf"),
        "unknown architecture": tiny_models.write_llama_model(bad / "arch.gguf", architecture="nonesuch"),
        "wrong shape": tiny_models.write_llama_model(bad / "shape.gguf", wrong_shape="blk.0.attn_q.weight"),
    }
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        cases = json.loads(sys.argv[1])
        out = {}
        for name, path in cases.items():
            try:
                rt.load_model(path)
                out[name] = ["loaded", ""]
            except lcr.LlamaRuntimeError as error:
                kinds = [k.__name__ for k in type(error).__mro__ if k.__name__ in
                         ("ModelNotFound", "InvalidModel", "ModelLoadError", "FileNotFoundError")]
                out[name] = [kinds, str(error)]
        with rt.load_model(cases["good"]) as model:  # the process is still sound
            out["after"] = len(model.tokenize("Hello"))
        print(json.dumps(out))
    """
    paths = {name: str(path) for name, path in {**cases, "good": models["spm-f32"]}.items()}
    result = script(python, code, json.dumps(paths), cwd=tmp_path)
    assert result.pop("after") > 0
    expected = {
        "missing": (["ModelNotFound", "ModelLoadError", "FileNotFoundError"], "no such file"),
        "directory": (["InvalidModel", "ModelLoadError"], "is a directory"),
        "not gguf": (["InvalidModel", "ModelLoadError"], "not a GGUF file"),
        "truncated": (["InvalidModel", "ModelLoadError"], "truncated: tensor"),
        "header cut": (["InvalidModel", "ModelLoadError"], "truncated or corrupt"),
        "duplicate token": (["InvalidModel", "ModelLoadError"], "'▁Hello' twice"),
        "unknown architecture": (["ModelLoadError"], "unknown model architecture: 'nonesuch'"),
        "wrong shape": (["ModelLoadError"], "wrong shape"),
    }
    for name, (kinds, words) in expected.items():
        assert result[name][0] == kinds, (name, result[name])
        assert words in result[name][1], (name, result[name])
        assert "\n" not in result[name][1]


def test_inspect_model_survives_what_the_file_does_to_llama_cpp(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    """A census of damaged headers (bytes overwritten at random), each loaded and run for one token in a
    child process by inspect_model: every one is a model or a typed error, never a crash or a hang."""
    good = models["spm-f32"]
    data = good.read_bytes()
    header_end = read_header(good).data_offset  # the binding's own reader
    generator = random.Random(3)
    damaged = []
    for index in range(30):
        corrupt = bytearray(data)
        for _ in range(generator.randint(1, 3)):
            corrupt[generator.randrange(header_end)] = generator.randrange(256)
        damaged.append(tmp_path / f"damaged-{index}.gguf")
        damaged[-1].write_bytes(bytes(corrupt))
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        info = lcr.inspect_model(sys.argv[1])
        out = {"good": [info.architecture, info.n_vocab, info.n_params], "damaged": []}
        for path in sys.argv[2:]:
            try:
                lcr.inspect_model(path, timeout=60)
                out["damaged"].append(["model", ""])
            except lcr.LlamaRuntimeError as error:
                out["damaged"].append([type(error).__name__, str(error)])
        print(json.dumps(out))
    """
    result = script(python, code, str(good), *map(str, damaged), cwd=tmp_path)
    assert result["good"][:2] == ["llama", 433] and result["good"][2] > 0
    outcomes = collections.Counter(kind for kind, _ in result["damaged"])
    print(f"\n30 damaged headers: {dict(outcomes)}")
    crashed = [message for _, message in result["damaged"] if "in a child process failed" in message]
    assert not crashed, crashed
    assert set(outcomes) <= {"model", "InvalidModel", "ModelLoadError"}, result["damaged"]


def test_handles_after_close_and_a_context_keeps_its_model(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    code = """
        import json, logging, sys
        import llama_cpp_runtime as lcr
        lines = []
        handler = logging.Handler()
        handler.emit = lambda record: lines.append(record.getMessage())
        logging.getLogger("llama_cpp_runtime.ggml").addHandler(handler)
        logging.getLogger("llama_cpp_runtime.ggml").setLevel(logging.DEBUG)
        rt = lcr.load()
        model = rt.load_model(sys.argv[1])
        ctx = model.context(n_ctx=64)
        prompt = model.tokenize("Hello")
        model.close(); model.close()
        out = {"generated_after_model_close": len(ctx.generate(prompt, 3))}
        errors = {}
        calls = {"tokenize": lambda: model.tokenize("x"), "context": lambda: model.context(),
                 "full": lambda: ctx.decode([1] * (ctx.n_ctx + 1)), "bad id": lambda: ctx.decode([10**6])}
        for name, call in calls.items():
            try:
                call()
                errors[name] = "no error"
            except lcr.LlamaRuntimeError as error:
                errors[name] = [type(error).__name__, str(error)]
        ctx.close(); ctx.close()
        try:
            ctx.generate([1])
        except lcr.ClosedError as error:
            errors["closed context"] = str(error)
        out.update(errors=errors, logged=any("llama_model_loader" in line for line in lines))
        print(json.dumps(out))
    """
    result = script(python, code, str(models["spm-f32"]), cwd=tmp_path)
    assert result["generated_after_model_close"] > 0
    errors = result["errors"]
    assert errors["tokenize"][0] == errors["context"][0] == "ClosedError"
    assert errors["full"][0] == "DecodeError" and "do not fit" in errors["full"][1]
    assert errors["bad id"][0] == "TokenizeError" and "not in the vocabulary" in errors["bad id"][1]
    assert "closed" in errors["closed context"]
    assert result["logged"]  # llama.cpp's own log reached the logger, through the one bridge


def test_a_failed_mlock_is_a_warning_that_says_why(python: Path, models: dict[str, Path], tmp_path: Path) -> None:
    code = """
        import json, resource, sys, warnings
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
        import llama_cpp_runtime as lcr
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with lcr.load().load_model(sys.argv[1], mlock=True) as model, model.context(n_ctx=64) as ctx:
                generated = ctx.generate(model.tokenize("Hello"), 2)
        print(json.dumps([[w.category.__name__, str(w.message)] for w in caught] + [generated]))
    """
    # root may lock memory whatever the limit says: drop the capabilities, as an ordinary user has none
    as_root = os.geteuid() == 0 and shutil.which("setpriv")
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"] if as_root else []
    result = subprocess.run(
        [*drop, str(python), "-c", textwrap.dedent(code), str(models["spm-f32"])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *caught, generated = json.loads(result.stdout)
    assert generated  # the model works, unlocked
    assert [category for category, _ in caught] == ["MlockWarning"], caught
    assert "failed to mlock" in caught[0][1] and "RLIMIT_MEMLOCK" in caught[0][1]


def test_nothing_reaches_stderr_unless_asked(python: Path, models: dict[str, Path], tmp_path: Path) -> None:
    code = """
        import sys
        import llama_cpp_runtime as lcr
        with lcr.load().load_model(sys.argv[1]) as model, model.context(n_ctx=64) as ctx:
            ctx.generate(model.tokenize("Hello"), 2)
        print("{}")
    """
    result = in_venv(python, "-c", textwrap.dedent(code), str(models["spm-f32"]), cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # no progress dots, no loader chatter


def test_a_used_field_missing_from_the_build_record_is_refused_before_any_call(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    package = Path(
        script(python, "import json, llama_cpp_runtime as l; print(json.dumps(l.__file__))", cwd=tmp_path)
    ).parent
    copy = tmp_path / "site" / package.name
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    record = json.loads((copy / "llama-abi.json").read_text())
    del record["structs"]["llama_context_params"]["fields"]["n_threads"]
    (copy / "llama-abi.json").write_text(json.dumps(record))
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        try:
            rt.load_model(sys.argv[1])
            print(json.dumps("loaded"))
        except lcr.AbiMismatch as error:
            print(json.dumps(str(error)))
    """
    env = {"LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(copy)}
    refused = script(python, code, str(models["spm-f32"]), cwd=tmp_path, env=env)
    expected = "llama_context_params.n_threads (int32_t, 4 bytes; model.context(n_threads=...) for generation) is not"
    assert expected in refused, refused
    info = runtime(python, "info", cwd=tmp_path, env=env)
    assert "llama_context_params.n_threads" in info.stdout, info.stdout


def test_the_cli_runs_and_benches_a_model(python: Path, models: dict[str, Path], tmp_path: Path) -> None:
    model = str(models["spm-f16"])
    ran = runtime(python, "run", model, "--prompt", "Hello world", "-n", "8", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip()
    assert "prompt:" in ran.stderr and "tokens/s" in ran.stderr

    bench = runtime(python, "bench", "--model", model, "-p", "32", "-n", "8", "-r", "2", "--json", cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    rows = json.loads(bench.stdout)
    assert [(r["device"], r["test"]) for r in rows] == [("CPU", "pp32"), ("CPU", "tg8")]
    assert all(r["tokens_per_second"] > 0 and r["repetitions"] == 2 for r in rows)

    for args, words in (
        (["run", str(tmp_path / "none.gguf"), "--prompt", "x"], "no such file"),
        (["run", model, "--prompt", "x", "--device", "GPU9"], "no device 'GPU9'"),
        (["bench", "--model", model, "--device", "GPU9"], "no device GPU9"),
    ):
        failed = runtime(python, *args, cwd=tmp_path)
        assert failed.returncode == 2, (args, failed.stderr)
        assert words in failed.stderr and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr


def test_upstreams_tokenizer_vocabularies_tokenize_as_upstream_expects(
    python: Path, real_llama_cpp: Path, tmp_path: Path
) -> None:
    """llama.cpp's own vocabulary tests (models/ggml-vocab-*.gguf with .inp/.out), from the tracking
    repository: they are not in the synced subset."""
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    archive = subprocess.run(
        ["git", "--git-dir", str(real_llama_cpp), "archive", "v0.3.35", "models/"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True, timeout=120)
    vocabularies = sorted(p for p in models_dir.glob("ggml-vocab-*.gguf") if p.with_suffix(".gguf.inp").exists())
    assert len(vocabularies) >= 10
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        out = {}
        for path in sys.argv[1:]:
            inputs = open(path + ".inp", encoding="utf-8").read().split("\\n__ggml_vocab_test__\\n")
            expected = open(path + ".out", encoding="utf-8").read().split("\\n")
            try:
                with rt.load_model(path, vocab_only=True) as model:
                    got = [" ".join(map(str, model.tokenize(text, add_special=False))) for text in inputs]
            except lcr.LlamaRuntimeError as error:
                out[path] = [0, len(inputs), str(error)]
                continue
            matched = sum(1 for g, e in zip(got, expected) if g.strip() == e.strip())
            out[path] = [matched, len(inputs), ""]
        print(json.dumps(out))
    """
    result = script(python, code, *map(str, vocabularies), cwd=tmp_path)
    total = sum(n for _, n, _ in result.values())
    matched = sum(m for m, _, _ in result.values())
    print(f"\nupstream vocab tests: {matched}/{total} inputs match in {len(result)} vocabularies")
    for path, (m, n, error) in sorted(result.items()):
        print(f"  {Path(path).name}: {m}/{n} {error}")
    assert all(not error for _, _, error in result.values()), result
    assert matched == total, result


@vulkan
def test_layers_offloaded_to_lavapipe_generate_the_cpus_tokens(
    pinned: Project, models: dict[str, Path], tmp_path: Path
) -> None:
    """The Vulkan plugin wheel of the pin, on lavapipe (Mesa's Vulkan on the CPU): n_gpu_layers and the
    device list reach llama.cpp, and greedy generation does not change with where the layers run."""
    interpreter = venv(tmp_path)
    with locked(pinned.root.parent.parent / "pinned-runtime.lock"):  # other workers install from dist/
        pinned.run("wheels", "--backend", "vulkan", timeout=60 * 60)
        built = wheels_of(pinned)
        pip(
            interpreter,
            "install",
            "--no-index",
            str(built["llama_cpp_runtime"]),
            str(built["llama_cpp_runtime_vulkan"]),
        )
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        out = {"devices": [d.name for d in rt.devices()]}
        for path in sys.argv[1:]:
            for devices, layers in ((["CPU"], 0), (["Vulkan0"], None), (["Vulkan0"], 1)):
                with rt.load_model(path, devices=devices, n_gpu_layers=layers) as model:
                    offload = [line for line in model.load_log if "offloaded" in line]
                    with model.context(n_ctx=128) as ctx:
                        out[f"{path} {devices[0]} {layers}"] = [offload, ctx.generate(model.tokenize("Hello"), 12)]
        print(json.dumps(out))
    """
    paths = [str(models[name]) for name in ("spm-f32", "spm-f16", "q8_0")]
    result = script(interpreter, code, *paths, cwd=tmp_path, env={"GGML_VK_VISIBLE_DEVICES": "0"})
    assert result.pop("devices") == ["CPU", "Vulkan0"]
    for path in paths:
        on_cpu, on_gpu, one_layer = (result[f"{path} {where}"] for where in ("CPU 0", "Vulkan0 None", "Vulkan0 1"))
        assert on_cpu[0] == ["load_tensors: offloaded 0/3 layers to GPU"]
        assert on_gpu[0] == ["load_tensors: offloaded 3/3 layers to GPU"]  # upstream's default: every layer
        assert one_layer[0] == ["load_tensors: offloaded 1/3 layers to GPU"]
        assert on_cpu[1] == on_gpu[1] == one_layer[1], path

    # `check` on the same device: its operations and the tiny model against x64 pass on correct kernels. Before
    # GPU rows had tolerances of their own they failed here (MUL_MAT f16 1.2e-3 and q4_K 2.2e-3 against 1e-3 and
    # 2e-3; the model's logits 1.3e-2 to 3.3e-2 against 1e-2): a red `check` on a working GPU.
    checked = runtime(interpreter, "check", "--device", "Vulkan0", cwd=tmp_path, env={"GGML_VK_VISIBLE_DEVICES": "0"})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    [row] = [line for line in checked.stdout.splitlines() if line.startswith("Vulkan0")]
    assert " ok " in row and "MODEL: 8 greedy tokens as x64's" in row, row


# The GPU presets' settings (everything we never build switched off), with ggml's BLAS module instead.
BLAS_MODULE = {
    **load_matrix().get("vulkan").cache_variables,
    "GGML_VULKAN": "OFF",
    "GGML_BLAS": "ON",
    "GGML_BLAS_VENDOR": "OpenBLAS",
    "GGML_CCACHE": "OFF",
}


@openblas
def test_check_asks_a_device_before_running_an_op_it_does_not_implement(
    pinned: Project, python: Path, tmp_path: Path
) -> None:
    """ggml's BLAS backend (a real device, built here from the pin against OpenBLAS) aborts the process on an
    operation it does not implement; `check` must ask ggml_backend_supports_op first and say so."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy2(build_library(pinned.vendor, tmp_path / "blas-build", BLAS_MODULE, "ggml-blas"), plugins)

    checked = runtime(
        python, "check", "--device", "BLAS", cwd=tmp_path, env={"LLAMA_CPP_RUNTIME_PLUGIN_DIRS": str(plugins)}
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "crashed" not in checked.stdout
    assert "NORM not supported by this device" in checked.stdout, checked.stdout


def test_the_same_binding_runs_and_benches_the_newer_tree(
    newer: Project, models: dict[str, Path], tmp_path: Path
) -> None:
    """0.3.36 inserted a field in llama_model_params: the binding lays it out from that build's record, so the
    binding that runs the pin (test_the_cli_runs_and_benches_a_model) loads, generates and benchmarks there
    too, from an installed wheel."""
    python = venv(tmp_path)
    pip(python, "install", "--no-index", str(wheels_of(newer)["llama_cpp_runtime"]))
    info = runtime(python, "info", cwd=tmp_path)
    assert "libllama structs: matches" in info.stdout, info.stdout + info.stderr
    record = next(python.parent.parent.glob("lib/python3*/site-packages/llama_cpp_runtime/llama-abi.json"))
    assert "lazy_mode" in json.loads(record.read_text())["structs"]["llama_model_params"]["fields"]

    model = str(models["spm-f16"])
    run = runtime(python, "run", model, "--prompt", "Hello world", "-n", "8", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip(), run.stdout + run.stderr
    bench = runtime(python, "bench", "--model", model, "-p", "32", "-n", "8", "-r", "2", "--json", cwd=tmp_path)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    assert [(r["device"], r["test"]) for r in json.loads(bench.stdout)] == [("CPU", "pp32"), ("CPU", "tg8")]
    print(f"{run.stdout.strip()!r}\n{run.stderr}\n{bench.stdout}")


# ---- the second fault census (issue #30): what used to end the process, hang it, or answer falsely ----

ASSERTED = {  # metadata llama.cpp asserts on (GGML_ASSERT in load_hparams, or in the norm kernel at the first token)
    "layers 0": ({"llama.block_count": 0}, "llama.block_count is 0"),
    "layers 513": ({"llama.block_count": 513}, "llama.block_count is 513"),
    "experts without used": ({"llama.expert_count": 4}, "llama.expert_used_count is missing or 0"),
    "used without experts": ({"llama.expert_used_count": 2}, "llama.expert_used_count is 2, more than"),
    "negative epsilon": ({"llama.attention.layer_norm_rms_epsilon": -1.0}, "layer_norm_rms_epsilon is -1"),
    "rope scaling": ({"llama.rope.scaling.type": "bogus"}, "llama.rope.scaling.type is 'bogus'"),
}


def test_metadata_llama_cpp_asserts_on_is_refused_by_key_and_value(python: Path, tmp_path: Path) -> None:
    for name, (metadata, words) in ASSERTED.items():
        path = tiny_models.write_llama_model(tmp_path / f"{name}.gguf", metadata=metadata)
        ran = runtime(python, "run", str(path), "--prompt", "Hello", "-n", "2", cwd=tmp_path)
        assert ran.returncode == 2, (name, ran.returncode, ran.stderr[-2000:])  # not 134 (SIGABRT)
        assert ran.stderr.count("\n") == 1 and words in ran.stderr, (name, ran.stderr)
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        try:
            lcr.inspect_model(sys.argv[1])
        except lcr.InvalidModel as error:
            print(json.dumps(str(error)))
    """
    inspected = script(python, code, str(tmp_path / "layers 0.gguf"), cwd=tmp_path)
    assert "llama.block_count is 0: llama.cpp allows 1 to 512 layers" in inspected


def test_a_model_file_changed_under_a_loaded_model_is_refused_not_faulted(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    """Truncated under a mapped model: SIGBUS at the next decode or context; overwritten in place: other
    weights, silently. Each is an InvalidModel naming the change; mmap=False holds the weights and goes on."""
    code = """
        import json, os, shutil, sys, time
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        out = {}
        for change in ("truncate", "overwrite", "replace", "overwrite unmapped"):
            path = os.path.join(sys.argv[2], change + ".gguf")
            shutil.copy(sys.argv[1], path)
            model = rt.load_model(path, mmap=change != "overwrite unmapped")
            ctx = model.context(n_ctx=64)
            prompt = model.tokenize("Hello")
            before = ctx.generate(prompt, 4)
            time.sleep(0.05)  # past the file system's timestamp granularity
            size = os.path.getsize(path)
            if change == "truncate":
                os.truncate(path, size // 2)
            elif change == "replace":
                shutil.copy(sys.argv[1], path + ".new")
                os.replace(path + ".new", path)
            else:
                with open(path, "r+b") as file:
                    file.seek(size - 65536)
                    file.write(os.urandom(65536))
            results = []
            for call in (lambda: ctx.generate(prompt, 4) == before, lambda: model.context(n_ctx=64).close()):
                try:
                    results.append([{True: "same", False: "other", None: "created"}[call()], ""])
                except lcr.LlamaRuntimeError as error:
                    results.append([type(error).__name__, str(error)])
            out[change] = results
        print(json.dumps(out))
    """
    (tmp_path / "copies").mkdir()
    result = script(python, code, str(models["spm-f32"]), str(tmp_path / "copies"), cwd=tmp_path)
    for change, words in (
        ("truncate", "bytes now, "),
        ("overwrite", "modified in place"),
        ("replace", "another file is at its path now"),
    ):
        for kind, message in result[change]:
            assert kind == "InvalidModel", (change, result[change])
            assert "changed on disk since it was loaded (" in message and words in message and "mmap=False" in message
    assert result["overwrite unmapped"] == [["same", ""], ["created", ""]], result


def test_numbers_past_their_c_type_are_refused_and_threads_past_the_cpus_warned(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    code = """
        import json, os, sys, warnings
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        out = {}
        with rt.load_model(sys.argv[1]) as model:
            for name, kwargs in (("n_ctx", {"n_ctx": 2**32 + 5}), ("n_threads", {"n_threads": 2**31}),
                                 ("n_batch", {"n_batch": 2**32})):
                try:
                    model.context(**kwargs)
                    out[name] = "created"
                except lcr.ContextError as error:
                    out[name] = str(error)
            cpus = len(os.sched_getaffinity(0))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with model.context(n_ctx=64, n_threads=cpus + 1) as ctx:
                    out["threads"] = [ctx.n_threads, cpus + 1]
            out["warned"] = [[w.category.__name__, str(w.message)] for w in caught]
        try:
            rt.load_model(sys.argv[1], n_gpu_layers=2**31)
        except ValueError as error:
            out["n_gpu_layers"] = str(error)
        print(json.dumps(out))
    """
    result = script(python, code, str(models["spm-f32"]), cwd=tmp_path)
    assert result["n_ctx"] == "n_ctx=4294967301: expected an integer from 0 to 4294967295"  # not 256
    assert result["n_threads"] == "n_threads=2147483648: expected an integer from 1 to 2147483647"
    assert result["n_batch"] == "n_batch=4294967296: expected an integer from 1 to 4294967295"
    assert result["n_gpu_layers"] == "n_gpu_layers=2147483648: expected an integer from -2147483648 to 2147483647"
    assert result["threads"][0] == result["threads"][1]
    [(category, message)] = result["warned"]
    assert category == "ThreadsWarning" and "CPU(s) this process may use" in message
    refused = runtime(python, "run", str(models["spm-f32"]), "--prompt", "x", "--threads", "2147483648", cwd=tmp_path)
    assert refused.returncode == 2 and "2147483648 is more than 2147483647" in refused.stderr  # it segfaulted


def test_a_context_used_in_a_child_of_fork_raises_and_a_new_one_there_works(
    python: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    code = """
        import json, os, signal, sys, time
        import llama_cpp_runtime as lcr
        model = lcr.load().load_model(sys.argv[1])
        ctx = model.context(n_ctx=64)
        prompt = model.tokenize("Hello")
        expected = ctx.generate(prompt, 6)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                try:
                    ctx.generate(prompt, 6)
                    said = {"old": "no error"}
                except lcr.ForkError as error:
                    said = {"old": str(error)}
                with model.context(n_ctx=64) as fresh:
                    said["new"] = fresh.generate(prompt, 6)
                os.write(write, json.dumps(said).encode())
            finally:
                os._exit(0)
        os.close(write)
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = "hung"
        said = json.loads(os.read(read, 65536) or b"{}")
        print(json.dumps({"status": status, "said": said, "expected": expected, "after": ctx.generate(prompt, 6)}))
    """
    result = script(python, code, str(models["spm-f32"]), cwd=tmp_path)
    assert result["status"] == 0, result  # the child ended, and ended well
    assert "a child made by fork() in which its threads do not exist" in result["said"]["old"]
    assert result["said"]["new"] == result["expected"] == result["after"]


def test_ctrl_c_during_run_is_one_line_and_exit_130(python: Path, tmp_path: Path) -> None:
    model = tiny_models.write_bench_model(tmp_path / "bench.gguf", dtype="q8_0")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_CPP_", "PYTHON", "GGML_", "MTMD_"))}
    command = [str(python), "-m", "llama_cpp_runtime", "run", str(model), "--prompt", "Hello", "-n", "1000"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.read(1)  # generation has begun
        os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the whole process group
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    said = stderr.decode(errors="replace")
    assert first and process.returncode == 130, (process.returncode, said)
    assert said.strip().splitlines() == ["interrupted"], said
