"""`run MODEL --prompt TEXT` and `bench --model MODEL`: the model runtime from the command line.

`run` works in this process. `bench --model` runs each device in a child process with a timeout, as the
matrix-multiply bench does, so a driver that crashes is that device's failure, not the bench's.
"""

from __future__ import annotations

import argparse
import codecs
import json
import sys
import time
from dataclasses import asdict

from .._child import run_child
from .._errors import LlamaRuntimeError
from .._llama.bench import bench
from .._llama.context import Context
from .._llama.gguf import read_header
from .._llama.tokenizer import utf8
from .._runtime import load
from .arguments import INT32_MAX, UINT32_MAX, CommandError, integer, positive


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
    _add_sizes(bench_parser)
    bench_parser.add_argument("--json", action="store_true", help="rows as JSON")


def _add_sizes(parser: argparse.ArgumentParser) -> None:
    """-p, -n, -r and --threads: bench --model's, passed on as they are to its child per device."""
    # A context holds both: each at most a C int, so that their sum fits its uint32_t size.
    counts = integer(0, INT32_MAX)
    parser.add_argument("-p", "--n-prompt", type=counts, default=512, help="prompt tokens (default 512; 0 skips)")
    parser.add_argument("-n", "--n-gen", type=counts, default=128, help="generated tokens (default 128; 0 skips)")
    parser.add_argument("-r", "--repetitions", type=positive(int), default=5, help="default 5")
    parser.add_argument(
        "--threads", type=positive(int, INT32_MAX), help="CPU threads (default: every CPU of this process)"
    )


def run(arguments: argparse.Namespace) -> int:
    utf8(arguments.prompt, "--prompt")  # before the load: a TokenizeError naming the byte (main() prints it)
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


def _rate(tokens: int, seconds: float) -> str:
    return f"{tokens / seconds:.1f} tokens/s" if tokens > 0 and seconds > 0 else "- tokens/s"


def check_bench_model(arguments: argparse.Namespace) -> None:
    """What bench --model can refuse before any child runs: a bad file fails once, here, not once per device."""
    if not (arguments.n_prompt or arguments.n_gen):  # each is 0 or more (argparse checked)
        raise CommandError("-p and -n are 0 or more, and one of them above 0", 2)
    read_header(arguments.model)  # ModelNotFound, InvalidModel


def bench_device(arguments: argparse.Namespace, device: str) -> tuple[list[dict[str, object]], str, float]:
    """One device's rows, measured in a child process; or why it failed ("" when it did not); its seconds."""
    sizes = ["-p", str(arguments.n_prompt), "-n", str(arguments.n_gen), "-r", str(arguments.repetitions)]
    threads = ["--threads", str(arguments.threads)] if arguments.threads else []
    child = run_child(["_bench_model", arguments.model, device, *sizes, *threads], None, arguments.timeout)
    if child.failure:
        return [], child.failure, child.seconds
    answer = child.json()
    if not isinstance(answer, list):
        return [], f"answered no JSON: {child.stdout.strip()[:120]!r}", child.seconds
    return answer, "", child.seconds


def print_rows(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows)


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
            assert isinstance(ctx, Context)  # no RPC server is added in this child: the model is in-process
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
    _add_sizes(child)


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
