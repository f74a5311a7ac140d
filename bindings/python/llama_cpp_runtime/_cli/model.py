"""`run MODEL --prompt TEXT` and `bench --model MODEL`: the model runtime from the command line.

`run` works in this process. `bench --model` runs each device in a child process with a timeout, as the
matrix-multiply bench does, so a driver that crashes is that device's failure, not the bench's.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

from .._child import run_child
from .._errors import LlamaRuntimeError
from .._llama.bench import bench
from .._runtime import load
from .arguments import INT32_MAX, UINT32_MAX, integer, positive


def add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="generate text from a GGUF model (greedy)")
    run.add_argument("model")
    run.add_argument("--prompt", required=True)
    run.add_argument("-n", "--n-predict", type=positive(int), default=64, help="tokens to generate (default 64)")
    run.add_argument(
        "--threads", type=positive(int, INT32_MAX), help="CPU threads (default: every CPU of this process)"
    )
    run.add_argument(
        "--ctx-size", type=positive(int, UINT32_MAX), help="context length (default: prompt + n, at least 512)"
    )
    _add_placement(run)


def _add_placement(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        action="append",
        default=None,
        help="offload only to these devices (repeatable; CPU means no offload)",
    )
    parser.add_argument(
        "--n-gpu-layers",
        type=integer(-INT32_MAX - 1, INT32_MAX),
        default=None,
        help="layers to offload (default: upstream's, all)",
    )


def add_bench_options(bench_parser: argparse.ArgumentParser) -> None:
    bench_parser.add_argument("--model", help="measure a GGUF model's pp/tg tokens/s instead of a multiply")
    # A context holds both: each at most a C int, so that their sum fits its uint32_t size.
    counts = integer(0, INT32_MAX)
    bench_parser.add_argument("-p", "--n-prompt", type=counts, default=512, help="prompt tokens (default 512; 0 skips)")
    bench_parser.add_argument("-n", "--n-gen", type=counts, default=128, help="generated tokens (default 128; 0 skips)")
    bench_parser.add_argument("-r", "--repetitions", type=positive(int), default=5, help="default 5")
    bench_parser.add_argument(
        "--threads", type=positive(int, INT32_MAX), help="CPU threads (default: every CPU of this process)"
    )
    bench_parser.add_argument("--json", action="store_true", help="rows as JSON")


def run(arguments: argparse.Namespace) -> int:
    problem = _not_utf8(arguments.prompt)
    if problem:
        print(f"error: --prompt is not valid UTF-8: {problem}", file=sys.stderr)
        return 2
    runtime = load()
    with runtime.load_model(arguments.model, devices=arguments.device, n_gpu_layers=arguments.n_gpu_layers) as model:
        ids = model.tokenize(arguments.prompt)
        n_ctx = arguments.ctx_size or max(512, len(ids) + arguments.n_predict)
        with model.context(n_ctx=n_ctx, n_threads=arguments.threads) as ctx:
            ctx.decode(ids[:1])  # warm-up, as llama-cli does: the first decode allocates and starts threads
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            start = time.perf_counter()
            first: float | None = None
            generated = 0
            for token in ctx.stream(ids, arguments.n_predict):
                first = first or time.perf_counter()
                generated += 1
                sys.stdout.write(decoder.decode(model.token_to_piece(token)))
                sys.stdout.flush()
            end = time.perf_counter()
            sys.stdout.write(decoder.decode(b"", final=True) + "\n")
    prompt_seconds = (first or end) - start
    print(
        f"prompt: {len(ids)} tokens, {_rate(len(ids), prompt_seconds)}; "
        f"generation: {generated} tokens, {_rate(generated - 1, end - (first or end))}",
        file=sys.stderr,
    )
    return 0


def _not_utf8(text: str) -> str:
    """Where an argument holds bytes that are not UTF-8 ("" when it is valid): Python hands such bytes of
    argv over as lone surrogates, which have no UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(text)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return f"byte 0x{raw[error.start]:02x} at offset {error.start}"
        return "it holds a lone surrogate"
    return ""


def _rate(tokens: int, seconds: float) -> str:
    return f"{tokens / seconds:.1f} tokens/s" if tokens > 0 and seconds > 0 else "- tokens/s"


def bench_model(arguments: argparse.Namespace, devices: Sequence[str], timeout: float) -> int:
    if not os.path.isfile(arguments.model):
        print(f"error: {arguments.model}: no such file", file=sys.stderr)
        return 2
    if arguments.n_prompt < 0 or arguments.n_gen < 0 or not (arguments.n_prompt or arguments.n_gen):
        print("error: -p and -n are 0 or more, and one of them above 0", file=sys.stderr)
        return 2
    rows: list[dict[str, object]] = []
    failed = []
    for device in devices:
        print(f"  … bench {device}", file=sys.stderr, flush=True)
        sizes = ["-p", str(arguments.n_prompt), "-n", str(arguments.n_gen), "-r", str(arguments.repetitions)]
        threads = ["--threads", str(arguments.threads)] if arguments.threads else []
        child = run_child(["_bench_model", arguments.model, device, *sizes, *threads], None, timeout)
        if child.failure:
            failed.append(f"{device}: {child.failure}")
            continue
        rows += json.loads(child.stdout)
    if arguments.json:
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows)
    for failure in failed:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failed or not rows else 0


def _print_table(rows: list[dict[str, object]]) -> None:
    print(f"{'device':<12} {'test':>8} {'threads':>7} {'t/s':>20}")
    for row in rows:
        speed = f"{row['tokens_per_second']:.2f} ± {row['stddev']:.2f}"
        print(f"{row['device']!s:<12} {row['test']!s:>8} {row['n_threads']!s:>7} {speed:>20}")


def bench_model_child(arguments: argparse.Namespace) -> int:
    runtime = load()
    on_cpu = arguments.device == "CPU"
    with runtime.load_model(arguments.model, devices=[arguments.device], n_gpu_layers=0 if on_cpu else -1) as model:
        n_ctx = max(arguments.n_prompt + arguments.n_gen, 16)
        with model.context(n_ctx=n_ctx, n_threads=arguments.threads) as ctx:
            rows = bench(
                ctx,
                arguments.device,
                n_prompt=arguments.n_prompt,
                n_gen=arguments.n_gen,
                repetitions=arguments.repetitions,
            )
    print(json.dumps([asdict(row) for row in rows]))
    return 0


def add_bench_child(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    child = commands.add_parser("_bench_model")
    child.add_argument("model")
    child.add_argument("device")
    child.add_argument("-p", "--n-prompt", type=int, default=512)
    child.add_argument("-n", "--n-gen", type=int, default=128)
    child.add_argument("-r", "--repetitions", type=int, default=5)
    child.add_argument("--threads", type=int)


def inspect_in_child(path: str) -> int:
    """inspect_model()'s child: one JSON object on stdout, an error or the model's description."""
    try:
        with load().load_model(path) as model, model.context(n_ctx=32, n_threads=1) as ctx:
            ctx.decode(model.tokenize("a", add_special=True)[:1] or [0])
            answer: dict[str, object] = {
                "architecture": model.metadata.get("general.architecture", ""),
                "description": model.description,
                "n_params": model.n_params,
                "size": model.size,
                "n_vocab": model.n_vocab,
                "n_embd": model.n_embd,
                "n_ctx_train": model.n_ctx_train,
                "metadata": model.metadata,
            }
    except LlamaRuntimeError as error:
        answer = {"error": type(error).__name__, "message": str(error)}
    print(json.dumps(answer))
    return 0
