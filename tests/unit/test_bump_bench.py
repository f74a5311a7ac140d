"""benchmarks/bump_bench.py's judgement: the marks, the verdict, the table and the interleaved medians, on
figures parsed from what the binding's `bench --model ... --json` printed on the real 0.3.35 stage (the
miniature upstream's libllama cannot load a model, so no fixture can produce them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers.support import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import bump_bench
from bump_bench import BenchError, Row, Side, mark, parse_bench, table, verdict

# `python -m llama_cpp_runtime bench --model q4_0.gguf --device CPU --json -p 64 -n 16 -r 1 --threads 2`
# (this checkout's binding, the generated 25.8 M-parameter Q4_0 llama) on the cpu stage of af761b09 (0.3.35)
OLD_JSON = """[
 {
  "device": "CPU",
  "test": "pp64",
  "tokens_per_second": 3746.3222383241014,
  "stddev": 0.0,
  "n_tokens": 64,
  "repetitions": 1,
  "n_threads": 2,
  "seconds": [
   0.017083421000279486
  ]
 },
 {
  "device": "CPU",
  "test": "tg16",
  "tokens_per_second": 1376.0224812388233,
  "stddev": 0.0,
  "n_tokens": 16,
  "repetitions": 1,
  "n_threads": 2,
  "seconds": [
   0.011627717001829296
  ]
 }
]
"""


def row(old: float, new: float, *, model: str = "q4_0", test: str = "tg128", threads: int = 2) -> Row:
    return Row(model, test, threads, old, new, new / old, new / old)


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(1.2, ""), (1.0, ""), (0.95, ""), (0.949, "warning"), (0.9, "warning"), (0.85, "warning"), (0.849, "critical")],
)
def test_a_row_is_marked_below_095_and_critical_below_085(ratio: float, expected: str) -> None:
    assert mark(ratio) == expected


def test_the_mark_is_judged_on_the_ratio_the_table_shows() -> None:
    """0.94951 shows as 0.950: no mark beside a figure that reads as the threshold itself."""
    shown = row(1000.0, 949.51)
    assert shown.ratio == 0.95 and mark(shown.ratio) == ""
    assert "| 0.950 |  |" in table([shown])[2]
    assert mark(row(1000.0, 949.4).ratio) == "warning"


def test_the_verdict_says_no_slowdown_and_names_the_lowest_row() -> None:
    rows = [row(1000.0, 1010.0), row(4000.0, 3900.0, test="pp512", threads=1)]
    said = verdict(rows)
    assert said.startswith("**Verdict: no slowdown**")
    assert "0.975×, q4_0 pp512 at 1 thread)" in said


def test_the_verdict_counts_warnings_and_names_the_worst() -> None:
    rows = [row(1000.0, 1000.0), row(1000.0, 930.0, model="f16"), row(1000.0, 900.0, test="pp512")]
    said = verdict(rows)
    assert said.startswith("**Verdict: slower (warning)**: 2 of 3 rows below 0.95×;")
    assert "lowest 0.900× (q4_0 pp512 at 2 threads)" in said


def test_one_critical_row_makes_the_verdict_critical() -> None:
    said = verdict([row(1000.0, 940.0), row(1000.0, 800.0, model="f16")])
    assert said.startswith("**Verdict: slower (critical)**: 2 of 2 rows below 0.95×, 1 below 0.85×;")


def test_no_rows_is_an_error_not_a_verdict() -> None:
    with pytest.raises(BenchError):
        verdict([])


def test_the_table_has_every_column_a_reviewer_reads() -> None:
    lines = table([row(1376.02, 1170.0, test="tg16"), row(3746.32, 3760.0, test="pp64")])
    assert lines[0] == "| model | test | threads | old tok/s | new tok/s | new/old | mark | rounds' new/old |"
    assert lines[2] == "| q4_0 | tg16 | 2 | 1376.0 | 1170.0 | 0.850 | warning | 0.850–0.850 |"
    assert lines[3] == "| q4_0 | pp64 | 2 | 3746.3 | 3760.0 | 1.004 |  | 1.004–1.004 |"


def test_bench_json_becomes_tokens_per_second_by_test() -> None:
    assert parse_bench(OLD_JSON) == {"pp64": 3746.3222383241014, "tg16": 1376.0224812388233}


@pytest.mark.parametrize(
    "text", ["", "not json", "{}", "[]", '[{"test": "pp64"}]', '[{"test": "pp64", "tokens_per_second": 0}]']
)
def test_an_answer_without_rows_is_one_line_of_error(text: str) -> None:
    with pytest.raises(BenchError) as raised:
        parse_bench(text)
    assert "\n" not in str(raised.value)


def test_rounds_alternate_which_side_goes_first_and_figures_are_medians(tmp_path: Path) -> None:
    """The new side is the old side's real figures times 0.9, except one round where the machine was busy
    for the new side alone: the median ignores that round, the spread column shows it."""
    old, new = Side("old", tmp_path / "old"), Side("new", tmp_path / "new")
    measured = parse_bench(OLD_JSON)
    calls: list[str] = []

    def measure(side: Side, model: Path, threads: int) -> dict[str, float]:
        calls.append(side.name)
        busy = side.name == "new" and len(calls) == 6  # the third round's new side
        factor = 1.0 if side.name == "old" else (0.5 if busy else 0.9)
        return {test: speed * factor for test, speed in measured.items()}

    rows = bump_bench.interleaved(old, new, {"q4_0": tmp_path / "q4_0.gguf"}, [2], 5, measure)
    assert calls == ["old", "new", "new", "old", "old", "new", "new", "old", "old", "new"]
    assert [(r.model, r.test, r.threads, r.ratio, mark(r.ratio)) for r in rows] == [
        ("q4_0", "pp64", 2, 0.9, "warning"),
        ("q4_0", "tg16", 2, 0.9, "warning"),
    ]
    assert rows[0].old == measured["pp64"] and rows[0].lowest == pytest.approx(0.5) and rows[0].highest == 0.9


def test_a_side_that_answers_different_tests_is_refused(tmp_path: Path) -> None:
    old, new = Side("old", tmp_path / "old"), Side("new", tmp_path / "new")

    def measure(side: Side, model: Path, threads: int) -> dict[str, float]:
        return {"pp64": 100.0} if side.name == "old" else {"pp32": 100.0}

    with pytest.raises(BenchError, match="measured"):
        bump_bench.interleaved(old, new, {"f16": tmp_path / "f16.gguf"}, [1], 1, measure)


def test_not_a_project_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bump_bench.main([str(tmp_path), str(tmp_path), "--no-build"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"bump_bench: error: the old side {tmp_path} is not a project (no vendoring.toml)\n"


def test_a_missing_stage_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vendoring.toml").write_text('[upstream]\ncommit = "' + "0" * 40 + '"\n')
    assert bump_bench.main([str(tmp_path), str(tmp_path), "--no-build"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("bump_bench: error: the old side has no cpu stage to run") and error.count("\n") == 1


def test_the_pin_is_the_stages_commit_with_the_ref_of_a_vendoring_toml_that_pins_it(tmp_path: Path) -> None:
    """0.3.36's stage said llama-cpp-python 0.3.35 (a bump leaves [downstream] for a person): the label takes
    the ref `bump` wrote, and only when vendoring.toml pins the commit the stage was built from."""
    commit = "f13a88d4245ecf0fdac47df836cb104555e9c054"
    side = Side("new", tmp_path)
    side.stage.mkdir(parents=True)
    record = {"upstream": {"commit": commit, "llama_cpp_python": "0.3.35"}}
    (side.stage / "stage.json").write_text(json.dumps(record))
    (tmp_path / "vendoring.toml").write_text(f'[upstream]\ncommit = "{commit}"\nref = "v0.3.36"\n')
    assert bump_bench.pin(side) == "f13a88d4 (v0.3.36)"
    (tmp_path / "vendoring.toml").write_text('[upstream]\ncommit = "' + "1" * 40 + '"\nref = "v0.3.37"\n')
    assert bump_bench.pin(side) == "f13a88d4"


def test_cpu_taken_by_other_processes_is_said() -> None:
    said = bump_bench.others((100.0, 1.0, 10.0), (250.0, 1.0, 150.0))
    assert said == " While it measured, other processes used 10.0 CPU-s beside its 140.0."
    assert "hypervisor took 2.5 s" in bump_bench.others((100.0, 1.0, 10.0), (250.0, 3.5, 150.0))
    assert bump_bench.others(None, (1.0, 0.0, 0.0)) == ""
