"""What an ELF shared object is made of, read with a few seeks (modules can be hundreds of MB) and
without running anything: the libraries it asks for (DT_NEEDED), and whether it is whole."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from .._platform import IS_MACOS, IS_WINDOWS

_SHT_DYNAMIC = 6
_DT_NEEDED = 1
_PT_LOAD = 1
_SECTION = struct.Struct("<IIQQQQIIQQ")
_DYNAMIC_ENTRY = struct.Struct("<qQ")


def _is_elf64_le(header: bytes) -> bool:
    """The 64-bit little-endian layout read here (other layouts are left to the dynamic loader)."""
    return header[:4] == b"\x7fELF" and header[4] == 2 and header[5] == 1


def _read_at(file: BinaryIO, offset: int, size: int) -> bytes:
    file.seek(offset)
    data = file.read(size)
    if len(data) != size:
        raise ValueError("short read")
    return data


def _read_string(file: BinaryIO, offset: int) -> str:
    file.seek(offset)
    found = b""
    while b"\0" not in found:
        chunk = file.read(256)
        if not chunk:
            raise ValueError("unterminated string")
        found += chunk
    return found[: found.index(b"\0")].decode()


def needed_libraries(path: Path) -> list[str]:
    """DT_NEEDED of a 64-bit little-endian ELF file; [] for anything else or anything damaged."""
    try:
        with path.open("rb") as file:
            header = file.read(64)
            if not _is_elf64_le(header):
                return []
            (section_offset,) = struct.unpack_from("<Q", header, 0x28)
            entry_size, count = struct.unpack_from("<HH", header, 0x3A)
            table = _read_at(file, section_offset, entry_size * count)
            sections = [_SECTION.unpack_from(table, i * entry_size) for i in range(count)]
            dynamic = next((s for s in sections if s[1] == _SHT_DYNAMIC), None)
            if dynamic is None:
                return []
            strings_offset = sections[dynamic[6]][4]
            entries = _read_at(file, dynamic[4], dynamic[5])
            names = []
            for tag, value in _DYNAMIC_ENTRY.iter_unpack(entries[: len(entries) - len(entries) % 16]):
                if tag == 0:
                    break
                if tag == _DT_NEEDED:
                    names.append(_read_string(file, strings_offset + value))
            return names
    except (OSError, struct.error, IndexError, ValueError):
        return []


def refuse_damaged(path: Path) -> str:
    """Why a module file cannot be opened at all ("" when it looks whole): dlopen of a truncated ELF dies of
    SIGBUS. Only ELF is looked at: Windows and macOS libraries are left to their loaders."""
    problem = structural_problem(path) if not (IS_WINDOWS or IS_MACOS) else None
    return f"cannot be loaded: {path}: {problem}" if problem else ""


def structural_problem(path: Path) -> str | None:
    """Why dlopen must not be tried on this file, or None. A truncated shared object is not refused by
    the dynamic loader: it maps segments past the end of the file and the process dies of SIGBUS."""
    try:
        with path.open("rb") as file:
            header = file.read(64)
            size = path.stat().st_size
            if header[:4] != b"\x7fELF":
                return "not an ELF file"
            if not _is_elf64_le(header):
                return None
            (program_offset,) = struct.unpack_from("<Q", header, 0x20)
            entry_size, count = struct.unpack_from("<HH", header, 0x36)
            if program_offset + entry_size * count > size:
                return f"truncated: {size} bytes, program headers end at {program_offset + entry_size * count}"
            table = _read_at(file, program_offset, entry_size * count)
    except (OSError, struct.error, ValueError) as error:
        return f"unreadable: {error}"
    for index in range(count):
        kind, _, offset, _, _, file_size, _, _ = struct.unpack_from("<IIQQQQQQ", table, index * entry_size)
        if kind == _PT_LOAD and offset + file_size > size:
            return f"truncated: {size} bytes, a loadable segment ends at {offset + file_size}"
    return None
