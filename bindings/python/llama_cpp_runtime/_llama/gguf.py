"""A GGUF file's header, metadata and tensor table, read in Python before libllama sees the file.

llama.cpp rejects most malformed files with an error, but aborts the whole process on some (a
vocabulary with two tokens of the same text fails a GGML_ASSERT, and so do the hyperparameters that
hparams.py lists). Reading the header here, with every
length checked against the file's size, turns those into a typed error and answers "is this a GGUF at
all" without loading a library. Tensor data is never read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .._errors import InvalidModel, ModelNotFound
from .hparams import hparam_problems

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
TYPE_STRING, TYPE_ARRAY = 8, 9
# ggml_type -> (elements per block, bytes per block), for the types a model file holds today
_BLOCKS = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
}
Value = int | float | bool | str | list["Value"]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # from the start of the data section

    def nbytes(self) -> int | None:
        """Bytes of data, None for a type this reader does not know."""
        block = _BLOCKS.get(self.ggml_type)
        if block is None:
            return None
        elements = 1
        for n in self.shape:
            elements *= n
        return elements // block[0] * block[1]


@dataclass(frozen=True)
class GGUFHeader:
    path: Path
    version: int
    metadata: dict[str, Value] = field(repr=False)
    tensors: tuple[TensorInfo, ...] = field(repr=False)
    data_offset: int
    file_size: int

    @property
    def architecture(self) -> str | None:
        """general.architecture (e.g. "llama"), or None when the file does not say."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None


class _Reader:
    def __init__(self, stream: BinaryIO, path: Path, size: int) -> None:
        self.stream, self.path, self.size = stream, path, size

    def take(self, n: int, what: str) -> bytes:
        at = self.stream.tell()
        if n < 0 or at + n > self.size:
            raise InvalidModel(
                f"{self.path}: truncated or corrupt: {what} at byte {at} needs {n} bytes, the file has {self.size}"
            )
        return self.stream.read(n)

    def scalar(self, code: int, what: str) -> int | float | bool:
        fmt = _SCALARS[code]
        value: int | float | bool = struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar(4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar(10, what))

    def string(self, what: str) -> str:
        raw = self.take(self.u64(f"length of {what}"), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidModel(f"{self.path}: {what} is not UTF-8") from None

    def value(self, code: int, what: str) -> Value:
        if code in _SCALARS:
            return self.scalar(code, what)
        if code == TYPE_STRING:
            return self.string(what)
        if code == TYPE_ARRAY:
            item = self.u32(f"item type of {what}")
            count = self.u64(f"length of {what}")
            if item == TYPE_ARRAY:
                raise InvalidModel(f"{self.path}: {what} is an array of arrays, which GGUF does not allow")
            minimum = 8 if item == TYPE_STRING else struct.calcsize(_SCALARS.get(item, "<B"))
            if count * minimum > self.size - self.stream.tell():
                raise InvalidModel(
                    f"{self.path}: truncated or corrupt: {what} claims {count} items, "
                    f"more than the rest of the file holds"
                )
            if item in _SCALARS:  # one read for the whole array: token types and scores are long
                fmt = _SCALARS[item]
                raw = self.take(count * struct.calcsize(fmt), what)
                return list(struct.unpack(f"<{count}{fmt[1]}", raw))
            return [self.value(item, what) for _ in range(count)]
        raise InvalidModel(f"{self.path}: {what} has unknown value type {code}")


def read_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read and check everything before the tensor data; raise ModelNotFound or InvalidModel."""
    location = Path(path)
    if not location.exists():
        raise ModelNotFound(f"{location}: no such file")
    if location.is_dir():
        raise InvalidModel(f"{location}: is a directory, not a GGUF file")
    if not location.is_file():  # a FIFO or a device would block or never end
        raise InvalidModel(f"{location}: is not a regular file")
    try:
        with location.open("rb") as stream:
            return _parse(_Reader(stream, location, os.fstat(stream.fileno()).st_size))
    except PermissionError:
        raise InvalidModel(f"{location}: permission denied") from None
    except OSError as error:
        raise InvalidModel(f"{location}: cannot be read: {error.strerror or error}") from None


def _parse(reader: _Reader) -> GGUFHeader:
    path = reader.path
    head = reader.stream.read(4)
    if head != MAGIC:
        raise InvalidModel(f"{path}: not a GGUF file (it starts with {head!r}, a GGUF file with {MAGIC!r})")
    version = reader.u32("version")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidModel(f"{path}: GGUF version {version} is not supported (only {SUPPORTED_VERSIONS})")
    n_tensors = reader.u64("tensor count")
    n_metadata = reader.u64("metadata count")
    metadata: dict[str, Value] = {}
    for index in range(n_metadata):
        key = reader.string(f"metadata key {index}")
        metadata[key] = reader.value(reader.u32(f"type of {key}"), key)
    tensors = tuple(_tensor(reader, index) for index in range(n_tensors))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise InvalidModel(f"{path}: general.alignment {alignment!r} is not a power of two")
    data_offset = -(-reader.stream.tell() // alignment) * alignment
    header = GGUFHeader(path, version, metadata, tensors, data_offset, reader.size)
    _check(header)
    return header


def _tensor(reader: _Reader, index: int) -> TensorInfo:
    name = reader.string(f"name of tensor {index}")
    n_dims = reader.u32(f"dimensions of {name}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise InvalidModel(f"{reader.path}: tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
    shape = tuple(reader.u64(f"shape of {name}") for _ in range(n_dims))
    return TensorInfo(name, shape, reader.u32(f"type of {name}"), reader.u64(f"offset of {name}"))


def _check(header: GGUFHeader) -> None:
    for problem in _problems(header):
        raise InvalidModel(f"{header.path}: {problem}")


def _problems(header: GGUFHeader) -> Iterator[str]:
    for tensor in header.tensors:
        size = tensor.nbytes()
        end = header.data_offset + tensor.offset + (size or 0)
        if end > header.file_size:
            yield (
                f"truncated: tensor {tensor.name} ends at byte {end}, the file has {header.file_size} "
                f"(an interrupted download?)"
            )
    tokens = header.metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list):
        seen: dict[object, int] = {}
        for index, token in enumerate(tokens):
            if token in seen:
                # llama.cpp would abort the process (GGML_ASSERT in its vocabulary loader)
                yield (
                    f"tokenizer.ggml.tokens has {token!r} twice (ids {seen[token]} and {index}); "
                    f"llama.cpp cannot load such a vocabulary"
                )
                return
            seen[token] = index
    yield from hparam_problems(header.metadata)
