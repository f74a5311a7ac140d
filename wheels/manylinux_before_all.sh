#!/usr/bin/env bash
# cibuildwheel's before-all inside the manylinux_2_28 (AlmaLinux 8) container: ccache, then the GPU
# toolchain the matrix entry asks for. .github/workflows/wheels.yml sets these variables from
# `python -m buildsys matrix` (buildsys/ci/matrix.py declares the releases); environment-pass brings
# them in. Unset, only ccache is installed, which is all the CPU wheel needs.
#   CI_CUDA_VERSION=12.9.1            NVIDIA's rhel8 repository (x86_64, or sbsa on aarch64)
#   CI_ROCM_VERSION=6.4.3             AMD's rhel8 repository (x86_64 only)
#   CI_VULKAN_HEADERS=v1.4.313@<sha>  Vulkan-Headers, and shaderc's glslc + SPIR-V headers, built from
#   CI_SHADERC=v2025.2@<sha>          source at these tags, each checked against its commit
set -euo pipefail

arch="$(uname -m)"
dnf install -y dnf-plugins-core epel-release
dnf install -y ccache || echo "warning: no ccache package here; building without ccache" >&2

if [ -n "${CI_CUDA_VERSION:-}" ]; then
    case "$arch" in
        x86_64) repository=x86_64 ;;
        aarch64) repository=sbsa ;;
        *) echo "error: NVIDIA has no rhel8 CUDA repository for $arch" >&2; exit 1 ;;
    esac
    dnf config-manager --add-repo "https://developer.download.nvidia.com/compute/cuda/repos/rhel8/$repository/cuda-rhel8.repo"
    major_minor="$(echo "$CI_CUDA_VERSION" | cut -d. -f1,2)"       # 12.9.1 -> 12.9
    suffix="${major_minor/./-}"                                    # -> 12-9, NVIDIA's package suffix
    # nvcc, the runtime headers and CCCL; the driver stub (libcuda.so) ggml links for VMM; cuBLAS.
    dnf install -y "cuda-minimal-build-$suffix" "cuda-driver-devel-$suffix" "libcublas-devel-$suffix"
    ln -sfn "/usr/local/cuda-$major_minor" /usr/local/cuda         # CUDA_PATH in wheels/pyproject.toml
    /usr/local/cuda/bin/nvcc --version
    # nvcc refuses a host GCC newer than it knows ("unsupported GNU version!") an hour into the build:
    # a newer manylinux image, brought by a cibuildwheel bump, fails here instead, with the reason.
    case "$major_minor" in
        12.*) newest_gcc=14 ;;
        13.*) newest_gcc=15 ;;
        *) newest_gcc=99 ;;
    esac
    host_gcc="$(gcc -dumpversion | cut -d. -f1)"
    if [ "$host_gcc" -gt "$newest_gcc" ]; then
        echo "error: this image's GCC $host_gcc is newer than CUDA $major_minor supports (GCC $newest_gcc at most);" \
             "pin the manylinux image in wheels/pyproject.toml or move to a newer CUDA" >&2
        exit 1
    fi
fi

if [ -n "${CI_ROCM_VERSION:-}" ]; then
    if [ "$arch" != x86_64 ]; then
        echo "error: ROCm has no $arch release" >&2
        exit 1
    fi
    cat >/etc/yum.repos.d/rocm.repo <<EOF
[rocm]
name=ROCm $CI_ROCM_VERSION
baseurl=https://repo.radeon.com/rocm/rhel8/$CI_ROCM_VERSION/main
enabled=1
gpgcheck=1
gpgkey=https://repo.radeon.com/rocm/rocm.gpg.key
EOF
    # ROCm is many GB: no weak dependencies, no package cache left behind, and say what is left
    df -h / /tmp || true
    dnf install -y --setopt=install_weak_deps=False rocm-hip-runtime-devel hipblas-devel rocblas-devel
    dnf clean all
    df -h / /tmp || true
    /opt/rocm/bin/hipconfig --version
fi

# A git checkout of <tag> that must be <commit>: a moved tag fails the build instead of changing it.
checkout() {
    local url="$1" pin="$2" destination="$3"
    git clone --quiet --depth 1 --branch "${pin%@*}" "$url" "$destination"
    if [ "$(git -C "$destination" rev-parse HEAD)" != "${pin#*@}" ]; then
        echo "error: $url ${pin%@*} is not commit ${pin#*@}" >&2
        exit 1
    fi
}

if [ -n "${CI_VULKAN_HEADERS:-}" ] || [ -n "${CI_SHADERC:-}" ]; then
    # The loader from the distribution (only libvulkan.so to link; the wheel never bundles it); the
    # headers, glslc and SPIR-V headers of one SDK generation, because RHEL 8 ships no glslc and older headers.
    dnf install -y vulkan-loader-devel
    tools=/tmp/ci-build-tools
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet "cmake>=3.25" "ninja>=1.11"
    export PATH="$tools/bin:$PATH"
    launcher=()
    if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache); fi

    checkout https://github.com/KhronosGroup/Vulkan-Headers.git "$CI_VULKAN_HEADERS" /tmp/vulkan-headers
    cmake -S /tmp/vulkan-headers -B /tmp/vulkan-headers/build -G Ninja -DCMAKE_INSTALL_PREFIX=/usr/local
    cmake --install /tmp/vulkan-headers/build

    checkout https://github.com/google/shaderc.git "$CI_SHADERC" /tmp/shaderc
    python3 /tmp/shaderc/utils/git-sync-deps
    cmake -S /tmp/shaderc -B /tmp/shaderc/build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
        -DSHADERC_SKIP_TESTS=ON -DSHADERC_SKIP_EXAMPLES=ON -DSHADERC_SKIP_COPYRIGHT_CHECK=ON \
        -DSHADERC_ENABLE_WERROR_COMPILE=OFF -DSPIRV_SKIP_TESTS=ON -DSPIRV_WERROR=OFF
    cmake --build /tmp/shaderc/build --target glslc_exe
    install -m 0755 /tmp/shaderc/build/glslc/glslc /usr/local/bin/glslc
    cp -R /tmp/shaderc/third_party/spirv-headers/include/spirv /usr/local/include/
    glslc --version
fi
