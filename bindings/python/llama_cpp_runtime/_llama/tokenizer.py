"""Text to token ids and back, through a model's vocabulary. llama.cpp's tokenizer API is thread-safe;
ids are checked here because an id outside the vocabulary makes llama.cpp throw across its C API,
which ends the process."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from .._errors import TokenizeError

INT32_MIN = -(2**31)


class Tokenizer:
    def __init__(self, llama: ctypes.CDLL, vocab: int) -> None:
        self._llama = llama
        self._vocab = vocab
        self.n_vocab = int(llama.llama_vocab_n_tokens(vocab))

    def tokenize(self, text: str | bytes, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        data = _utf8(text) if isinstance(text, str) else bytes(text)
        if len(data) > 2**31 - 1:
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


def _utf8(text: str) -> bytes:
    """The text's UTF-8; a lone surrogate (what Python makes of bytes that are not UTF-8 in argv or a file
    name) has none, and is a TokenizeError naming where it is."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TokenizeError(
            f"the text is not valid Unicode: {text[error.start]!r} at position {error.start} is a lone surrogate "
            "(bytes that are not UTF-8, read with surrogateescape?)"
        ) from None
