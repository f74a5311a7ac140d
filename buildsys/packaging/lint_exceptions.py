"""What check-wheel-contents is told to ignore in our wheels, each code with its reason: the one place the
tests and the release job (wheels.yml, `manifest`) read them from. Nothing else is ignored; the tests run
the tool without these too and fail if a code fires on anything but what is named here."""

from __future__ import annotations

# W004 "Module is not located at importable path": the tool takes every *.so for a Python extension module.
# modules/libggml-cpu-haswell.so, modules/libggml-vulkan.so are ggml backend modules, opened by path with
# dlopen and never imported; their names are ggml's own (what its loader and ours look for).
BACKEND_MODULES_ARE_NOT_PYTHON = ("W004",)
# W007 "Wheel library is empty", W008 "Wheel is empty": a family wheel (llama-cpp-runtime-cuda13) holds no
# file but its .dist-info on purpose; it only requires its members. A placeholder module would be code that
# every user of the family installs for nothing, only to quiet a check meant for wheels empty by mistake.
EMPTY_ON_PURPOSE = ("W007", "W008")

IGNORED = {"core": BACKEND_MODULES_ARE_NOT_PYTHON, "plugin": BACKEND_MODULES_ARE_NOT_PYTHON, "family": EMPTY_ON_PURPOSE}


def ignored_codes(kind: str) -> tuple[str, ...]:
    """The codes ignored for a wheel of this kind (release.json's `kind`: core, plugin, family)."""
    return IGNORED.get(kind, ())
