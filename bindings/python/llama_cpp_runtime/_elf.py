"""The libraries an ELF shared object asks for (DT_NEEDED), read without running anything."""

from __future__ import annotations

import struct
from pathlib import Path

_SHT_DYNAMIC = 6
_DT_NEEDED = 1


def needed_libraries(path: Path) -> list[str]:
    """DT_NEEDED of a 64-bit little-endian ELF file; [] for anything else or anything damaged."""
    try:
        data = path.read_bytes()
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            return []
        (section_offset,) = struct.unpack_from("<Q", data, 0x28)
        entry_size, count = struct.unpack_from("<HH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size) for i in range(count)]
        for section in sections:
            if section[1] != _SHT_DYNAMIC:
                continue
            strings_offset = sections[section[6]][4]
            names = []
            for position in range(section[4], section[4] + section[5], 16):
                tag, value = struct.unpack_from("<qQ", data, position)
                if tag == 0:
                    break
                if tag == _DT_NEEDED:
                    start = strings_offset + value
                    names.append(data[start : data.index(b"\0", start)].decode())
            return names
    except (OSError, struct.error, IndexError, ValueError):
        return []
    return []
