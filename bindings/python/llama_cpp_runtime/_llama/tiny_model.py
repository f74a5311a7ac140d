"""A tiny llama model written on the spot (GGUF version 3, standard library only) for `check`'s model row:
2 layers, 64 wide, 4 heads over 2 KV heads, a byte vocabulary. Its matrices are q4_0 (the type CPU_REPACK and
AMX take) and its embeddings and output q8_0, quantized by ggml itself; the weights are deterministic, so
every process writes the same bytes."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence
from pathlib import Path

from .._ggml import api as _api
from .._ggml import op_cases as _op_cases
from .._ggml import reference as _reference

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX = 64, 4, 2, 128, 2, 128
TOKENS = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), "▁", *(f"▁{w}" for w in "abcdefghijklm")]
TOKEN_TYPES = [2, 3, 3, *([6] * 256), *([1] * 14)]  # unknown, control, byte, normal
_ALIGN = 32
_UINT32, _FLOAT32, _STRING, _ARRAY, _INT32 = 4, 6, 8, 9, 5


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(value: int | float | str | Sequence[object]) -> bytes:
    if isinstance(value, str):
        return struct.pack("<I", _STRING) + _string(value)
    if isinstance(value, float):
        return struct.pack("<If", _FLOAT32, value)
    if isinstance(value, int):
        return struct.pack("<II", _UINT32, value)
    items = list(value)
    if all(isinstance(v, str) for v in items):
        return struct.pack("<IIQ", _ARRAY, _STRING, len(items)) + b"".join(_string(str(v)) for v in items)
    if all(isinstance(v, float) for v in items):
        return struct.pack(f"<IIQ{len(items)}f", _ARRAY, _FLOAT32, len(items), *items)
    return struct.pack(f"<IIQ{len(items)}i", _ARRAY, _INT32, len(items), *items)


def _metadata() -> dict[str, int | float | str | Sequence[object]]:
    return {
        "general.architecture": "llama",
        "general.name": "llama-cpp-runtime check",
        "llama.context_length": N_CTX,
        "llama.embedding_length": N_EMBD,
        "llama.block_count": N_LAYER,
        "llama.feed_forward_length": N_FF,
        "llama.attention.head_count": N_HEAD,
        "llama.attention.head_count_kv": N_HEAD_KV,
        "llama.rope.dimension_count": N_EMBD // N_HEAD,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.vocab_size": len(TOKENS),
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": TOKENS,
        "tokenizer.ggml.scores": [0.0] * len(TOKENS),
        "tokenizer.ggml.token_type": TOKEN_TYPES,
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
    }


def _tensors(ggml: ctypes.CDLL) -> list[tuple[str, tuple[int, ...], int, bytes]]:
    """(name, ne, type, data) of every tensor; matrices scaled so that the logits spread (greedy is stable)."""
    head_dim, n_vocab = N_EMBD // N_HEAD, len(TOKENS)
    found: list[tuple[str, tuple[int, ...], int, bytes]] = []
    seed = 100

    def matrix(name: str, columns: int, rows: int, kind: int, scale: float) -> None:
        nonlocal seed
        seed += 1
        values = [v * scale for v in _reference.inputs(columns * rows, seed)]
        found.append((name, (columns, rows), kind, _op_cases.quantize(ggml, kind, values, rows, columns)))

    def norm(name: str) -> None:
        found.append((name, (N_EMBD,), _api.GGML_TYPE_F32, _op_cases.f32([1.0] * N_EMBD)))

    q4, q8 = _api.GGML_TYPE_Q4_0, _api.GGML_TYPE_Q8_0
    matrix("token_embd.weight", N_EMBD, n_vocab, q8, 1.0)
    for i in range(N_LAYER):
        norm(f"blk.{i}.attn_norm.weight")
        matrix(f"blk.{i}.attn_q.weight", N_EMBD, N_HEAD * head_dim, q4, 0.3)
        matrix(f"blk.{i}.attn_k.weight", N_EMBD, N_HEAD_KV * head_dim, q4, 0.3)
        matrix(f"blk.{i}.attn_v.weight", N_EMBD, N_HEAD_KV * head_dim, q4, 0.3)
        matrix(f"blk.{i}.attn_output.weight", N_HEAD * head_dim, N_EMBD, q4, 0.2)
        norm(f"blk.{i}.ffn_norm.weight")
        matrix(f"blk.{i}.ffn_gate.weight", N_EMBD, N_FF, q4, 0.3)
        matrix(f"blk.{i}.ffn_up.weight", N_EMBD, N_FF, q4, 0.3)
        matrix(f"blk.{i}.ffn_down.weight", N_FF, N_EMBD, q4, 0.2)
    norm("output_norm.weight")
    matrix("output.weight", N_EMBD, n_vocab, q8, 0.5)
    return found


def write(ggml: ctypes.CDLL, path: Path) -> Path:
    """The model at `path` (written beside it first, then renamed: a reader never sees half a file)."""
    metadata, tensors = _metadata(), _tensors(ggml)
    header = struct.pack("<4sIQQ", b"GGUF", 3, len(tensors), len(metadata))
    header += b"".join(_string(key) + _value(value) for key, value in metadata.items())
    data, infos = b"", b""
    for name, shape, kind, raw in tensors:
        infos += _string(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *shape, kind, len(data))
        data += raw + b"\0" * (-len(raw) % _ALIGN)
    head = header + infos
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(head + b"\0" * (-len(head) % _ALIGN) + data)
    partial.replace(path)
    return path
