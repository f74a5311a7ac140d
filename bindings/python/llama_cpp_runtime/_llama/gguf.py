"""A GGUF file's header, metadata and tensor table, read in Python before libllama sees the file.

llama.cpp rejects most malformed files with an error, but aborts the whole process on some (a
vocabulary with two tokens of the same text fails a GGML_ASSERT, and so do the hyperparameters that
hparams.py lists). Reading the header here, with every
length checked against the file's size, turns those into a typed error and answers "is this a GGUF at
all" without loading a library. Tensor data is never read.
"""

from __future__ import annotations

import contextlib
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
FileState = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns: which file, and its state
KEPT_ARRAY_ITEMS = 4096  # a numeric array up to this long is kept in the metadata (per-layer hyperparameters)
TOKENS_KEY = "tokenizer.ggml.tokens"
_U64 = struct.Struct("<Q")
_READ_AHEAD = 1 << 20  # bytes read at a time: most headers fit in one read; a big vocabulary takes a few


@dataclass(frozen=True)
class GGUFArray:
    """An array of the metadata that the header does not keep (a vocabulary is 100k+ strings, tens of MB
    as Python objects): its item type, its length, and where its items start; `header.array(key)` reads it."""

    item_type: int
    count: int
    offset: int


Value = int | float | bool | str | list[int | float | bool] | GGUFArray


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
    """What is before the tensor data. The metadata holds every scalar and string, and numeric arrays of
    up to KEPT_ARRAY_ITEMS items; a longer array or an array of strings is a GGUFArray (read it with array())."""

    path: Path
    version: int
    metadata: dict[str, Value] = field(repr=False)
    tensors: tuple[TensorInfo, ...] = field(repr=False)
    data_offset: int
    file_size: int
    file_state: FileState = field(repr=False)  # of the file read (its fstat): a model's baseline

    @property
    def architecture(self) -> str | None:
        """general.architecture (e.g. "llama"), or None when the file does not say."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    def array(self, key: str) -> list[int | float | bool | str]:
        """The items of an array of the metadata, read from the file now (KeyError when there is no such key)."""
        value = self.metadata[key]
        if isinstance(value, list):
            return list(value)
        if not isinstance(value, GGUFArray):
            raise InvalidModel(f"{self.path}: {key} is not an array")
        with _opened(self.path) as (stream, status):
            if _file_state(status) != self.file_state:
                raise InvalidModel(f"{self.path}: changed on disk since its header was read")
            reader = _Reader(stream, self.path, status.st_size, value.offset)
            return reader.items(value.item_type, value.count, key)


class _Reader:
    """The header's bytes, read ahead in large pieces and taken apart with struct.unpack_from at an offset:
    every length is checked against the file's size before it is believed."""

    def __init__(self, stream: BinaryIO, path: Path, size: int, at: int = 0) -> None:
        self.stream, self.path, self.size = stream, path, size
        self.base = at  # the file offset of buffer[0]
        stream.seek(at)
        self.buffer = stream.read(min(_READ_AHEAD, size - at))
        self.at = at  # the file offset of the next byte to take

    def need(self, n: int, what: str) -> int:
        """The buffer index of the next n bytes (read from the file when the buffer has not got them)."""
        at = self.at
        if n < 0 or at + n > self.size:
            raise InvalidModel(
                f"{self.path}: truncated or corrupt: {what} at byte {at} needs {n} bytes, the file has {self.size}"
            )
        index = at - self.base
        if index + n > len(self.buffer):
            self.stream.seek(at)
            self.buffer = self.stream.read(min(max(n, _READ_AHEAD, 2 * len(self.buffer)), self.size - at))
            self.base, index = at, 0
            if len(self.buffer) < n:  # cut short while it was read
                raise InvalidModel(f"{self.path}: truncated while it was read: {what} at byte {at}")
        self.at = at + n
        return index

    def scalar(self, code: int, what: str) -> int | float | bool:
        fmt = _SCALARS[code]
        index = self.need(struct.calcsize(fmt), what)  # first: it may read on into a new buffer
        value: int | float | bool = struct.unpack_from(fmt, self.buffer, index)[0]
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar(4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar(10, what))

    def string(self, what: str) -> str:
        n = self.u64(f"length of {what}")
        index = self.need(n, what)
        try:
            return self.buffer[index : index + n].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidModel(f"{self.path}: {what} is not UTF-8") from None

    def value(self, code: int, what: str) -> Value:
        if code in _SCALARS:
            return self.scalar(code, what)
        if code == TYPE_STRING:
            return self.string(what)
        if code != TYPE_ARRAY:
            raise InvalidModel(f"{self.path}: {what} has unknown value type {code}")
        item = self.u32(f"item type of {what}")
        count = self.u64(f"length of {what}")
        if item == TYPE_ARRAY:
            raise InvalidModel(f"{self.path}: {what} is an array of arrays, which GGUF does not allow")
        if item != TYPE_STRING and item not in _SCALARS:
            raise InvalidModel(f"{self.path}: {what} has unknown value type {item}")
        minimum = 8 if item == TYPE_STRING else struct.calcsize(_SCALARS[item])
        if count * minimum > self.size - self.at:
            raise InvalidModel(
                f"{self.path}: truncated or corrupt: {what} claims {count} items, more than the rest of the file holds"
            )
        start = self.at
        if item in _SCALARS and count <= KEPT_ARRAY_ITEMS:
            return self.numbers(item, count, what)
        if item in _SCALARS:
            self.need(count * minimum, what)
        elif what == TOKENS_KEY:  # read to check it: llama.cpp aborts on a text that is there twice
            _check_unique(self.path, self.items(item, count, what))
        else:
            self.skip_strings(count, what)
        return GGUFArray(item, count, start)

    def items(self, item: int, count: int, what: str) -> list[int | float | bool | str]:
        if item in _SCALARS:
            return list(self.numbers(item, count, what))
        return list(self.strings(count, what, keep=True))

    def numbers(self, item: int, count: int, what: str) -> list[int | float | bool]:
        fmt = _SCALARS[item]  # one unpack for the whole array
        index = self.need(count * struct.calcsize(fmt), what)
        return list(struct.unpack_from(f"<{count}{fmt[1]}", self.buffer, index))

    def skip_strings(self, count: int, what: str) -> None:
        """Past an array of strings, each checked to be UTF-8 and to end inside the file."""
        self.strings(count, what, keep=False)

    def strings(self, count: int, what: str, *, keep: bool) -> list[str]:
        """`count` strings (a vocabulary has 100k+): taken from the buffer in one tight loop while it holds
        them whole; string() takes the one that crosses the buffer's end (reading on) or the file's."""
        texts: list[str] = []
        taken = 0
        while taken < count:
            buffer, index = self.buffer, self.at - self.base
            limit = len(buffer)
            while taken < count and index + 8 <= limit:
                start = index + 8
                end = start + _U64.unpack_from(buffer, index)[0]
                if end > limit:
                    break
                try:
                    text = str(buffer[start:end], "utf-8")
                except UnicodeDecodeError:
                    raise InvalidModel(f"{self.path}: {what} is not UTF-8") from None
                if keep:
                    texts.append(text)
                index, taken = end, taken + 1
            self.at = self.base + index
            if taken < count:
                text = self.string(what)
                if keep:
                    texts.append(text)
                taken += 1
        return texts


def _check_unique(path: Path, texts: list[int | float | bool | str]) -> None:
    if len(set(texts)) == len(texts):
        return
    seen: dict[object, int] = {}
    for index, text in enumerate(texts):
        if text in seen:  # llama.cpp would abort the process (GGML_ASSERT in its vocabulary loader)
            raise InvalidModel(
                f"{path}: {TOKENS_KEY} has {text!r} twice (ids {seen[text]} and {index}); "
                f"llama.cpp cannot load such a vocabulary"
            )
        seen[text] = index


def _file_state(status: os.stat_result) -> FileState:
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


@contextlib.contextmanager
def _opened(location: Path) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    try:
        with location.open("rb") as stream:
            yield stream, os.fstat(stream.fileno())
    except PermissionError:
        raise InvalidModel(f"{location}: permission denied") from None
    except OSError as error:
        raise InvalidModel(f"{location}: cannot be read: {error.strerror or error}") from None


def read_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read and check everything before the tensor data; raise ModelNotFound or InvalidModel."""
    location = Path(path)
    if not location.exists():
        raise ModelNotFound(f"{location}: no such file")
    if location.is_dir():
        raise InvalidModel(f"{location}: is a directory, not a GGUF file")
    if not location.is_file():  # a FIFO or a device would block or never end
        raise InvalidModel(f"{location}: is not a regular file")
    with _opened(location) as (stream, status):
        return _parse(_Reader(stream, location, status.st_size), _file_state(status))


def _parse(reader: _Reader, state: FileState) -> GGUFHeader:
    path = reader.path
    head = reader.buffer[:4]
    if head != MAGIC:
        raise InvalidModel(f"{path}: not a GGUF file (it starts with {head!r}, a GGUF file with {MAGIC!r})")
    reader.need(4, "magic")
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
    data_offset = -(-reader.at // alignment) * alignment
    header = GGUFHeader(path, version, metadata, tensors, data_offset, reader.size, state)
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
    yield from hparam_problems(header.metadata)
