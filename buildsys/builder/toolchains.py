"""Which toolchains a preset needs are present here, and where (never guessed from the platform alone).

Each requirement named in a preset's vendor block has one detector. A detector either finds the tool
(with a one-line detail, and the CMake variables that locate it when CMake could not find it alone)
or says what is missing and what to install. Executables are looked up on the given PATH, so a test
can hide a toolchain by narrowing PATH.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..cmake_tool import is_on, probe
from .platforms import CrossTarget


@dataclass(frozen=True)
class Found:
    requirement: str
    detail: str
    cmake_variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Missing:
    requirement: str
    reason: str
    hint: str


Detection = Found | Missing


@dataclass(frozen=True)
class Host:
    """What detectors may look at: the environment (PATH) and the Python whose site-packages may hold SDKs."""

    env: Mapping[str, str]
    system: str
    python_paths: tuple[str, ...] = field(default_factory=lambda: tuple(sys.path))  # sys.path when created
    definitions: Mapping[str, str] = field(default_factory=dict)  # -D given on the command line
    cross: CrossTarget | None = None  # the platform a cross build is for (None: this host's own)

    def which(self, name: str, *extra_dirs: Path) -> Path | None:
        search = [*self.env.get("PATH", "").split(_path_separator(self.system)), *map(str, extra_dirs)]
        found = shutil.which(name, path=_path_separator(self.system).join(d for d in search if d))
        return Path(found) if found else None

    def include_dirs(self, *prefixes: str) -> list[Path]:
        roots = [Path(self.env[p]) / "include" for p in prefixes if self.env.get(p)]
        if self.system != "Windows":
            roots += [Path("/usr/include"), Path("/usr/local/include")]
        return roots


def _path_separator(system: str) -> str:
    return ";" if system == "Windows" else ":"


def detect(requirements: Sequence[str], host: Host) -> list[Detection]:
    results: list[Detection] = []
    for requirement in requirements:
        results.append(_DETECTORS[requirement](requirement, host, results))
    return results


# ---- detectors ---------------------------------------------------------------------------------


def _c_compiler(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
    if host.cross is not None:
        return _cross_compiler(requirement, host, host.cross)
    if host.env.get("CC"):
        candidates = [host.env["CC"]]
    else:
        candidates = ["cl"] if host.system == "Windows" else ["cc", "gcc", "clang"]
    for candidate in candidates:
        path = host.which(candidate)
        if path:
            version = probe([str(path), "--version"], host.env).splitlines() if path.name != "cl" else []
            return Found(requirement, f"{path} ({version[0] if version else 'version unknown'})")
    hint = {
        "Windows": "install Visual Studio's C++ workload and run from a developer prompt",
        "Darwin": "xcode-select --install",
    }.get(host.system, "apt-get install build-essential (or dnf install gcc gcc-c++)")
    return Missing(requirement, f"no C compiler ({' / '.join(candidates)}) on PATH", hint)


def _cross_compiler(requirement: str, host: Host, target: CrossTarget) -> Detection:
    """The target's gcc and g++ (Debian's g++-<triplet>), which the driver's toolchain file names; CC is the
    host's compiler and is not asked."""
    found = {}
    for language, name in (("C", f"{target.triplet}-gcc"), ("CXX", f"{target.triplet}-g++")):
        path = host.which(name)
        if path is None:
            reason = f"no cross compiler for {target.name}: {name} is not on PATH"
            return Missing(requirement, reason, f"apt-get install {target.package}")
        found[f"CMAKE_{language}_COMPILER"] = str(path)
    version = probe([found["CMAKE_C_COMPILER"], "--version"], host.env).splitlines()
    detail = f"{found['CMAKE_C_COMPILER']} ({version[0] if version else 'version unknown'}), cross to {target.name}"
    return Found(requirement, detail, found)


# NVIDIA's cuBLAS wheels on PyPI, by CUDA major: headers and libraries the CUDA presets can build against.
CUBLAS_WHEELS = {"12": "nvidia-cublas-cu12", "13": "nvidia-cublas"}


def _nvcc_dirs(host: Host) -> list[Path]:
    return [Path(host.env[v]) / "bin" for v in ("CUDAToolkit_ROOT", "CUDA_PATH", "CUDA_HOME") if host.env.get(v)]


def _nvcc_release(nvcc: Path, host: Host) -> tuple[str, str] | None:
    """(major, minor) of the CUDA release that `nvcc --version` reports."""
    match = re.search(r"release (\d+)\.(\d+)", probe([str(nvcc), "--version"], host.env))
    return (match[1], match[2]) if match else None


def cublas_wheel_for_nvcc(host: Host) -> str | None:
    """NVIDIA's cuBLAS wheel for the CUDA major of the nvcc the nvcc-N requirement would find, as a
    requirement (e.g. "nvidia-cublas>=13,<14"); None without an nvcc of a known major. The toolkit alone
    has no cuBLAS on some machines: `nox -s build/wheels` install this so the CUDA presets can build."""
    nvcc = host.which("nvcc", *_nvcc_dirs(host))
    major = (_nvcc_release(nvcc, host) or ("",))[0] if nvcc else ""
    if major not in CUBLAS_WHEELS:
        return None
    return f"{CUBLAS_WHEELS[major]}>={major},<{int(major) + 1}"


def _nvcc(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
    major = requirement.split("-")[1]
    nvcc = host.which("nvcc", *_nvcc_dirs(host))
    hint = f"install the CUDA {major} toolkit and put its bin/ on PATH (or set CUDA_PATH)"
    if not nvcc:
        return Missing(requirement, "nvcc not found on PATH or in CUDA_PATH/CUDAToolkit_ROOT", hint)
    release = _nvcc_release(nvcc, host)
    if release is None:
        return Missing(requirement, f"{nvcc} did not report its version", hint)
    version = ".".join(release)
    if release[0] != major:
        return Missing(requirement, f"{nvcc} is CUDA {version}, this preset needs CUDA {major}", hint)
    return Found(requirement, f"{nvcc} (CUDA {version})", {"CMAKE_CUDA_COMPILER": str(nvcc)})


def _nvcc_toolkit(earlier: list[Detection]) -> Path | None:
    """The CUDA toolkit of the nvcc an earlier requirement of the same preset found."""
    nvcc = next((d for d in earlier if isinstance(d, Found) and d.requirement.startswith("nvcc-")), None)
    return Path(nvcc.cmake_variables["CMAKE_CUDA_COMPILER"]).resolve().parent.parent if nvcc else None


def _cublas(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
    toolkit = _nvcc_toolkit(earlier)
    major = next((d.requirement.split("-")[1] for d in earlier if d.requirement.startswith("nvcc-")), "13")
    wheel = CUBLAS_WHEELS.get(major, CUBLAS_WHEELS["13"])
    if toolkit:
        for include in (toolkit / "include", *toolkit.glob("targets/*/include")):
            if (include / "cublas_v2.h").is_file():
                return Found(requirement, f"cuBLAS headers in {include} (CUDA toolkit)")
    for site in host.python_paths:
        # NVIDIA's PyPI wheels: CUDA 13 under nvidia/cu13/, CUDA 12 under nvidia/cublas/.
        root = Path(site) / "nvidia" / ("cu13" if major != "12" else "cublas")
        library = root / "lib" / f"libcublas.so.{major}"
        if (root / "include" / "cublas_v2.h").is_file() and library.is_file():
            headers = str(root / "include")
            return Found(
                requirement,
                f"cuBLAS from the {wheel} wheel in {root}",
                {
                    "CUDA_cublas_LIBRARY": str(library),
                    "CUDA_cublasLt_LIBRARY": str(root / "lib" / f"libcublasLt.so.{major}"),
                    "CMAKE_CUDA_STANDARD_INCLUDE_DIRECTORIES": headers,
                    "CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES": headers,
                },
            )
    return Missing(
        requirement,
        "cuBLAS headers (cublas_v2.h) in neither the CUDA toolkit nor an installed NVIDIA wheel",
        f"pip install {wheel} (into the Python running the build), or install the toolkit's cuBLAS",
    )


def _cuda_driver(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
    """ggml links the driver API (CUDA::cuda_driver) for virtual memory management unless told not to."""
    if is_on(host.definitions.get("GGML_CUDA_NO_VMM", "")):
        return Found(requirement, "not linked: GGML_CUDA_NO_VMM=ON")
    if host.system == "Windows":
        return Found(requirement, "cuda.lib comes with the toolkit")
    candidates = [
        Path("/usr/lib/x86_64-linux-gnu/libcuda.so"),
        Path("/usr/lib64/libcuda.so"),
        Path("/usr/lib/libcuda.so"),
    ]
    toolkit = _nvcc_toolkit(earlier)
    if toolkit:
        candidates = [toolkit / "lib64/stubs/libcuda.so", *toolkit.glob("targets/*/lib/stubs/libcuda.so"), *candidates]
    for candidate in candidates:
        if candidate.exists():
            return Found(requirement, str(candidate))
    return Missing(
        requirement,
        "no libcuda.so to link (neither the toolkit's stubs/ nor a driver's development link)",
        "install the toolkit's driver stubs (e.g. cuda-driver-dev), or build with -D GGML_CUDA_NO_VMM=ON",
    )


def _glslc(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
    sdk = [Path(host.env["VULKAN_SDK"]) / "bin"] if host.env.get("VULKAN_SDK") else []
    glslc = host.which("glslc", *sdk)
    if not glslc:
        return Missing(
            requirement,
            "glslc (the GLSL to SPIR-V compiler) not found on PATH",
            "apt-get install glslc, or install the LunarG Vulkan SDK and set VULKAN_SDK",
        )
    return Found(requirement, f"{glslc}", {"Vulkan_GLSLC_EXECUTABLE": str(glslc)})


def _header(name: str, relative: str, hint: str, *prefixes: str) -> Callable[[str, Host, list[Detection]], Detection]:
    def detector(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
        for include in host.include_dirs(*prefixes):
            if (include / relative).is_file():
                return Found(requirement, f"{include / relative}{_header_version(include / relative)}")
        return Missing(requirement, f"{name} ({relative}) not found", hint)

    return detector


def _header_version(path: Path) -> str:
    if path.name != "vulkan.h":
        return ""
    core = path.with_name("vulkan_core.h")
    try:
        match = re.search(r"#define VK_HEADER_VERSION (\d+)", core.read_text(errors="replace"))
    except OSError:
        return ""
    return f" (VK_HEADER_VERSION {match[1]})" if match else ""


def _hip(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
    rocm = Path(host.env.get("ROCM_PATH", "/opt/rocm"))
    hint = "install ROCm 6.1 or newer with hipBLAS and rocBLAS (set ROCM_PATH if it is not /opt/rocm)"
    hipconfig = host.which("hipconfig", rocm / "bin")
    if not hipconfig:
        return Missing(requirement, "hipconfig not found on PATH or in $ROCM_PATH/bin", hint)
    match = re.match(r"(\d+)\.(\d+)", probe([str(hipconfig), "--version"], host.env))
    if not match or (int(match[1]), int(match[2])) < (6, 1):
        return Missing(requirement, f"{hipconfig} reports HIP {match[0] if match else '?'}, 6.1 is needed", hint)
    for package in ("hipblas", "rocblas"):
        if not (rocm / "lib" / "cmake" / package).is_dir():
            return Missing(requirement, f"{package} is not installed in {rocm}", hint)
    # CMake looks for the HIP compiler in HIPCXX, on PATH and through hipconfig on PATH; /opt/rocm/bin is
    # on no PATH in the manylinux container, so name ROCm's clang, as upstream's release workflow does.
    clang = Path(probe([str(hipconfig), "-l"], host.env).strip() or rocm / "llvm" / "bin") / "clang"
    if not clang.is_file():
        return Missing(requirement, f"ROCm's clang is not at {clang} (hipconfig -l)", hint)
    variables = {"CMAKE_PREFIX_PATH": str(rocm), "CMAKE_HIP_COMPILER": str(clang)}
    return Found(requirement, f"HIP {match[0]} in {rocm}, {clang}", variables)


def _xcode_metal(requirement: str, host: Host, earlier: list[Detection]) -> Detection:
    """The macOS SDK with its Metal framework. Not the `metal` shader compiler: the preset embeds the
    shader source (GGML_METAL_EMBED_LIBRARY) for the driver to compile at run time, and on Xcode 26 the
    compiler is an optional download that runner images sometimes lack."""
    hint = "install Xcode or its command-line tools and run xcode-select -s"
    if host.system != "Darwin":
        return Missing(requirement, "Metal builds only on macOS", hint)
    xcrun = host.which("xcrun")
    sdk = probe([str(xcrun), "--sdk", "macosx", "--show-sdk-path"], host.env).strip() if xcrun else ""
    if not sdk:
        return Missing(requirement, "xcrun cannot find the macOS SDK", hint)
    if not (Path(sdk) / "System/Library/Frameworks/Metal.framework").is_dir():
        return Missing(requirement, f"the macOS SDK at {sdk} has no Metal.framework", hint)
    return Found(requirement, f"macOS SDK {sdk}")


_DETECTORS: dict[str, Callable[[str, Host, list[Detection]], Detection]] = {
    "c-compiler": _c_compiler,
    "nvcc-12": _nvcc,
    "nvcc-13": _nvcc,
    "cublas": _cublas,
    "cuda-driver": _cuda_driver,
    "glslc": _glslc,
    "vulkan-headers": _header(
        "Vulkan headers", "vulkan/vulkan.h", "apt-get install libvulkan-dev, or the LunarG Vulkan SDK", "VULKAN_SDK"
    ),
    "spirv-headers": _header(
        "SPIR-V headers", "spirv/unified1/spirv.hpp", "apt-get install spirv-headers, or the Vulkan SDK", "VULKAN_SDK"
    ),
    "hip": _hip,
    "xcode-metal": _xcode_metal,
}

# What a preset may list in `vendor.llama-cpp-runtime.requires`.
REQUIREMENTS = frozenset(_DETECTORS)
