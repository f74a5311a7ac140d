"""macOS: the Metal devices, asked through Metal.framework with the Objective-C runtime (ctypes, no PyObjC):
MTLCopyAllDevices, each device's name, whether it shares memory with the CPU (Apple silicon) or is the
low-power one of two (an Intel Mac's integrated GPU). Written from Apple's Metal and objc runtime
references and run in a child process by the doctor; it has not run here (no Mac): see docs/binding.md.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

OBJC = "/usr/lib/libobjc.A.dylib"
METAL = "/System/Library/Frameworks/Metal.framework/Metal"


@dataclass(frozen=True)
class MetalDevice:
    name: str
    integrated: bool  # unified memory (Apple silicon) or low-power (an Intel Mac's processor graphics)


def probe_metal() -> list[MetalDevice] | str:
    """Every Metal device, or why Metal cannot be asked."""
    try:
        objc = ctypes.CDLL(OBJC)
        metal = ctypes.CDLL(METAL)
    except OSError as error:
        return f"no Metal ({error})"
    objc.sel_registerName.restype, objc.sel_registerName.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    metal.MTLCopyAllDevices.restype = ctypes.c_void_p

    def send(receiver: int, selector: bytes, restype: Any, *arguments: Any) -> Any:
        """objc_msgSend cast to this call's signature, as the ABI requires (it is not variadic on arm64)."""
        types: list[Any] = [ctypes.c_void_p, ctypes.c_void_p, *(type(argument) for argument in arguments)]
        function = ctypes.CFUNCTYPE(restype, *types)(("objc_msgSend", objc))
        return function(receiver, objc.sel_registerName(selector), *arguments)

    devices = metal.MTLCopyAllDevices()
    if not devices:
        return []
    found = []
    for index in range(send(devices, b"count", ctypes.c_ulong)):
        device = send(devices, b"objectAtIndex:", ctypes.c_void_p, ctypes.c_ulong(index))
        name = send(send(device, b"name", ctypes.c_void_p), b"UTF8String", ctypes.c_char_p) or b"?"
        unified = bool(send(device, b"hasUnifiedMemory", ctypes.c_bool))
        low_power = bool(send(device, b"isLowPower", ctypes.c_bool))
        found.append(MetalDevice(name.decode(errors="replace"), unified or low_power))
    send(devices, b"release", None)
    return found
