"""Text to token ids and back, through a model's vocabulary. llama.cpp's tokenizer API is thread-safe;
ids are checked here because an id outside the vocabulary makes llama.cpp throw across its C API,
which ends the process."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from .._errors import TokenizeError
from .._platform import INT32_MAX

INT32_MIN = -INT32_MAX - 1  # what llama_tokenize returns when the count does not fit its int32_t


class Tokenizer:
    def __init__(self, llama: ctypes.CDLL, vocab: int) -> None:
        self._llama = llama
        self._vocab = vocab
        self.n_vocab = int(llama.llama_vocab_n_tokens(vocab))

    def tokenize(self, text: str | bytes, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        data = utf8(text) if isinstance(text, str) else bytes(text)
        if len(data) > INT32_MAX:  # the length is an int32_t
            raise TokenizeError(f"text of {len(data)} bytes is longer than llama.cpp accepts (2 GiB)")
        capacity = len(data) + 8
        while True:
            buffer = (ctypes.c_int32 * capacity)()
            n = self._llama.llama_tokenize(self._vocab, data, len(data), buffer, capacity, add_special, parse_special)
            if n == INT32_MIN:
                raise TokenizeError("the text gives more tokens than an int32 can count")
            if n >= 0:
                return list(buffer[:n])
            capacity = -n

    def check_ids(self, ids: Sequence[int]) -> list[int]:
        tokens = [int(i) for i in ids]
        bad = next((t for t in tokens if not 0 <= t < self.n_vocab), None)
        if bad is not None:
            raise TokenizeError(f"token id {bad} is not in the vocabulary (0 to {self.n_vocab - 1})")
        return tokens

    def detokenize(self, ids: Sequence[int], *, remove_special: bool = False, unparse_special: bool = False) -> str:
        return self.detokenize_bytes(ids, remove_special=remove_special, unparse_special=unparse_special).decode(
            "utf-8", errors="replace"
        )

    def detokenize_bytes(
        self, ids: Sequence[int], *, remove_special: bool = False, unparse_special: bool = False
    ) -> bytes:
        tokens = self.check_ids(ids)
        array = (ctypes.c_int32 * len(tokens))(*tokens)
        capacity = max(16, len(tokens) * 8)
        while True:
            buffer = ctypes.create_string_buffer(capacity)
            n = self._llama.llama_detokenize(
                self._vocab, array, len(tokens), buffer, capacity, remove_special, unparse_special
            )
            if n >= 0:
                return buffer.raw[:n]
            capacity = -n

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (possibly part of a UTF-8 character: join pieces before decoding)."""
        (checked,) = self.check_ids([token])
        capacity = 32
        while True:
            buffer = ctypes.create_string_buffer(capacity)
            n = self._llama.llama_token_to_piece(self._vocab, checked, buffer, capacity, 0, special)
            if n >= 0:
                return buffer.raw[:n]
            capacity = -n

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._llama.llama_vocab_is_eog(self._vocab, token))


def utf8(text: str, what: str = "the text") -> bytes:
    """The text's UTF-8. A lone surrogate (what Python makes of bytes that are not UTF-8 in argv or a file
    name, with surrogateescape) has none, and is a TokenizeError naming the byte it stands for and where."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TokenizeError(
            f"{what} is not valid UTF-8: {not_utf8(text)} ({text[error.start]!r} at position {error.start} is a "
            "lone surrogate: bytes that are not UTF-8, read with surrogateescape?)"
        ) from None


def not_utf8(text: str) -> str:
    """Where the text has no UTF-8 ("" when it has): the first byte that was not UTF-8 where it was read
    (surrogateescape made byte b of it U+DC00 + b, for b from 0x80) and its offset in those bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        offset = len(text[: error.start].encode("utf-8", errors="surrogateescape"))
        code = ord(text[error.start])
        if 0xDC80 <= code <= 0xDCFF:
            return f"byte 0x{code - 0xDC00:02x} at offset {offset}"
        return f"a lone surrogate U+{code:04X} at offset {offset}"
    return ""
