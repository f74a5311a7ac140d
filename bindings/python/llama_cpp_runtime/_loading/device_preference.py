"""One physical GPU, one device offered: CUDA and Vulkan (or ROCm and Vulkan) both enumerate an NVIDIA
(AMD) card. A device is identified by the PCI bus id ggml reports (`device_id`, e.g. "0000:01:00.0");
among devices with the same id, the backend first in the order is preferred. Devices with no id are
never merged, since nothing proves they are the same."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .._report import Device, backend_of


def rank(backend: str, order: Sequence[str]) -> int:
    """A backend's place in the order (a module's backend or a registration's name); unknown ones last."""
    known = backend_of(backend)
    return order.index(known) if known in order else len(order)


def mark_preferred(devices: Sequence[Device], order: Sequence[str]) -> list[Device]:
    """The devices with `same_as` set where they are not preferred: a device loses to one of the same id whose backend
    comes earlier in `order` (unknown backends last), or, at the same rank, to the one enumerated first."""

    winners: dict[str, Device] = {}
    for device in devices:
        if device.device_id and device.type != "CPU":
            best = winners.get(device.device_id)
            if best is None or rank(device.backend, order) < rank(best.backend, order):
                winners[device.device_id] = device
    marked = []
    for device in devices:
        winner = winners.get(device.device_id) if device.device_id and device.type != "CPU" else None
        if winner is None or winner is device:
            marked.append(device)
        else:
            marked.append(replace(device, same_as=winner.name))
    return marked
