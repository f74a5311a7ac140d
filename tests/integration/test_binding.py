"""The llama_cpp_runtime binding over the fixture's staged build: real dlopen, real modules, real
compute. Each case runs in its own interpreter: ggml's registry is process-wide, like the binding."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.cpu_features import best_supported_variant, elf_linux, x86_linux
from helpers.support import Project, fresh_project
from helpers.toolchains_present import vulkan

pytestmark = [pytest.mark.slow]

ABI_MODULE = """
struct iface { void * name; void * count; void * get; void * proc; };
struct reg { int api_version; struct iface iface; void * context; };
static struct reg registration = {99, {0, 0, 0, 0}, 0};
__attribute__((visibility("default"))) void * ggml_backend_init(void) { return &registration; }
"""
PLUGIN_MODULE = """
#include <stddef.h>
static const char * name(void * reg) { (void) reg; return "Fake"; }
static size_t count(void * reg) { (void) reg; return 0; }
static void * get(void * reg, size_t i) { (void) reg; (void) i; return NULL; }
struct iface { const char * (*name)(void *); size_t (*count)(void *); void * (*get)(void *, size_t); void * proc; };
struct reg { int api_version; struct iface iface; void * context; };
static struct reg registration = {2, {name, count, get, NULL}, NULL};
__attribute__((visibility("default"))) void * ggml_backend_init(void) { return &registration; }
"""
MISBEHAVING_PLUGIN = """
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
struct dev_i { const char * (*name)(void *); const char * (*description)(void *);
               void (*memory)(void *, size_t *, size_t *); int (*type)(void *); void * (*init)(void *, const char *);
               int (*supports_op)(void *, const void *);  /* NULL: every op */
               void (*get_props)(void *, void *); };  /* NULL: nothing beyond the above */
struct dev { struct dev_i iface; void * reg; void * context; };
struct reg_i { const char * (*name)(void *); size_t (*count)(void *); void * (*get)(void *, size_t); void * proc; };
struct reg { int api_version; struct reg_i iface; void * context; };
static const char * dev_name(void * d) { return ((struct dev *) d)->context; }
static const char * description(void * d) { (void) d; return "misbehaving test device"; }
static void memory(void * d, size_t * f, size_t * t) { (void) d; *f = 0; *t = 0; }
static int type(void * d) { (void) d; return 1; }
static void * init(void * d, const char * p) {
    (void) p;
    if (strcmp(((struct dev *) d)->context, "Crashy0") == 0) { raise(SIGSEGV); }
    for (;;) { sleep(1); }
    return NULL;
}
static struct reg registration;
static struct dev devices[2] = {{{dev_name, description, memory, type, init, NULL, NULL}, &registration, "Crashy0"},
                                {{dev_name, description, memory, type, init, NULL, NULL}, &registration, "Hangy0"}};
static const char * reg_name(void * r) { (void) r; return "Misbehaving"; }
static size_t count(void * r) { (void) r; return 2; }
static void * get(void * r, size_t i) { (void) r; return i < 2 ? &devices[i] : NULL; }
static struct reg registration = {2, {reg_name, count, get, NULL}, NULL};
__attribute__((visibility("default"))) void * ggml_backend_init(void) { return &registration; }
"""
IMPOSSIBLE_VARIANT = """
__attribute__((visibility("default"))) int ggml_backend_score(void) { return 0; }
__attribute__((visibility("default"))) void * ggml_backend_init(void) { return 0; }
"""


def compile_module(source: str, output: Path, *extra: str) -> Path:
    if shutil.which("cc") is None:  # Windows runners: the test modules are POSIX C built with `cc -shared`
        pytest.skip("needs a POSIX C compiler `cc` to build the test module")
    c_file = output.with_suffix(".c")
    c_file.write_text(source)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(output), str(c_file), *extra], check=True, timeout=60)
    c_file.unlink()
    return output


def python(code: str, env: dict[str, str], cwd: Path, *, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def runtime_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llama_cpp_runtime", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def env_for(built: Project, stage: Path, **extra: str) -> dict[str, str]:
    return {**built.env, "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(stage), **extra}


def report_of(built: Project, stage: Path, cwd: Path, **extra: str) -> dict[str, object]:
    result = runtime_cli("info", "--json", env=env_for(built, stage, **extra), cwd=cwd)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def modules_by_name(report: dict[str, object]) -> dict[str, dict[str, object]]:
    modules = report["modules"]
    assert isinstance(modules, list)
    return {m["name"]: m for m in modules}


@x86_linux
def test_the_best_variant_this_cpu_supports_is_loaded_and_every_other_is_explained(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    report = report_of(built, stage, tmp_path)
    best = best_supported_variant()
    assert report["cpu_variant"] == best
    modules = modules_by_name(report)
    assert modules[f"ggml-cpu-{best}"]["status"] == "loaded"
    for name, module in modules.items():
        if name.startswith("ggml-cpu-") and name != f"ggml-cpu-{best}":
            assert module["status"] in {"not chosen", "skipped"} and module["reason"], module
    assert [d["name"] for d in report["devices"]] == ["CPU"]  # type: ignore[union-attr]
    assert modules["ggml-vulkan"]["status"] == "absent" and "pip install" in str(modules["ggml-vulkan"]["reason"])


@x86_linux
def test_a_forced_variant_is_honoured_and_an_unsupported_one_refused(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    forced = report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_CPU_VARIANT="sse42")
    assert forced["cpu_variant"] == "sse42"
    assert modules_by_name(forced)["ggml-cpu-sse42"]["reason"] == "forced by LLAMA_CPP_RUNTIME_CPU_VARIANT"

    compile_module(IMPOSSIBLE_VARIANT, stage / "modules/libggml-cpu-impossible.so")
    refused = report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_CPU_VARIANT="impossible")
    impossible = modules_by_name(refused)["ggml-cpu-impossible"]
    assert impossible["status"] == "skipped" and impossible["score"] == 0
    assert "forced by LLAMA_CPP_RUNTIME_CPU_VARIANT but refused" in str(impossible["reason"])
    assert refused["cpu_variant"] == best_supported_variant()  # still a working CPU backend

    excluded = report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_CPU_EXCLUDE=best_supported_variant())
    assert excluded["cpu_variant"] != best_supported_variant()


@elf_linux  # glibc's linker flags and dlopen messages
def test_broken_modules_are_skipped_with_the_loaders_reason_while_the_rest_load(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    modules = stage / "modules"
    (modules / "libggml-cpu-truncated.so").write_bytes((modules / "libggml-cpu-x64.so").read_bytes()[:1000])
    compile_module(ABI_MODULE, modules / "libggml-oldabi.so")
    compile_module("int nothing;", tmp_path / "libgone.so")
    compile_module(
        "extern int nothing;\nint * uses_gone = &nothing;",
        modules / "libggml-needsdep.so",
        "-Wl,--no-as-needed",
        f"-L{tmp_path}",
        "-lgone",
    )
    (tmp_path / "libgone.so").unlink()

    report = report_of(built, stage, tmp_path)
    found = modules_by_name(report)
    truncated = found["ggml-cpu-truncated"]
    assert truncated["status"] == "skipped" and "cannot be loaded" in str(truncated["reason"])
    assert "libggml-cpu-truncated.so" in str(truncated["reason"])  # the dynamic loader's own message
    assert found["ggml-needsdep"]["status"] == "skipped"
    assert "libgone.so: cannot open shared object file" in str(found["ggml-needsdep"]["reason"])
    assert found["ggml-oldabi"]["status"] == "skipped"
    assert "incompatible API version (backend: 99, current: 2)" in str(found["ggml-oldabi"]["reason"])
    assert report["cpu_variant"] and [d["name"] for d in report["devices"]] == ["CPU"]  # type: ignore[union-attr]
    # the truncated variant is broken on every machine; a missing dependency may be this machine's
    assert truncated["unusable"] is True and found["ggml-needsdep"]["unusable"] is False

    check = runtime_cli("check", env=env_for(built, stage), cwd=tmp_path)
    assert check.returncode == 1, check.stdout  # cibuildwheel's test of a wheel must catch a broken module
    assert re.search(
        r"^ggml-cpu-truncated\s+FAILED\s+-\s+ships in the package but cannot be used", check.stdout, re.MULTILINE
    ), check.stdout


def test_a_plugin_is_found_through_its_entry_point_and_gone_when_uninstalled(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    site = tmp_path / "plugins"
    package = site / "llama_cpp_runtime_fake"
    (package / "modules").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\n\ndef module_dir():\n    return str(Path(__file__).parent / 'modules')\n"
    )
    compile_module(PLUGIN_MODULE, package / "modules/libggml-fake.so")
    dist_info = site / "llama_cpp_runtime_fake-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: llama-cpp-runtime-fake\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[llama_cpp_runtime.backends]\nfake = llama_cpp_runtime_fake:module_dir\n"
    )
    env = env_for(built, stage)
    env["PYTHONPATH"] += os.pathsep + str(site)

    unrecorded = modules_by_name(json.loads(runtime_cli("info", "--json", env=env, cwd=tmp_path).stdout))["ggml-fake"]
    assert unrecorded["status"] == "skipped" and "unverified: no stage.json beside" in str(unrecorded["reason"])

    # As its wheel installs it: the stage.json of its build beside modules/, from the core's upstream.
    upstream = json.loads((stage / "stage.json").read_text())["upstream"]
    (package / "stage.json").write_text(json.dumps({"upstream": upstream, "backend": "fake"}))
    listed = runtime_cli("info", "--json", env=env, cwd=tmp_path)
    fake = modules_by_name(json.loads(listed.stdout))["ggml-fake"]
    assert fake["status"] == "loaded" and fake["source"] == "llama-cpp-runtime-fake"
    assert fake["reason"] == "0 device(s): the backend found no device"

    shutil.rmtree(dist_info)
    gone = modules_by_name(json.loads(runtime_cli("info", "--json", env=env, cwd=tmp_path).stdout))
    assert "ggml-fake" not in gone


@x86_linux  # the x86-64 variants by name
def test_check_passes_on_every_variant_and_device(built: Project, stage: Path, tmp_path: Path) -> None:
    result = runtime_cli("check", env=env_for(built, stage), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    # a variant this CPU cannot run is named, as this machine's reason (ggml-cpu-skylakex without AVX-512)
    assert rows and all("  ok  " in row or "  not runnable here: this CPU lacks" in row for row in rows)
    assert any(row.startswith("CPU (x64)") for row in rows)


@x86_linux
def test_check_finds_a_deliberately_broken_variant(tmp_path: Path) -> None:
    """A wrong kernel in one variant and an illegal instruction in another: each is a failed row that names
    the variant and the operation, against the baseline x64, and `check` itself finishes."""
    project = fresh_project(tmp_path)
    project.add_patch_commits(
        (
            "break the AVX2+FMA reduction",
            "ggml/src/ggml-cpu/ops.c",
            "    __m128 half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));",
            "    __m128 half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));\n"
            "#ifdef __FMA__\n    half = _mm_mul_ps(half, _mm_set1_ps(1.5f));\n#endif",
        ),
        (
            "an illegal instruction in AVX-without-FMA's RMS_NORM, as an AMX kernel on a CPU without AMX",
            "ggml/src/ggml-cpu/ops.c",
            "    const int64_t n = src->ne[0];\n    for (int64_t row = 0;",
            "    const int64_t n = src->ne[0];\n#if defined(__AVX__) && !defined(__FMA__)\n"
            "    if (rms) { __builtin_trap(); }\n#endif\n    for (int64_t row = 0;",
        ),
    )
    project.run("create-patches")
    project.run("sync")
    project.run("build", "--backend", "cpu")
    env = {**project.env, "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(project.root / "build/stage/cpu")}
    result = runtime_cli("check", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    haswell, sandybridge = rows["CPU (haswell)"], rows["CPU (sandybridge)"]
    assert "FAILED" in haswell and "MISMATCH: MUL_MAT f32 33x17x129 error" in haswell and "against x64" in haswell
    assert "FAILED" in sandybridge and "crashed (SIGILL)" in sandybridge and "RMS_NORM 129x33" in sandybridge
    assert "  ok  " in rows["CPU (x64)"] and "  ok  " in rows["CPU (sse42)"]
    assert "check failed: CPU (haswell), CPU (sandybridge)" in result.stderr
    print(result.stdout)


def test_handles_load_once_across_threads_and_refuse_use_after_close(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    code = """
        import logging, threading
        import llama_cpp_runtime as lcr

        messages = []
        class Keep(logging.Handler):
            def emit(self, record):
                messages.append(record.getMessage())
        logging.getLogger("llama_cpp_runtime.ggml").addHandler(Keep())
        logging.getLogger("llama_cpp_runtime.ggml").setLevel(logging.DEBUG)

        runtimes = []
        threads = [threading.Thread(target=lambda: runtimes.append(lcr.load())) for _ in range(16)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        assert len(runtimes) == 16 and len({id(r) for r in runtimes}) == 1
        rt = runtimes[0]
        assert rt._loaded.ggml.ggml_backend_reg_count() == 1, "the CPU backend registered more than once"
        assert any("loaded CPU backend" in m for m in messages), messages
        # libllama.so.0 / libllama.0.dylib, llama.dll on Windows
        assert rt.library_path("ggml-base").is_absolute() and "llama" in rt.library_path("llama").name
        assert "mtmd" in rt.library_path("mtmd").name
        print("upstream:", rt.upstream["commit"], rt.report().ggml_commit)

        with rt.open("CPU") as backend:
            product = backend.mul_mat([1, 2, 3, 4, 5, 6], [1, 0, 0, 0, 1, 1], m=2, n=2, k=3)
            assert list(product) == [1.0, 4.0, 5.0, 11.0], list(product)
            normed = backend.norm([1, 2, 3], rows=1, cols=3)
            assert abs(normed[0] + 1.2247) < 1e-3
        backend.close()  # a second close is harmless
        try:
            backend.mul_mat([1.0], [1.0], m=1, n=1, k=1)
        except lcr.ClosedError as error:
            print("closed:", error)
        else:
            raise AssertionError("use after close did not raise")
        try:
            lcr.load("/somewhere/else")
        except lcr.LoadError as error:
            print("second:", error)
        """
    result = python(code, env_for(built, stage), tmp_path)
    assert "closed: the CPU backend is closed" in result.stdout
    assert f"upstream: {built.commits[-1]} {built.commits[-1]}" in result.stdout  # stage.json and ggml_commit()
    assert "second: already loaded from" in result.stdout


ABI_CHECK = """
    import llama_cpp_runtime as lcr
    rt = lcr.load()
    print(rt.report().llama_abi)
    try:
        rt.require_llama_abi()
    except lcr.AbiMismatch as error:
        print("refused:", error)
    """


def test_libllama_structs_are_checked_against_the_builds_record(built: Project, stage: Path, tmp_path: Path) -> None:
    info = runtime_cli("info", env=env_for(built, stage), cwd=tmp_path)
    assert "libllama structs: matches" in info.stdout, info.stdout

    record = json.loads((stage / "llama-abi.json").read_text())
    context_params = record["structs"]["llama_context_params"]
    for field in list(context_params["fields"])[7:]:  # upstream inserted 4 bytes before n_threads
        context_params["fields"][field][0] += 4
    context_params["fields"] = {"n_inserted": [28, 4], **context_params["fields"]}
    context_params["size"] += 8
    (stage / "llama-abi.json").write_text(json.dumps(record))
    moved = python(ABI_CHECK, env_for(built, stage), tmp_path)
    assert moved.stdout.splitlines()[0] == "matches" and "refused" not in moved.stdout, moved.stdout

    del context_params["fields"]["n_threads"]  # a field the binding sets, gone from the header
    (stage / "llama-abi.json").write_text(json.dumps(record))
    result = python(ABI_CHECK, env_for(built, stage), tmp_path)
    assert (
        "llama_context_params.n_threads (int32_t, 4 bytes; model.context(n_threads=...) for generation) is not in "
        "the build's headers, whose llama_context_params has: n_ctx@0+4, " in result.stdout
    ), result.stdout
    assert f"refused: libllama ({built.commits[-1]}) does not match this binding" in result.stdout
    info = runtime_cli("info", env=env_for(built, stage), cwd=tmp_path)
    assert info.returncode == 0 and "libllama structs: libllama (" in info.stdout  # ggml alone still works

    (stage / "llama-abi.json").unlink()
    gone = python(ABI_CHECK, env_for(built, stage), tmp_path)
    assert "refused: no llama-abi.json in" in gone.stdout


def test_a_header_that_adds_fields_runs_and_one_that_renames_a_used_field_is_refused_by_name(
    tmp_path: Path,
) -> None:
    project = fresh_project(tmp_path)
    project.add_patch_commits(
        (
            "llama: a field before main_gpu",
            "include/llama.h",
            "    int32_t main_gpu;",
            "    int32_t lazy_mode;\n    int32_t main_gpu;",
        ),
    )
    project.run("create-patches")
    project.run("sync")
    project.run("build", "--backend", "cpu")
    stage = project.root / "build/stage/cpu"
    added = python(ABI_CHECK, env_for(project, stage), tmp_path)
    assert added.stdout.splitlines() == ["matches"], added.stdout + added.stderr

    project.add_patch_commits(
        ("llama: rename load_mode", "include/llama.h", "enum llama_load_mode load_mode;", "enum llama_load_mode mode;")
    )
    project.run("create-patches")
    project.run("sync")
    project.run("build", "--backend", "cpu")
    renamed = python(ABI_CHECK, env_for(project, stage), tmp_path)
    assert (
        f"refused: libllama ({project.commits[-1]}) does not match this binding: "
        "llama_model_params.load_mode (enum llama_load_mode, 4 bytes; load_model(mmap=..., mlock=...)) is not in "
        "the build's headers, whose llama_model_params has: "
        "devices@0+8, tensor_buft_overrides@8+8, n_gpu_layers@16+4, split_mode@20+4, mode@24+4, lazy_mode@28+4, "
        "main_gpu@32+4," in renamed.stdout
    ), renamed.stdout + renamed.stderr


def test_cli_numbers_and_device_names_are_checked(built: Project, stage: Path, tmp_path: Path) -> None:
    env = env_for(built, stage)
    for args, message in (
        (("bench", "--size", "-4"), "argument --size: -4 is not above zero"),
        (("bench", "--size", "0"), "argument --size: 0 is not above zero"),
        (("check", "--timeout", "-5"), "argument --timeout: -5 is not above zero"),
        (("check", "--timeout", "soon"), "argument --timeout: 'soon' is not a number"),
        (("check", "--device", "NOSUCH"), "error: no device NOSUCH; devices here: CPU"),
    ):
        result = runtime_cli(*args, env=env, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and "ok" not in result.stdout


def test_no_libraries_is_a_one_line_error(built: Project, tmp_path: Path) -> None:
    result = runtime_cli("info", env=env_for(built, tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no core libraries in") and "Traceback" not in result.stderr


def test_check_survives_a_device_that_crashes_and_one_that_hangs(built: Project, stage: Path, tmp_path: Path) -> None:
    compile_module(MISBEHAVING_PLUGIN, stage / "modules/libggml-misbehaving.so")
    result = runtime_cli("check", "--timeout", "10", env=env_for(built, stage), cwd=tmp_path)
    assert result.returncode == 1
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "FAILED" in rows["Crashy0"] and "crashed (SIGSEGV)" in rows["Crashy0"], result.stdout + result.stderr
    assert "FAILED" in rows["Hangy0"] and "timed out after 10s" in rows["Hangy0"]
    assert all("  ok  " in row for name, row in rows.items() if name.startswith("CPU ("))


@x86_linux  # the x86-64 variants by name
def test_bench_reports_throughput_per_cpu_variant(built: Project, stage: Path, tmp_path: Path) -> None:
    result = runtime_cli("bench", "--size", "64", env=env_for(built, stage), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    assert any(row.startswith("CPU (x64)") for row in rows)
    assert all("GFLOP/s" in row for row in rows)


@vulkan
def test_check_runs_on_lavapipe_through_the_vulkan_plugin(built: Project, stage: Path, tmp_path: Path) -> None:
    if not (built.root / "build/stage/vulkan/modules/libggml-vulkan.so").exists():
        built.run("build", "--backend", "vulkan")
    plugin_dir = built.root / "build/stage/vulkan/modules"
    env = env_for(built, stage, LLAMA_CPP_RUNTIME_PLUGIN_DIRS=str(plugin_dir))
    hidden = modules_by_name(report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_PLUGIN_DIRS=str(plugin_dir)))
    assert hidden["ggml-vulkan"]["status"] == "loaded"
    assert "GGML_VK_VISIBLE_DEVICES" in str(hidden["ggml-vulkan"]["reason"])  # lavapipe is hidden, and we say so

    env["GGML_VK_VISIBLE_DEVICES"] = "0"
    result = runtime_cli("check", "--device", "Vulkan0", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Vulkan0" in result.stdout and "  ok  " in result.stdout


def opened_variants(built: Project, stage: Path, cwd: Path, cache: Path) -> tuple[list[str], dict[str, object]]:
    """The CPU variant modules a fresh process opened while loading (glibc's own account), and its report."""
    env = env_for(built, stage, LLAMA_CPP_RUNTIME_CACHE_DIR=str(cache), LD_DEBUG="files")
    result = runtime_cli("info", "--json", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    opened = re.findall(r"file=\S*/(libggml-cpu-[\w.-]+?)\.so \[\d+\];\s+dynamically loaded", result.stderr)
    return sorted(set(opened)), json.loads(result.stdout)


def cpu_rows(report: dict[str, object]) -> list[tuple[object, ...]]:
    return [
        (m["name"], m["status"], m["reason"], m["score"])
        for m in modules_by_name(report).values()
        if m["backend"] == "cpu"
    ]


@elf_linux  # glibc's LD_DEBUG says which files a process opened
def test_a_later_process_opens_only_the_chosen_variant_and_reports_the_same(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    every = sorted(p.stem for p in (stage / "modules").iterdir() if p.name.startswith("libggml-cpu-"))

    first_opened, first = opened_variants(built, stage, tmp_path, cache)
    later_opened, later = opened_variants(built, stage, tmp_path, cache)

    chosen = f"libggml-cpu-{first['cpu_variant']}"
    assert first_opened == every and len(every) > 1
    assert later_opened == [chosen]  # asked once more for its score, then loaded
    assert cpu_rows(later) == cpu_rows(first) and later["cpu_variant"] == first["cpu_variant"]
    assert len(list(cache.glob("cpu-variants-*.json"))) == 1

    off_opened, _ = opened_variants(built, stage, tmp_path, Path("off"))
    assert len(off_opened) == len(every)  # LLAMA_CPP_RUNTIME_CACHE_DIR=off: every variant asked every time


@elf_linux
def test_a_changed_module_or_a_wrong_remembered_score_makes_every_variant_be_asked_again(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    all_opened, first = opened_variants(built, stage, tmp_path, cache)
    chosen = stage / "modules" / f"libggml-cpu-{first['cpu_variant']}.so"

    os.utime(chosen, ns=(chosen.stat().st_atime_ns, chosen.stat().st_mtime_ns + 10**9))  # reinstalled, say
    assert opened_variants(built, stage, tmp_path, cache)[0] == all_opened

    compile_module(IMPOSSIBLE_VARIANT, stage / "modules/libggml-cpu-impossible.so")  # a new module
    opened, report = opened_variants(built, stage, tmp_path, cache)
    assert "libggml-cpu-impossible" in opened and len(opened) == len(all_opened) + 1
    assert modules_by_name(report)["ggml-cpu-impossible"]["status"] == "skipped"

    # A remembered answer that the chosen module contradicts is not believed.
    [entry] = [p for p in cache.glob("cpu-variants-*.json") if "impossible" in p.read_text()]
    record = json.loads(entry.read_text())
    record["scores"]["ggml-cpu-x64"] = 10**6
    entry.write_text(json.dumps(record))
    opened, report = opened_variants(built, stage, tmp_path, cache)
    assert len(opened) == len(all_opened) + 1 and report["cpu_variant"] == first["cpu_variant"]
    assert json.loads(entry.read_text())["scores"]["ggml-cpu-x64"] == 1

    entry.write_text("{not json")  # damaged: the same as no cache
    assert opened_variants(built, stage, tmp_path, cache)[1]["cpu_variant"] == first["cpu_variant"]

    unwritable = tmp_path / "a-file"
    unwritable.write_text("")
    _, report = opened_variants(built, stage, tmp_path, unwritable / "cache")  # cannot be created: still loads
    assert report["cpu_variant"] == first["cpu_variant"]


def _nvidia_driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


@elf_linux
@pytest.mark.skipif(_nvidia_driver_present(), reason="this machine has an NVIDIA driver")
def test_a_cuda_module_without_the_nvidia_driver_is_skipped_naming_the_driver(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    compile_module(PLUGIN_MODULE, plugins / "libggml-cuda.so")  # it would load and find no device

    report = report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_PLUGIN_DIRS=str(plugins))

    cuda = modules_by_name(report)["ggml-cuda"]
    assert cuda["status"] == "skipped"
    assert (
        cuda["reason"] == "no NVIDIA driver (libcuda.so.1: cannot open shared object file: No such file or directory)"
    )
