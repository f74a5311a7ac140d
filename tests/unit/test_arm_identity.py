"""The CPU identity the variant cache is keyed on, on ARM: the HWCAP words (what ggml's ARM variants score from)
are part of it, so a cache written under one CPU model is not reused under another even where /proc/cpuinfo is
the same file (qemu-user shows the host's); and ARM variant names, which hold a dot, survive discovery."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from llama_cpp_runtime._loading import variant_cache
from llama_cpp_runtime._loading.discovery import ModuleFile
from llama_cpp_runtime._platform import is_module_name, module_stem

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="getauxval: Linux only")


def test_an_arm_variant_name_keeps_its_dot() -> None:
    assert module_stem(Path("libggml-cpu-armv8.2_1.so")) == "ggml-cpu-armv8.2_1"
    assert module_stem(Path("libggml-cpu-haswell.so")) == "ggml-cpu-haswell"
    assert module_stem(Path("ggml-vulkan.dll")) == "ggml-vulkan"
    assert module_stem(Path("libggml-base.so.0")) == "ggml-base"
    assert is_module_name("libggml-cpu-armv9.2_2.so") or sys.platform == "win32"


@linux
def test_the_identity_carries_the_hwcap_words() -> None:
    capabilities = variant_cache.hardware_capabilities()
    assert capabilities.startswith("hwcap:") and " hwcap2:" in capabilities
    assert variant_cache.cpu_identity().endswith(capabilities)


@linux
def test_two_cpu_models_with_one_cpuinfo_get_two_cache_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "libggml-cpu-armv8.0_1.so"
    module.write_bytes(b"\x7fELF")
    modules = [ModuleFile("ggml-cpu-armv8.0_1", module, "llama-cpp-runtime")]
    entries = []
    for words in ("hwcap:8fb hwcap2:0", "hwcap:ecfffffb hwcap2:7f877fff"):  # qemu's cortex-a53, then max
        monkeypatch.setattr(variant_cache, "hardware_capabilities", lambda words=words: words)
        entries.append(variant_cache.entry_for(tmp_path / "cache", modules))
    first, second = entries
    assert first is not None and second is not None and first.path != second.path
    variant_cache.remember(first, {"ggml-cpu-armv8.0_1": 1})
    assert variant_cache.recall(first, modules) == {"ggml-cpu-armv8.0_1": 1}
    assert variant_cache.recall(second, modules) is None
