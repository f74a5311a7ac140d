"""tests/helpers/tiny_models.py writes the GGUF models the model-runtime tests load: read them back with gguf."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest
from helpers.tiny_models import write_duplicate_token_vocab, write_llama_model

LAYER_TENSORS = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"}


def read(path: Path) -> tuple[dict[str, object], dict[str, tuple[int, ...]], list[str]]:
    reader = gguf.GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    tensors = {tensor.name: tuple(int(n) for n in tensor.shape) for tensor in reader.tensors}
    tokens = list(reader.fields["tokenizer.ggml.tokens"].contents())
    return fields, tensors, tokens


@pytest.mark.parametrize(("vocab", "model"), [("spm", "llama"), ("bpe", "gpt2")])
def test_a_model_has_what_llama_cpp_loads_and_nothing_else(tmp_path: Path, vocab: str, model: str) -> None:
    path = write_llama_model(tmp_path / "m.gguf", vocab=vocab, n_layer=2, n_embd=64, n_ff=128)
    fields, tensors, tokens = read(path)

    assert fields["general.architecture"] == "llama" and fields["tokenizer.ggml.model"] == model
    assert fields["llama.block_count"] == 2 and fields["llama.embedding_length"] == 64
    assert fields["llama.rope.dimension_count"] == 64 // fields["llama.attention.head_count"]  # type: ignore[operator]
    assert len(tokens) == len(set(tokens)), "a repeated token text aborts llama.cpp"
    expected = {"token_embd.weight", "output_norm.weight", "output.weight"}
    expected |= {f"blk.{layer}.{name}.weight" for layer in range(2) for name in LAYER_TENSORS}
    assert set(tensors) == expected  # any extra tensor fails the load
    assert tensors["token_embd.weight"] == (64, len(tokens))  # ggml order: n_embd, n_vocab
    assert tensors["blk.0.ffn_up.weight"] == (64, 128)
    if vocab == "spm":
        assert [f"<0x{b:02X}>" for b in range(256)] == tokens[3:259]  # byte fallback: any UTF-8 tokenizes


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = write_llama_model(tmp_path / "a.gguf", seed=1, dtype="f16").read_bytes()
    assert write_llama_model(tmp_path / "b.gguf", seed=1, dtype="f16").read_bytes() == first
    assert write_llama_model(tmp_path / "c.gguf", seed=2, dtype="f16").read_bytes() != first
    assert len(first) < 400_000


def test_the_duplicate_token_model_repeats_a_text(tmp_path: Path) -> None:
    _, _, tokens = read(write_duplicate_token_vocab(tmp_path / "dup.gguf"))
    assert len(tokens) == len(set(tokens)) + 1
