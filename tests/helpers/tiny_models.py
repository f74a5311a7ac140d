"""Tiny deterministic GGUF models that real llama.cpp loads, tokenizes with and generates from.

Weights are random, so the text is nonsense, but the same seed gives the same file and the same greedy
output. Two vocabularies cover llama.cpp's two common tokenizers: SentencePiece ("llama", with byte
fallback) and GPT-2 byte-level BPE ("gpt2"). Both tokenize any UTF-8 text.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt

SPM_WORDS = ("Hello", "hello", "world", "the", "and", "is", "of", "to", "in", "it", "test", "model", "llama")
BPE_WORDS = ("Hello", "hello", "world", "the", "and", "test", "model", "llama")
WEIGHT_SCALE = 0.02
RMS_EPS = 1e-5
DTYPES = {"f32": np.float32, "f16": np.float16}
# Quantised with gguf-py's own reference code (the same block layouts as ggml's quantize functions).
QUANTS = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0}
MetadataValue = int | float | str | list[int] | None
FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
}


@dataclass(frozen=True)
class Vocab:
    model: str
    pre: str | None
    tokens: list[str]
    scores: list[float]
    types: list[int]
    merges: list[str]
    bos: int
    eos: int
    unk: int | None


def _spm_vocab() -> Vocab:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    # A dict keeps the order and the texts unique: llama.cpp aborts on a vocabulary with a repeated text.
    pieces = dict.fromkeys(["▁", *letters, *("▁" + c for c in letters), *".,!?'"])
    # SPM only merges two adjacent pieces whose concatenation is itself a token, so every word needs its
    # whole chain of prefixes, starting from single characters, to be reachable.
    for word in SPM_WORDS:
        for text in (word, "▁" + word):
            for end in range(2, len(text) + 1):
                pieces.setdefault(text[:end])
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    # Longer pieces score higher, so the greedy bigram merge prefers whole words.
    scores = [0.0] * 259 + [-100.0 + len(t) for t in tokens[259:]]
    types = [
        gguf.TokenType.UNKNOWN,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
        *[gguf.TokenType.BYTE] * 256,
        *[gguf.TokenType.NORMAL] * (len(tokens) - 259),
    ]
    return Vocab("llama", None, tokens, scores, [int(t) for t in types], [], bos=1, eos=2, unk=0)


@functools.cache
def _bytes_to_unicode() -> dict[int, str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _bpe_vocab() -> Vocab:
    byte_symbols = _bytes_to_unicode()
    tokens = [byte_symbols[b] for b in range(256)]
    merges: list[str] = []
    known = set(tokens)
    # Left-to-right merges: each word is built from its prefix and the next symbol, so every merged token
    # is in the vocabulary. Space-prefixed words rank first so " world" becomes one token, as in GPT-2.
    for word in [" " + word for word in BPE_WORDS] + list(BPE_WORDS):
        text = "".join(byte_symbols[b] for b in word.encode())
        for end in range(2, len(text) + 1):
            merged = text[:end]
            if merged not in known:
                merges.append(f"{text[: end - 1]} {text[end - 1]}")
                tokens.append(merged)
                known.add(merged)
    n_normal = len(tokens)
    tokens += ["<|endoftext|>", "<|startoftext|>"]
    types = [int(gguf.TokenType.NORMAL)] * n_normal + [int(gguf.TokenType.CONTROL)] * 2
    scores = [0.0] * len(tokens)
    return Vocab("gpt2", "gpt-2", tokens, scores, types, merges, bos=n_normal + 1, eos=n_normal, unk=None)


def _vocab(kind: str) -> Vocab:
    if kind == "spm":
        return _spm_vocab()
    if kind == "bpe":
        return _bpe_vocab()
    raise ValueError(f"unknown vocab {kind!r}: expected 'spm' or 'bpe'")


def _write(
    path: Path,
    vocab: Vocab,
    *,
    n_layer: int,
    n_embd: int,
    n_head: int,
    n_head_kv: int,
    n_ff: int,
    n_ctx: int,
    seed: int,
    dtype: str,
    architecture: str = "llama",
    wrong_shape: str | None = None,
    metadata: Mapping[str, MetadataValue] | None = None,
) -> Path:
    if dtype not in FILE_TYPES:
        raise ValueError(f"unknown dtype {dtype!r}: expected one of {sorted(FILE_TYPES)}")
    if n_embd % n_head or n_head % n_head_kv:
        raise ValueError("n_embd must be a multiple of n_head, and n_head a multiple of n_head_kv")
    head_dim = n_embd // n_head
    n_vocab = len(vocab.tokens)
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> npt.NDArray[Any]:
        values = rng.standard_normal(shape, dtype=np.float32) * WEIGHT_SCALE
        return values if dtype in QUANTS else values.astype(DTYPES[dtype])

    def add(name: str, data: npt.NDArray[Any]) -> None:
        if name == wrong_shape:  # one column more than the architecture expects
            data = np.concatenate([data, data[..., :1]], axis=-1)
        if dtype in QUANTS and data.ndim == 2 and data.shape[-1] % 32 == 0:
            writer.add_tensor(name, gguf.quants.quantize(data, QUANTS[dtype]), raw_dtype=QUANTS[dtype])
        else:
            writer.add_tensor(name, data if data.ndim == 1 or dtype not in QUANTS else data.astype(np.float16))

    def norm() -> npt.NDArray[Any]:
        return np.ones(n_embd, dtype=np.float32)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, architecture)
    writer.add_name(f"tiny-llama-{vocab.model}-{dtype}")
    writer.add_file_type(int(FILE_TYPES[dtype]))
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_vocab_size(n_vocab)

    writer.add_tokenizer_model(vocab.model)
    if vocab.pre is not None:
        writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.bos)
    writer.add_eos_token_id(vocab.eos)
    if vocab.unk is not None:
        writer.add_unk_token_id(vocab.unk)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    _override(writer, metadata or {})

    # gguf-py takes numpy shapes, which are ggml's ne[] reversed: ne {n_embd, n_vocab} is (n_vocab, n_embd).
    add("token_embd.weight", weight(n_vocab, n_embd))
    for i in range(n_layer):
        add(f"blk.{i}.attn_norm.weight", norm())
        add(f"blk.{i}.attn_q.weight", weight(n_head * head_dim, n_embd))
        add(f"blk.{i}.attn_k.weight", weight(n_head_kv * head_dim, n_embd))
        add(f"blk.{i}.attn_v.weight", weight(n_head_kv * head_dim, n_embd))
        add(f"blk.{i}.attn_output.weight", weight(n_embd, n_head * head_dim))
        add(f"blk.{i}.ffn_norm.weight", norm())
        add(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        add(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        add(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    add("output_norm.weight", norm())
    add("output.weight", weight(n_vocab, n_embd))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_llama_model(
    path: Path,
    *,
    vocab: str = "spm",
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx: int = 256,
    seed: int = 0,
    dtype: str = "f32",
    architecture: str = "llama",
    wrong_shape: str | None = None,
    metadata: Mapping[str, MetadataValue] | None = None,
) -> Path:
    """Write a random-weight `llama` model with an "spm" or "bpe" vocabulary; 2-D weights in `dtype`
    (f32, f16, q8_0, q4_0). `architecture` renames it (llama.cpp knows the architecture by name only);
    `wrong_shape` names a tensor written one column wider than the architecture expects; `metadata` sets
    keys (replacing the writer's own; None removes one): ints are uint32 (int32 when negative), floats float32."""
    return _write(
        Path(path),
        _vocab(vocab),
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_ff=n_ff,
        n_ctx=n_ctx,
        seed=seed,
        dtype=dtype,
        architecture=architecture,
        wrong_shape=wrong_shape,
        metadata=metadata,
    )


def write_bench_model(path: Path, dtype: str = "f16") -> Path:
    """A model large enough to measure tokens/s (25.8 M parameters in 8 layers of 512), small on disk in
    Q4_0 (15 MB) to F16 (52 MB); the vocabulary stays tiny, so the layers are what is timed."""
    return write_llama_model(
        path, n_layer=8, n_embd=512, n_head=8, n_head_kv=8, n_ff=1408, n_ctx=1024, dtype=dtype, seed=7
    )


def _override(writer: gguf.GGUFWriter, metadata: Mapping[str, MetadataValue]) -> None:
    """Keys set after the writer's own (removed first: gguf-py warns when a key is set twice)."""
    for key, value in metadata.items():
        for shard in writer.kv_data:
            shard.pop(key, None)
        if value is None:
            continue
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            writer.add_int32(key, value) if value < 0 else writer.add_uint32(key, value)


def write_not_gguf(path: Path) -> Path:
    """A file with a .gguf name and no GGUF magic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a GGUF file\n" * 64)
    return path


def write_truncated(path: Path, source: Path, n_bytes: int | None = None) -> Path:
    """The first `n_bytes` of `source` (by default half of it: header intact, tensor data cut short)."""
    data = Path(source).read_bytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2 if n_bytes is None else n_bytes])
    return path


def write_duplicate_token_vocab(path: Path) -> Path:
    """An SPM model whose last token repeats an earlier token's text.

    Upstream llama.cpp aborts the process on such a vocabulary (GGML_ASSERT in llama_vocab::load) instead
    of returning an error, so a binding has to reject it before handing the file to llama.cpp.
    """
    base = _spm_vocab()
    vocab = Vocab(
        base.model,
        base.pre,
        [*base.tokens, "▁Hello"],
        [*base.scores, 0.0],
        [*base.types, int(gguf.TokenType.NORMAL)],
        base.merges,
        base.bos,
        base.eos,
        base.unk,
    )
    return _write(
        Path(path), vocab, n_layer=1, n_embd=32, n_head=2, n_head_kv=1, n_ff=64, n_ctx=64, seed=0, dtype="f32"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a tiny random-weight llama GGUF model.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--vocab", choices=("spm", "bpe"), default="spm")
    parser.add_argument("--dtype", choices=sorted(FILE_TYPES), default="f32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bench", action="store_true", help="the 25.8 M-parameter model of the benchmarks")
    args = parser.parse_args(argv)
    if args.bench:
        path = write_bench_model(args.out, args.dtype)
    else:
        path = write_llama_model(args.out, vocab=args.vocab, dtype=args.dtype, seed=args.seed)
    print(f"{path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
