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


_PT_LOAD = 1


def structural_problem(path: Path) -> str | None:
    """Why dlopen must not be tried on this file, or None. A truncated shared object is not refused by
    the dynamic loader: it maps segments past the end of the file and the process dies of SIGBUS."""
    try:
        with path.open("rb") as file:
            header = file.read(64)
            size = path.stat().st_size
            if header[:4] != b"\x7fELF":
                return "not an ELF file"
            if header[4] != 2 or header[5] != 1:
                return None  # not the 64-bit little-endian layout read here; let the loader judge
            (program_offset,) = struct.unpack_from("<Q", header, 0x20)
            entry_size, count = struct.unpack_from("<HH", header, 0x36)
            if program_offset + entry_size * count > size:
                return f"truncated: {size} bytes, program headers end at {program_offset + entry_size * count}"
            file.seek(program_offset)
            table = file.read(entry_size * count)
    except (OSError, struct.error) as error:
        return f"unreadable: {error}"
    for index in range(count):
        kind, _, offset, _, _, file_size, _, _ = struct.unpack_from("<IIQQQQQQ", table, index * entry_size)
        if kind == _PT_LOAD and offset + file_size > size:
            return f"truncated: {size} bytes, a loadable segment ends at {offset + file_size}"
    return None
