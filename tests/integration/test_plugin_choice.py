"""Which GPU plugin modules load when several are installed: at most one CUDA module (chosen by the
driver's CUDA version and the GPUs' compute capability, as the driver reports them), and no plugin built
from another upstream than the core. The driver is the fixture's stand-in libcuda, answering from the
environment; the modules are real shared objects in plugin directories with the stage.json a wheel carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cpu_features import elf_linux
from helpers.support import Project
from test_binding import PLUGIN_MODULE, compile_module, env_for, python, report_of, runtime_cli

pytestmark = [pytest.mark.slow, elf_linux]

FAKE_DRIVER = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia-driver" / "libcuda.c"
# The shipped families (CMakePresets.json), as plugin directories: toolchain and architectures.
FAMILIES = {
    "cuda12-sm86": ("nvcc-12", "86-real;89-real;90-real;90-virtual"),
    "cuda13-sm75": ("nvcc-13", "75-real;80-real;86-real;89-real"),
    "cuda13-sm90": ("nvcc-13", "90-real;100-real;120a-real;100-virtual"),
}


@pytest.fixture
def driver(tmp_path: Path) -> Path:
    directory = tmp_path / "driver"
    directory.mkdir()
    compile_module(FAKE_DRIVER.read_text(), directory / "libcuda.so.1", "-Wl,-soname,libcuda.so.1")
    return directory


def plugin_dir(root: Path, upstream: dict[str, str], requires: str, architectures: str) -> Path:
    """A plugin as its wheel installs it: modules/libggml-cuda.so with stage.json beside modules/."""
    (root / "modules").mkdir(parents=True)
    compile_module(PLUGIN_MODULE, root / "modules" / "libggml-cuda.so")
    record = {
        "upstream": upstream,
        "requires": ["c-compiler", requires],
        "backend": "cuda",
        "cmake_options": {"CMAKE_CUDA_ARCHITECTURES": architectures},
    }
    (root / "stage.json").write_text(json.dumps(record))
    return root / "modules"


@pytest.fixture
def families(stage: Path, tmp_path: Path) -> dict[str, Path]:
    upstream = json.loads((stage / "stage.json").read_text())["upstream"]
    return {name: plugin_dir(tmp_path / name, upstream, *facts) for name, facts in FAMILIES.items()}


def cuda_rows(report: dict[str, object], families: dict[str, Path]) -> dict[str, tuple[str, str]]:
    """family -> (status, reason) of its CUDA module."""
    modules = report["modules"]
    assert isinstance(modules, list)
    by_path = {str(Path(m["path"]).parent): (m["status"], m["reason"]) for m in modules if m.get("path")}
    return {name: by_path[str(directory)] for name, directory in families.items()}


def choose(
    built: Project, stage: Path, tmp_path: Path, families: dict[str, Path], driver: Path, version: int, devices: str
) -> dict[str, tuple[str, str]]:
    report = report_of(
        built,
        stage,
        tmp_path,
        LD_LIBRARY_PATH=str(driver),
        FAKE_CUDA_DRIVER_VERSION=str(version),
        FAKE_CUDA_DEVICES=devices,
        LLAMA_CPP_RUNTIME_PLUGIN_DIRS=":".join(str(d) for d in families.values()),
    )
    return cuda_rows(report, families)


@pytest.mark.parametrize(
    ("version", "devices", "chosen", "serves"),
    [
        (13000, "8.6@0000:01:00.0", "cuda13-sm75", "sm_86: cubin"),
        (13020, "8.7@0000:01:00.0", "cuda13-sm75", "sm_87: compatible cubin"),
        (13000, "12.0@0000:41:00.0", "cuda13-sm90", "sm_120: cubin"),
        (13000, "12.1@0000:41:00.0", "cuda13-sm90", "sm_121: PTX, compiled by the driver"),
        (12040, "8.6@0000:01:00.0", "cuda12-sm86", "sm_86: cubin"),
        (12080, "12.0@0000:41:00.0", "cuda12-sm86", "sm_120: PTX, compiled by the driver"),
    ],
)
def test_one_cuda_module_is_loaded_the_one_that_serves_the_gpu_under_this_driver(
    built: Project,
    stage: Path,
    tmp_path: Path,
    families: dict[str, Path],
    driver: Path,
    version: int,
    devices: str,
    chosen: str,
    serves: str,
) -> None:
    rows = choose(built, stage, tmp_path, families, driver, version, devices)

    status, reason = rows.pop(chosen)
    supported = f"{version // 1000}.{version % 1000 // 10}"
    assert status == "loaded" and f"driver supports CUDA {supported}; {serves}" in reason, reason
    for name, (status, reason) in rows.items():
        assert status == "not chosen", (name, reason)
        if version < 13000 and name.startswith("cuda13"):
            assert reason == f"driver supports CUDA {supported}; the module needs CUDA 13"
        else:
            assert reason.startswith(f"driver supports CUDA {supported}") or "no GPU here can run it" in reason


def test_a_family_that_cannot_run_the_gpu_says_what_it_was_compiled_for(
    built: Project, stage: Path, tmp_path: Path, families: dict[str, Path], driver: Path
) -> None:
    rows = choose(built, stage, tmp_path, families, driver, 13000, "8.6@0000:01:00.0")

    assert rows["cuda13-sm90"] == (
        "not chosen",
        "compiled for 90-real, 100-real, 120a-real, 100-virtual; no GPU here can run it (sm_86)",
    )
    assert rows["cuda12-sm86"][1].endswith(f"{families['cuda13-sm75'] / 'libggml-cuda.so'} serves this machine better")


def test_a_driver_without_a_gpu_loads_the_newest_cuda_and_a_driver_too_old_for_all_loads_none(
    built: Project, stage: Path, tmp_path: Path, families: dict[str, Path], driver: Path
) -> None:
    no_gpu = choose(built, stage, tmp_path, families, driver, 13000, "")
    assert [name for name, (status, _) in no_gpu.items() if status == "loaded"] == ["cuda13-sm75"]
    assert "the backend found no device" in no_gpu["cuda13-sm75"][1]

    too_old = choose(built, stage, tmp_path, families, driver, 11080, "8.6@0000:01:00.0")
    assert too_old == {
        "cuda12-sm86": ("skipped", "driver supports CUDA 11.8; the module needs CUDA 12"),
        "cuda13-sm75": ("skipped", "driver supports CUDA 11.8; the module needs CUDA 13"),
        "cuda13-sm90": ("skipped", "driver supports CUDA 11.8; the module needs CUDA 13"),
    }


def test_without_the_driver_every_cuda_module_is_skipped_naming_the_library(
    built: Project, stage: Path, tmp_path: Path, families: dict[str, Path]
) -> None:
    report = report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_PLUGIN_DIRS=":".join(map(str, families.values())))

    why = "no NVIDIA driver (libcuda.so.1: cannot open shared object file: No such file or directory)"
    assert set(cuda_rows(report, families).values()) == {("skipped", why)}


def test_a_plugin_built_from_another_upstream_is_refused_naming_both(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    core = json.loads((stage / "stage.json").read_text())["upstream"]
    other = {**core, "patch_series_sha256": "f" * 64}
    modules = plugin_dir(tmp_path / "vulkan-elsewhere", other, "glslc", "")
    (modules / "libggml-cuda.so").rename(modules / "libggml-vulkan.so")

    report = report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_PLUGIN_DIRS=str(modules))

    [row] = [m for m in report["modules"] if m.get("path") == str(modules / "libggml-vulkan.so")]  # type: ignore[union-attr]
    assert row["status"] == "skipped"
    assert row["reason"] == (
        f"built from upstream {core['commit'][:12]} + patch series ffffffffffff, the core libraries from "
        f"{core['commit'][:12]} + patch series {core['patch_series_sha256'][:12]}: "
        "install the plugin of the core's version"
    )


GPU_PLUGIN = """
#include <stddef.h>
#include <string.h>
struct props { const char * name; const char * description; size_t memory_free; size_t memory_total; int type;
               const char * device_id; };
struct dev_i { const char * (*name)(void *); const char * (*description)(void *);
               void (*memory)(void *, size_t *, size_t *); int (*type)(void *); void * (*init)(void *, const char *);
               int (*supports_op)(void *, const void *); void (*get_props)(void *, struct props *); };
struct dev { struct dev_i iface; void * reg; void * context; };
struct reg_i { const char * (*name)(void *); size_t (*count)(void *); void * (*get)(void *, size_t); void * proc; };
struct reg { int api_version; struct reg_i iface; void * context; };
static const char * names[2] = {NAME "0", NAME "1"};
static const char * ids[2] = {ID0, ID1};
static const char * dev_name(void * d) { return names[(size_t) ((struct dev *) d)->context]; }
static const char * description(void * d) { (void) d; return "a GPU the test made up"; }
static void memory(void * d, size_t * f, size_t * t) { (void) d; *f = 1u << 30; *t = 1u << 30; }
static int type(void * d) { (void) d; return 1; }
static void * init(void * d, const char * p) { (void) d; (void) p; return NULL; }
static void get_props(void * d, struct props * p) { p->device_id = ids[(size_t) ((struct dev *) d)->context]; }
static struct reg registration;
#define DEVICE(index) {{dev_name, description, memory, type, init, NULL, get_props}, &registration, (void *) index}
static struct dev devices[2] = {DEVICE(0), DEVICE(1)};
static const char * reg_name(void * r) { (void) r; return NAME; }
static size_t count(void * r) { (void) r; return COUNT; }
static void * get(void * r, size_t i) { (void) r; return i < COUNT ? &devices[i] : NULL; }
static struct reg registration = {2, {reg_name, count, get, NULL}, NULL};
__attribute__((visibility("default"))) void * ggml_backend_init(void) { return &registration; }
"""


@pytest.fixture
def one_gpu_two_backends(stage: Path, tmp_path: Path, driver: Path) -> dict[str, str]:
    """An NVIDIA GPU at 0000:01:00.0 seen by CUDA (CUDA0) and by Vulkan (Vulkan0), and a second GPU at
    0000:02:00.0 that only Vulkan sees (Vulkan1): the environment that loads them."""
    upstream = json.loads((stage / "stage.json").read_text())["upstream"]
    cuda = plugin_dir(tmp_path / "cuda13-sm75", upstream, *FAMILIES["cuda13-sm75"])
    compile_module(
        GPU_PLUGIN, cuda / "libggml-cuda.so", '-DNAME="CUDA"', "-DCOUNT=1", '-DID0="0000:01:00.0"', "-DID1=NULL"
    )
    vulkan = tmp_path / "vulkan" / "modules"
    vulkan.mkdir(parents=True)
    compile_module(
        GPU_PLUGIN,
        vulkan / "libggml-vulkan.so",
        '-DNAME="Vulkan"',
        "-DCOUNT=2",
        '-DID0="0000:01:00.0"',
        '-DID1="0000:02:00.0"',
    )
    return {
        "LD_LIBRARY_PATH": str(driver),
        "FAKE_CUDA_DEVICES": "8.6@0000:01:00.0",
        "LLAMA_CPP_RUNTIME_PLUGIN_DIRS": f"{vulkan}:{cuda}",
    }


def preference(report: dict[str, object]) -> dict[str, tuple[bool, str]]:
    devices = report["devices"]
    assert isinstance(devices, list)
    return {d["name"]: (d["preferred"], d["same_as"]) for d in devices if d["type"] != "CPU"}


def test_a_gpu_two_backends_drive_is_offered_once_through_the_preferred_backend(
    built: Project, stage: Path, tmp_path: Path, one_gpu_two_backends: dict[str, str]
) -> None:
    default = report_of(built, stage, tmp_path, **one_gpu_two_backends)
    assert preference(default) == {"CUDA0": (True, ""), "Vulkan0": (False, "CUDA0"), "Vulkan1": (True, "")}
    vulkan0 = next(d for d in default["devices"] if d["name"] == "Vulkan0")  # type: ignore[union-attr]
    assert vulkan0["device_id"] == "0000:01:00.0"

    reordered = report_of(built, stage, tmp_path, LLAMA_CPP_RUNTIME_BACKEND_ORDER="vulkan", **one_gpu_two_backends)
    assert preference(reordered) == {"CUDA0": (False, "Vulkan0"), "Vulkan0": (True, ""), "Vulkan1": (True, "")}

    text = runtime_cli("info", env=env_for(built, stage, **one_gpu_two_backends), cwd=tmp_path).stdout
    assert "(not used by default: the same GPU as CUDA0, 0000:01:00.0)" in text

    chosen = python(
        "import llama_cpp_runtime as lcr; print(','.join(d.name for d in lcr.load().default_devices()))",
        env_for(built, stage, **one_gpu_two_backends),
        tmp_path,
    )
    assert chosen.stdout.split() == ["CPU,CUDA0,Vulkan1"]


def test_an_unknown_backend_in_the_order_is_a_one_line_error(built: Project, stage: Path, tmp_path: Path) -> None:
    result = runtime_cli("info", env=env_for(built, stage, LLAMA_CPP_RUNTIME_BACKEND_ORDER="cuda,vulcan"), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "LLAMA_CPP_RUNTIME_BACKEND_ORDER=cuda,vulcan: unknown backend 'vulcan' (known: cuda, hip, metal, vulkan)"
        )
    )
