"""How well a CUDA module's architectures run a GPU: NVIDIA's compatibility rules, as the choice uses them."""

from __future__ import annotations

import pytest
from llama_cpp_runtime._gpu.nvidia import fit

SM90_FAMILY = ("90-real", "100-real", "120a-real", "100-virtual")


@pytest.mark.parametrize(
    ("architectures", "capability", "expected"),
    [
        (SM90_FAMILY, (9, 0), 3),  # its own cubin
        (SM90_FAMILY, (12, 0), 3),  # 120a is sm_120's own
        (SM90_FAMILY, (12, 1), 1),  # 120a runs on sm_120 only: the compute_100 PTX is compiled by the driver
        (SM90_FAMILY, (10, 3), 2),  # a cubin of the same major and a lower minor
        (SM90_FAMILY, (8, 9), 0),  # neither cubins nor PTX run on an older GPU
        (("75-real", "80-real"), (8, 6), 2),
        (("75-real", "80-real"), (9, 0), 0),  # a cubin never runs on another major
        (("120a-virtual",), (12, 1), 0),  # architecture-specific PTX neither
        (("sm_86", "compute_80"), (8, 9), 2),  # nvcc's spelling
        (("compute_80",), (8, 6), 1),
        (("86",), (8, 9), 2),  # CMake's bare entry: a cubin and its PTX
        (("86",), (9, 0), 1),
        (("garbage", ""), (8, 6), 0),
    ],
)
def test_fit_follows_nvidias_compatibility_rules(
    architectures: tuple[str, ...], capability: tuple[int, int], expected: int
) -> None:
    assert fit(architectures, capability) == expected
