"""The long descriptions PyPI shows: one page per distribution, written for the people who install it.

Each page says what the distribution is, how to install it (the core's extras), how the binding chooses
what runs and how to see it (`info`, `doctor`, `check`), and links (from wheels/pyproject.toml's
[project.urls]); the build's provenance (upstream commit, patches, presets and their GGML_ options,
driver floors) is a short "Build" section at the end, written by the wheel writer. Everything a page says
about a plugin comes from the presets (buildsys/cmake/CMakePresets.json) or the wheels' own records."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..builder.presets import DRIVER_FLOORS, Matrix, Preset
from ..ci.matrix import github_matrix
from .project_table import ProjectTable

CORE = "llama-cpp-runtime"
BACKEND_NAMES = {
    "cpu": "CPU",
    "cuda": "CUDA",
    "vulkan": "Vulkan",
    "hip": "ROCm (HIP)",
    "metal": "Metal",
    "server": "llama.cpp's `llama-server`",
}
# What a plugin needs from the system besides the driver floor its preset records.
_SYSTEM_NEEDS = {
    "cuda": "an NVIDIA GPU and driver; NVIDIA's CUDA runtime and cuBLAS wheels come from PyPI with the plugin "
    "(no CUDA toolkit)",
    "vulkan": "a Vulkan driver for the GPU and the system's Vulkan loader (`libvulkan.so.1`, `vulkan-1.dll`)",
    "hip": "an AMD GPU and ROCm installed on the system (the HIP runtime, hipBLAS, rocBLAS)",
}
# The five lines the core page shows; tests/unit/test_package_pages.py runs them against the binding's API.
CORE_EXAMPLE = """\
import llama_cpp_runtime as lcr

rt = lcr.load()  # the best CPU variant for this machine, and every GPU plugin installed
with rt.load_model("model.gguf") as model, model.context(n_ctx=512) as ctx:
    print(model.detokenize(ctx.generate(model.tokenize("Hello"), max_tokens=32)))
"""
_COMMANDS = """\
```sh
python -m llama_cpp_runtime info     # every module: loaded, skipped (and why), not chosen, absent; the devices
python -m llama_cpp_runtime doctor   # every GPU here: what serves it, and the pip install that would
python -m llama_cpp_runtime check    # what models compute (quantized matmul, attention, norms, a tiny model) on every
                                     # device and CPU variant, against the baseline variant and Python
```
"""


def driver_floor_text(floor: Mapping[str, str]) -> str:
    """A preset's driver floor as a person reads it: "NVIDIA driver ≥ 525.60.13 (Linux), ≥ 528.33 (Windows)"."""
    said: dict[str, list[str]] = {}
    for key, driver, system in DRIVER_FLOORS:
        if key in floor:
            said.setdefault(driver, []).append(f"≥ {floor[key]}" + (f" ({system})" if system else ""))
    return "; ".join(f"{driver} {', '.join(versions)}" for driver, versions in said.items())


def gpu_text(preset: Preset) -> str:
    """The GPUs a plugin preset's code runs on, from its cache variables."""
    options = preset.cache_variables
    if preset.backend == "cuda":
        return cuda_architectures_text(options.get("CMAKE_CUDA_ARCHITECTURES", "").split(";"))
    if preset.backend == "hip":
        targets = options.get("GPU_TARGETS") or options.get("AMDGPU_TARGETS") or ""
        return ", ".join(f"`{t}`" for t in targets.split(";") if t) or "the AMD GPUs ROCm supports"
    if preset.backend == "metal":
        return "Apple GPUs"
    if preset.ships_program:
        return "the devices the core and its plugins serve"
    return "any GPU with a Vulkan driver" if preset.backend == "vulkan" else ""


def cuda_architectures_text(architectures: Sequence[str]) -> str:
    """75-real;90-virtual -> "`sm_75`; PTX `compute_90` (later GPUs, compiled by the driver)"."""
    real = [a.removesuffix("-real") for a in architectures if a and not a.endswith("-virtual")]
    virtual = [a.removesuffix("-virtual") for a in architectures if a.endswith("-virtual")]
    text = ", ".join(f"`sm_{a}`" for a in real)
    if virtual:
        ptx = ", ".join(f"`compute_{a}`" for a in virtual)
        text += f"; PTX {ptx} (later GPUs, compiled by the driver at first use)"
    return text


def cuda_major(preset: Preset) -> str:
    return next((r.removeprefix("nvcc-") for r in preset.requires if r.startswith("nvcc-")), "")


def family_title(family: str) -> str:
    """llama-cpp-runtime-cuda13 -> "CUDA 13" (a family is one CUDA major split by architecture)."""
    match = re.fullmatch(r"cuda(\d+)", _extra(family))
    return f"CUDA {match[1]}" if match else _extra(family)


def _extra(distribution: str) -> str:
    return distribution.removeprefix(f"{CORE}-")


def _backend_title(preset: Preset) -> str:
    major = cuda_major(preset)
    return f"CUDA {major}" if major else BACKEND_NAMES.get(preset.backend, preset.backend)


def _floor(preset: Preset) -> str:
    return driver_floor_text(preset.driver_floor) or (
        "the system's Vulkan driver" if preset.backend == "vulkan" else ""
    )


def _plugin_presets(matrix: Matrix) -> dict[str, list[Preset]]:
    """Each plugin distribution (not the core) and its presets, in the matrix's order."""
    wheels: dict[str, list[Preset]] = {}
    for preset in matrix.presets:
        if preset.wheel != CORE:
            wheels.setdefault(preset.wheel, []).append(preset)
    return wheels


def published_platforms(matrix: Matrix) -> dict[str, list[str]]:
    """Each distribution and the platforms CI builds it for (buildsys.ci.matrix: no ROCm on aarch64, ...);
    a family, where every member is built."""
    built: dict[str, list[str]] = {}
    for entry in github_matrix(matrix)["include"]:
        built.setdefault(str(entry["distribution"]), []).append(str(entry["platform"]))
    for family, members in matrix.family_members().items():
        built[family] = [p for p in built.get(members[0], []) if all(p in built.get(m, []) for m in members)]
    return built


def _platforms_text(names: Sequence[str]) -> str:
    return ", ".join(names) or "none yet"


def extras_table(matrix: Matrix) -> list[str]:
    """The core's extras, one row each: a family first, then its members; then the other plugins; and what
    each backend needs from the system."""
    rows = ["| extra | adds | runs on | needs | wheels for |", "|---|---|---|---|---|"]
    families = matrix.family_members()
    plugins = _plugin_presets(matrix)
    platforms = published_platforms(matrix)
    done: set[str] = set()
    for distribution, presets in plugins.items():
        preset = presets[0]
        if distribution in done:
            continue
        if preset.family:
            done.add(preset.family)
            listed = ", ".join(f"`[{_extra(m)}]`" for m in families[preset.family])
            rows.append(
                f"| `[{_extra(preset.family)}]` | {_backend_title(preset)}: every family ({listed}) "
                f"| what its families run on | {_floor(preset)} | {_platforms_text(platforms[preset.family])} |"
            )
            members = [(member, plugins[member][0]) for member in families[preset.family]]
        else:
            members = [(distribution, preset)]
        for member, member_preset in members:
            done.add(member)
            adds = f"{_backend_title(member_preset)}" + (": one family" if member_preset.family else "")
            rows.append(
                f"| `[{_extra(member)}]` | {adds} | {gpu_text(member_preset)} | {_floor(member_preset)} "
                f"| {_platforms_text(platforms.get(member, []))} |"
            )
    backends = dict.fromkeys(presets[0].backend for presets in plugins.values())
    notes = [f"- {BACKEND_NAMES.get(b, b)}: {_SYSTEM_NEEDS[b]}." for b in backends if b in _SYSTEM_NEEDS]
    notes.append("- Under a driver older than a plugin's floor the binding skips its module, naming both versions.")
    return [*rows, "", *notes]


def links(table: ProjectTable) -> list[str]:
    return ["## Links", "", *(f"- {label}: <{url}>" for label, url in table.urls), ""]


def _docs(table: ProjectTable) -> str:
    url = table.url("Documentation")
    return f"[the binding's documentation]({url})" if url else "the binding's documentation"


def core_page(
    *, table: ProjectTable, matrix: Matrix, coverage: Sequence[Mapping[str, Any]], llama_cpp_python: str, build: str
) -> str:
    """The page of llama-cpp-runtime. `coverage` is the release record's presets of this wheel."""
    variants = sorted({v for preset in coverage for v in preset.get("cpu_variants", ())})
    has_metal = any(preset.get("backend") == "metal" for preset in coverage)
    carried = ", ".join(f"`{v}`" for v in variants) or "none"
    examples = [("vulkan", "and the Vulkan backend")]
    examples += [(_extra(f), f"and {family_title(f)}, every architecture family") for f in matrix.family_members()]
    commands = [(f"pip install {CORE}", "every CPU variant" + (", and Metal" if has_metal else ""))]
    commands += [(f'pip install "{CORE}[{extra}]"', what) for extra, what in examples]
    width = max(len(command) for command, _ in commands)
    install = [f"{command:<{width}}  # {what}" for command, what in commands]
    lines = [
        f"# {CORE}",
        "",
        "[llama.cpp](https://github.com/ggml-org/llama.cpp) and ggml as shared libraries, ready to use from "
        "Python without a compiler: `libggml`, `libllama` and `libmtmd`, every CPU variant of ggml's CPU "
        "backend, and `llama_cpp_runtime`, a small ctypes binding that loads them, picks the best CPU "
        "variant for this machine at run time, loads the GPU backend plugins that are installed, and says "
        "what it loaded and why not. GPU backends are plugin wheels, installed as extras; on macOS the Metal "
        "backend is in this wheel.",
        "",
        "## Install",
        "",
        "```sh",
        *install,
        "```",
        "",
        *extras_table(matrix),
        "",
        f"Wheels for {_platforms_text(published_platforms(matrix).get(CORE, []))} (Linux: manylinux), for "
        "any Python from 3.11 on. Installing one family member instead of the whole family saves the "
        "download: `doctor` (below) names the one for each GPU here.",
        "",
        "## Use",
        "",
        "```python",
        *CORE_EXAMPLE.splitlines(),
        "```",
        "",
        '`rt.devices()` lists the devices; `rt.load_model(path, devices="gpu")` raises `GpuUnavailable` instead '
        f"of running on the CPU. Embeddings, streaming, the errors and the environment variables: {_docs(table)}.",
        "",
        "## What runs, and how to see it",
        "",
        f"- **CPU.** This wheel carries the CPU variants {carried}. `load()` asks each one whether this CPU "
        "runs it (its instruction sets) and loads the best; `LLAMA_CPP_RUNTIME_CPU_VARIANT` forces one.",
        "- **GPUs.** Each plugin wheel registers its module under the `llama_cpp_runtime.backends` entry point. "
        "`load()` opens every one installed and reports those it skipped with the dynamic loader's or ggml's "
        "own words (no driver, a driver older than the plugin's floor, a plugin built from another llama.cpp). "
        "At most one CUDA module loads: the one whose CUDA version the driver runs and whose code runs the most "
        "GPUs here.",
        "- **Nothing silent.** A GPU that no installed plugin serves is named once, with the `pip install` "
        'that would serve it (`UnusedGpuWarning`); `load(require="gpu")` refuses instead.',
        "",
        *_COMMANDS.splitlines(),
        "",
    ]
    if llama_cpp_python:
        lines += [
            "## llama-cpp-python",
            "",
            f"This release serves llama-cpp-python {llama_cpp_python}, the release that vendors the same "
            "llama.cpp: its Python layer installs without compiling and runs on these libraries, the best CPU "
            'variant and the GPU plugins. Call `llama_cpp_runtime.use_for("llama_cpp")` before anything imports '
            f"`llama_cpp`; how to install it without a compiler: {_docs(table)}.",
            "",
        ]
    return "\n".join([*lines, *links(table), build_section(build)])


def plugin_page(*, table: ProjectTable, distribution: str, presets: Sequence[Preset], build: str) -> str:
    """The page of a GPU plugin wheel (llama-cpp-runtime-vulkan, -cuda13-sm90, -rocm)."""
    preset = presets[0]
    extra = _extra(distribution)
    title = _backend_title(preset)
    gpus = gpu_text(preset)
    family = preset.family
    commands = [(f'pip install "{CORE}[{extra}]"', "this architecture family" if family else "")]
    if family:
        commands.append((f'pip install "{CORE}[{_extra(family)}]"', f"every family of {title}"))
    width = max(len(command) for command, _ in commands)
    install = [f"{command:<{width}}  # {what}" if what else command for command, what in commands]
    needs = [
        f"- {text}" for text in (_SYSTEM_NEEDS.get(preset.backend, ""), driver_floor_text(preset.driver_floor)) if text
    ]
    if driver_floor_text(preset.driver_floor):
        needs[-1] += ": under an older one the binding skips this module before loading it, naming both versions."
    device = {"cuda": "CUDA0", "vulkan": "Vulkan0", "hip": "ROCm0"}.get(preset.backend, "")
    lines = [
        f"# {distribution}",
        "",
        f"The {title} backend of [{CORE}](https://pypi.org/project/{CORE}/)"
        + (f", compiled for {gpus}" if preset.backend in {"cuda", "hip"} and gpus else "")
        + f". A plugin: it holds ggml's {BACKEND_NAMES.get(preset.backend, preset.backend)} module and the "
        f"record of its build; {CORE} of the same version finds it through its entry point and loads it.",
        "",
        "## Install",
        "",
        "```sh",
        *install,
        "```",
        "",
    ]
    if family:
        lines += [
            f"The family wheel `{family}` installs every architecture family of {title}; the binding loads the "
            "one module that runs the GPUs here and reports the others as not chosen. `python -m "
            "llama_cpp_runtime doctor` names the family for each GPU.",
            "",
        ]
    lines += ["## Needs", "", *needs, "", "## Check it", "", *_COMMANDS.splitlines()]
    if device:
        lines += ["", f"`check --device {device}` runs only this backend's first device."]
    lines.append("")
    return "\n".join([*lines, *links(table), build_section(build)])


def server_page(*, table: ProjectTable, distribution: str, build: str) -> str:
    """The page of the llama-server wheel: upstream's program, run on the core's libraries and plugins."""
    lines = [
        f"# {distribution}",
        "",
        "llama.cpp's own `llama-server` (an OpenAI-compatible HTTP server: `/v1/chat/completions`, "
        f"`/v1/completions`, `/v1/models`, `/health`), built from the same llama.cpp as [{CORE}]"
        f"(https://pypi.org/project/{CORE}/) and run on its libraries: no second copy of ggml or libllama. The "
        "`llama-server` command chooses what `llama_cpp_runtime.load()` chooses (the best CPU variant of this "
        "CPU, every installed GPU plugin that passes its checks) and starts upstream's program on exactly those "
        "modules; a module it was given that does not load stops it instead of serving on less.",
        "",
        "## Install and run",
        "",
        "```sh",
        f'pip install "{CORE}[server]"            # add [vulkan], [cuda13], ... for a GPU',
        "llama-server -m model.gguf --port 8080  # binds 127.0.0.1 unless --host says otherwise",
        "```",
        "",
        "Every option is upstream's (`llama-server --help`). The web UI is not included: it is built with npm, "
        "which a wheel build does not reach; the HTTP API is complete.",
        "",
    ]
    return "\n".join([*lines, *links(table), build_section(build)])


def family_page(
    *, table: ProjectTable, family: str, members: Sequence[tuple[str, Mapping[str, Any] | None]], build: str
) -> str:
    """The page of a family wheel; `members` are its member distributions with their release records."""
    extra = _extra(family)
    rows = ["| wheel | runs on |", "|---|---|"]
    for member, record in members:
        architectures = [a for p in (record or {}).get("presets", ()) for a in p.get("cuda_architectures", ())]
        rows.append(f"| `{member}` | {cuda_architectures_text(architectures) or 'see its page'} |")
    lines = [
        f"# {family}",
        "",
        f"Every architecture family of {CORE}'s {family_title(family)} backend in one "
        "install. This wheel holds no file on purpose: it requires each member wheel at its own version, so "
        "that each stays under PyPI's file size limit while `pip install` still takes one name.",
        "",
        "## Install",
        "",
        "```sh",
        f'pip install "{CORE}[{extra}]"',
        "```",
        "",
        *rows,
        "",
        "The binding loads the one module that runs the GPUs here and reports the others as not chosen. "
        f"Installing one member instead (`{CORE}[<member>]`) saves the download: `python -m llama_cpp_runtime "
        "doctor` names the one for each GPU.",
        "",
        *_COMMANDS.splitlines(),
        "",
    ]
    return "\n".join([*lines, *links(table), build_section(build)])


def build_section(body: str) -> str:
    return "## Build\n\n" + body if body else ""
