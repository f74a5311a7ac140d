"""Where the binding finds NVIDIA's runtime libraries on Windows, driven by a fake site-packages layout
(the selection is plain path logic; only the final LoadLibrary needs Windows)."""

from __future__ import annotations

from pathlib import Path

from llama_cpp_runtime._loading.runtime_libs import nvidia_library_dirs, windows_runtime_dlls


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"MZ")
    return path


def test_cuda13_wheels_keep_their_dlls_one_folder_deeper(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    cudart13 = _touch(site / "nvidia/cu13/bin/x86_64/cudart64_13.dll")
    cublas13 = _touch(site / "nvidia/cu13/bin/x86_64/cublas64_13.dll")
    cublaslt13 = _touch(site / "nvidia/cu13/bin/x86_64/cublasLt64_13.dll")
    cublas12 = _touch(site / "nvidia/cublas/bin/cublas64_12.dll")
    _touch(site / "nvidia/cu13/lib/libcudart.so.13")

    windows = nvidia_library_dirs([str(site)], windows=True)
    assert site / "nvidia/cu13/bin/x86_64" in windows and site / "nvidia/cublas/bin" in windows
    assert site / "nvidia/cu13/lib" not in windows
    assert nvidia_library_dirs([str(site)], windows=False) == [site / "nvidia/cu13/lib"]

    # by full path, each needed one before the ones that import it
    assert windows_runtime_dlls(windows) == [cudart13, cublaslt13, cublas13, cublas12]
