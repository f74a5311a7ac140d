"""The binding's GGUF header reader: what it accepts, and that no damaged file makes it raise anything but
InvalidModel (it runs before libllama on every load, so a traceback here is a crash for the user)."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest
from helpers import tiny_models
from llama_cpp_runtime import InvalidModel, ModelNotFound, read_header
from llama_cpp_runtime._llama import gguf
from llama_cpp_runtime._llama.gguf import GGUFArray
from llama_cpp_runtime._llama.hparams import hparam_problems


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.write_llama_model(tmp_path_factory.mktemp("gguf") / "spm.gguf", dtype="q8_0")


def test_a_model_header_is_read_whole(model: Path) -> None:
    header = read_header(model)
    assert header.version == 3 and header.architecture == "llama"
    assert header.metadata["llama.block_count"] == 2
    # The vocabulary is not kept (100k+ strings in a real model), but is read on demand.
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GGUFArray) and tokens.count == len(header.array("tokenizer.ggml.tokens"))
    assert header.array("tokenizer.ggml.tokens")[:3] == ["<unk>", "<s>", "</s>"]
    names = [t.name for t in header.tensors]
    assert names[0] == "token_embd.weight" and "blk.1.ffn_down.weight" in names
    last = max(header.tensors, key=lambda t: t.offset)
    assert header.data_offset + last.offset + (last.nbytes() or 0) <= header.file_size
    assert header.data_offset % 32 == 0


def test_every_truncation_is_an_invalid_model(model: Path, tmp_path: Path) -> None:
    data = model.read_bytes()
    header = read_header(model)
    data_end = max(header.data_offset + t.offset + (t.nbytes() or 0) for t in header.tensors)
    assert len(data) - data_end < 32  # the writer pads the last tensor to the alignment; nothing else follows
    cut = tmp_path / "cut.gguf"
    for length in sorted({*range(0, 64), *range(0, data_end, max(1, data_end // 300)), data_end - 1}):
        cut.write_bytes(data[:length])
        with pytest.raises(InvalidModel):
            read_header(cut)


def test_corrupted_bytes_never_raise_anything_but_invalid_model(model: Path, tmp_path: Path) -> None:
    data = model.read_bytes()
    header_end = read_header(model).data_offset
    damaged = tmp_path / "damaged.gguf"
    generator = random.Random(12)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(400):
        corrupt = bytearray(data)
        for _ in range(generator.randint(1, 4)):
            corrupt[generator.randrange(header_end)] = generator.randrange(256)
        damaged.write_bytes(bytes(corrupt))
        try:
            read_header(damaged)
            outcomes["read"] += 1
        except InvalidModel:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and outcomes["read"] > 0  # both paths ran


def test_lengths_that_claim_more_than_the_file_holds_are_refused_at_once(tmp_path: Path) -> None:
    huge = tmp_path / "huge.gguf"
    # one metadata key whose string claims 2**60 bytes
    huge.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**60) + b"x" * 16)
    with pytest.raises(InvalidModel, match="needs 1152921504606846976 bytes"):
        read_header(huge)
    array = tmp_path / "array.gguf"
    key = b"k"
    array.write_bytes(
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + key + struct.pack("<IIQ", 9, 4, 2**40)
    )
    with pytest.raises(InvalidModel, match="claims 1099511627776 items"):
        read_header(array)


def test_what_llama_cpp_would_abort_on_is_refused_with_the_reason(tmp_path: Path) -> None:
    duplicate = tiny_models.write_duplicate_token_vocab(tmp_path / "duplicate.gguf")
    with pytest.raises(InvalidModel, match=r"'▁Hello' twice \(ids \d+ and \d+\)"):
        read_header(duplicate)


def test_not_a_file_and_not_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as missing:
        read_header(tmp_path / "nothing.gguf")
    assert isinstance(missing.value, FileNotFoundError)
    with pytest.raises(InvalidModel, match="is a directory"):
        read_header(tmp_path)
    with pytest.raises(InvalidModel, match=r"not a GGUF file \(it starts with b'this'"):
        read_header(tiny_models.write_not_gguf(tmp_path / "text.gguf"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.gguf")
        with pytest.raises(InvalidModel, match="is not a regular file"):  # reading it would block forever
            read_header(tmp_path / "pipe.gguf")
    future = tmp_path / "future.gguf"
    future.write_bytes(b"GGUF" + struct.pack("<IQQ", 99, 0, 0))
    with pytest.raises(InvalidModel, match="GGUF version 99 is not supported"):
        read_header(future)


HPARAMS_REFUSED = [
    ({"llama.block_count": 0}, "llama.block_count is 0: llama.cpp allows 1 to 512 layers"),
    ({"llama.block_count": 513}, "llama.block_count is 513"),
    ({"llama.block_count": 2, "llama.nextn_predict_layers": 3}, "llama.nextn_predict_layers is 3, more than"),
    ({"llama.expert_count": 4}, "llama.expert_count is 4 but llama.expert_used_count is missing or 0"),
    ({"llama.expert_used_count": 2}, "llama.expert_used_count is 2, more than llama.expert_count (0)"),
    ({"llama.expert_count": 4, "llama.expert_used_count": [2, 5]}, "llama.expert_used_count is 5"),  # per layer
    ({"llama.expert_count": 1025, "llama.expert_used_count": 1}, "llama.expert_count is 1025"),
    ({"llama.expert_count": 4, "llama.expert_used_count": 1, "llama.expert_group_count": 4}, "not fewer than"),
    (
        {"llama.expert_count": 6, "llama.expert_used_count": 1, "llama.expert_group_count": 4},
        "the experts to divide into the groups",
    ),
    ({"llama.expert_group_count": 2}, "llama.expert_group_count is 2 but llama.expert_count is missing or 0"),
    ({"llama.attention.layer_norm_rms_epsilon": -1e-5}, "layer_norm_rms_epsilon is -1e-05"),
    ({"llama.attention.layer_norm_epsilon": float("nan")}, "layer_norm_epsilon is NaN"),
    ({"llama.attention.group_norm_epsilon": -1}, "group_norm_epsilon is -1"),
    ({"llama.rope.scaling.type": "Linear"}, "llama.rope.scaling.type is 'Linear', not one of"),
]
HPARAMS_ACCEPTED = [
    {"llama.block_count": 512},
    {"llama.expert_count": 8, "llama.expert_used_count": 2},
    {
        "llama.expert_count": 8,
        "llama.expert_used_count": 2,
        "llama.expert_group_count": 4,
        "llama.expert_group_used_count": 2,
    },
    {"llama.attention.layer_norm_rms_epsilon": 0.0},
    {"llama.rope.scaling.type": "yarn"},
    {"llama.block_count": "twelve"},  # another type: llama.cpp refuses it with an error of its own
    {"general.architecture": "hunyuan-dense", "hunyuan-dense.expert_count": 1},  # its loader makes that none
]


@pytest.mark.parametrize(("metadata", "words"), HPARAMS_REFUSED, ids=[w for _, w in HPARAMS_REFUSED])
def test_hyperparameters_llama_cpp_asserts_on_are_named_with_their_value(
    metadata: dict[str, object], words: str
) -> None:
    problems = list(hparam_problems({"general.architecture": "llama", "llama.block_count": 2, **metadata}))
    assert len(problems) == 1 and words in problems[0], problems
    assert "llama.cpp would abort the process on it" in problems[0]


@pytest.mark.parametrize("metadata", HPARAMS_ACCEPTED)
def test_hyperparameters_llama_cpp_takes_are_accepted(metadata: dict[str, object]) -> None:
    assert list(hparam_problems({"general.architecture": "llama", "llama.block_count": 2, **metadata})) == []


def test_a_file_with_such_a_hyperparameter_is_refused_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    path = tiny_models.write_llama_model(tmp_path / "layers.gguf", metadata={"llama.block_count": 0})
    with pytest.raises(InvalidModel, match=r"layers.gguf: llama.block_count is 0: llama.cpp allows 1 to 512"):
        read_header(path)
    eps = tiny_models.write_llama_model(
        tmp_path / "eps.gguf", metadata={"llama.attention.layer_norm_rms_epsilon": -1.0}
    )
    with pytest.raises(InvalidModel, match=r"layer_norm_rms_epsilon is -1: .* at the first token"):
        read_header(eps)


def test_a_header_longer_than_one_read_is_read_alike(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big vocabulary's header spans several reads: values and strings that cross a read's end come whole."""
    whole = read_header(model)
    for read_ahead in (7, 64, 1000):
        monkeypatch.setattr(gguf, "_READ_AHEAD", read_ahead)
        header = read_header(model)
        assert header == whole, read_ahead
        assert header.array("tokenizer.ggml.tokens") == whole.array("tokenizer.ggml.tokens")


def test_a_long_array_is_not_kept_and_short_numeric_ones_are(tmp_path: Path) -> None:
    path = tiny_models.write_llama_model(
        tmp_path / "arrays.gguf", metadata={"llama.feed_forward_length": [128, 128], "test.long": list(range(5000))}
    )
    header = read_header(path)
    assert header.metadata["llama.feed_forward_length"] == [128, 128]  # per-layer: hparams.py reads them
    long = header.metadata["test.long"]
    assert isinstance(long, GGUFArray) and long.count == 5000
    assert header.array("test.long") == list(range(5000))
