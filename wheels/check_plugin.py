"""Test an installed GPU plugin wheel: run with the Python of an environment holding it and the core wheel.

    python wheels/check_plugin.py llama-cpp-runtime-vulkan [--lavapipe]
    python wheels/check_plugin.py llama-cpp-runtime-server

The server wheel holds a program, not a module: its `llama-server` command must start upstream's program on the
core's libraries and answer `--version`.

The plugin's modules must be found (loaded, or skipped because the driver is missing: expected on a runner
without a GPU), never absent, and never skipped for a runtime library the wheels should have brought.
Each device they bring is then checked with `python -m llama_cpp_runtime check`. With --lavapipe (Mesa's
Vulkan on the CPU is installed) ggml is told to show it and a device is required, so the plugin really
computes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

TIMEOUT = 600


def _runtime(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this Python, an argument list
        [sys.executable, "-m", "llama_cpp_runtime", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


# What a machine without the hardware lacks, and no wheel can bring: the GPU drivers and loaders.
DRIVER_LIBRARIES = ("libcuda.so", "nvcuda.dll", "libvulkan.so", "vulkan-1.dll", "libamdhip64.so", "amdhip64")
_NOT_FOUND = (
    "cannot open shared object file",
    "not found",
    "No such file",
    "could not be found",
    "error loading",
    "Library not loaded",
)


def problems(modules: list[dict[str, str]], distribution: str) -> list[str]:
    """Why the plugin fails here, if it does: a module absent, or skipped for a library that is not the
    driver (the runtime libraries come from NVIDIA's or our wheels, so their absence is our bug)."""
    if not modules or any(m["status"] == "absent" for m in modules):
        return [f"no module of {distribution} was found by the loader"]
    found = []
    for module in modules:
        reason = module["reason"]
        if module["status"] != "skipped":
            continue
        if any(library in reason for library in DRIVER_LIBRARIES):
            continue  # no driver on this runner: expected
        if any(marker in reason for marker in _NOT_FOUND):
            found.append(f"{module['name']} needs a library that is not the driver and was not found: {reason}")
    return found


def check_program(distribution: str) -> int:
    """The server wheel: its command, beside this Python, runs upstream's program and prints its version."""
    folder = Path(sys.executable).parent
    command = next((p for p in (folder / "llama-server", folder / "llama-server.exe") if p.is_file()), None)
    if command is None:
        print(f"error: {distribution} installed no llama-server command in {folder}", file=sys.stderr)
        return 1
    result = subprocess.run(  # noqa: S603 - the wheel's command, an argument list
        [str(command), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    print(result.stdout + result.stderr)
    if result.returncode != 0 or "version" not in result.stdout + result.stderr:
        print(f"error: `llama-server --version` exited {result.returncode}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("distribution", help="the plugin's distribution, e.g. llama-cpp-runtime-cuda12")
    parser.add_argument("--lavapipe", action="store_true", help="a CPU Vulkan device is installed: require it")
    arguments = parser.parse_args(argv)
    if arguments.distribution.endswith("-server"):
        return check_program(arguments.distribution)
    env = dict(os.environ)
    if arguments.lavapipe:
        env["GGML_VK_VISIBLE_DEVICES"] = "0"  # ggml hides CPU Vulkan devices unless listed
    info = _runtime("info", "--json", env=env)
    if info.returncode != 0:
        print(f"error: `llama_cpp_runtime info` failed:\n{info.stdout}{info.stderr}", file=sys.stderr)
        return 1
    report = json.loads(info.stdout)
    modules = [m for m in report["modules"] if m["source"] == arguments.distribution]
    for module in modules:
        print(f"{module['name']}: {module['status']} {module['reason']}".rstrip())
    found = problems(modules, arguments.distribution)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    if found:
        return 1
    # Only the core and this plugin are installed, so every device not on the CPU is the plugin's (ggml's
    # registrations are not named like the modules: the HIP backend registers as "ROCm").
    devices = [d["name"] for d in report["devices"] if d["backend"] != "CPU"]
    if not devices:
        if arguments.lavapipe:
            print("error: --lavapipe, but the plugin brought no device", file=sys.stderr)
            return 1
        print(f"{arguments.distribution}: no device on this machine, nothing to compute on")
        return 0
    checked = _runtime("check", *(f"--device={d}" for d in devices), env=env)
    print(checked.stdout + checked.stderr)
    return checked.returncode


if __name__ == "__main__":
    sys.exit(main())
