"""The binding's guards that need no library (issue #30): numbers checked against their C type, thread counts
capped and warned about, the reason a crashed child gives, text that is not UTF-8, handles in a child of
fork(), a model file that changed, the variant cache's own check, the install compared with its stage.json,
and the report's reasons for a missing CPU backend and a duplicate module."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import pytest
from helpers.forking import in_child
from llama_cpp_runtime import (
    ClosedError,
    ContextError,
    ForkError,
    SettingError,
    ThreadsWarning,
    TokenizeError,
    _platform,
)
from llama_cpp_runtime._child import last_words
from llama_cpp_runtime._cli.arguments import INT32_MAX, MAX_TIMEOUT, UINT32_MAX, integer, positive
from llama_cpp_runtime._ggml.interrupts import interrupts_held
from llama_cpp_runtime._handle import Handle
from llama_cpp_runtime._llama.model import _change, _stat
from llama_cpp_runtime._llama.tokenizer import not_utf8, utf8
from llama_cpp_runtime._loading import variant_cache
from llama_cpp_runtime._loading.cpu_variants import Selection, _duplicate, no_cpu_backend
from llama_cpp_runtime._loading.discovery import CORE_SOURCE, Layout, ModuleFile
from llama_cpp_runtime._loading.installed import compare_with_record, unrecorded
from llama_cpp_runtime._loading.stage_record import StageRecord, read_stage_record
from llama_cpp_runtime._report import ModuleReport, Report
from llama_cpp_runtime._settings import read_settings

# What a child's stderr held when llama.cpp asserted with gdb installed: the assertion, then gdb's backtrace.
ASSERTION = (
    "../../vendor/llama.cpp/src/llama-model.cpp:1328: "
    "GGML_ASSERT(hparams.n_layer_all > 0 && hparams.n_layer_all <= LLAMA_MAX_LAYERS) failed"
)
ABORT_WITH_GDB = f"""\
{ASSERTION}
warning: File "/usr/bin/python3.11-gdb.py" auto-loading has been declined by your `auto-load safe-path'
[Thread debugging using libthread_db enabled]
#0  0x00007fbe3a8f1bd3 in __GI___wait4 (pid=20204, stat_loc=0x0, options=0, usage=0x0) at wait4.c:30
30	../sysdeps/unix/sysv/linux/wait4.c: No such file or directory.
#1  0x00007fbe3985062b in ggml_print_backtrace () from libggml-base.so.0
[Inferior 1 (process 20203) detached]
360	../csu/libc-start.c: No such file or directory.
"""


def test_a_crashed_childs_reason_is_its_assertion_not_the_backtrace_after_it() -> None:
    assert last_words(ABORT_WITH_GDB) == ASSERTION
    thrown = "terminate called after throwing an instance of 'std::runtime_error'\n  what():  bad file\nAborted\n"
    assert last_words(thrown) == "what():  bad file"
    assert last_words("ggml/src/ggml.c:42: fatal error\n#0 0x1 in f ()\n") == "ggml/src/ggml.c:42: fatal error"
    assert last_words("one\nerror: the last words\n\n") == "error: the last words"
    assert last_words("") == ""


@pytest.mark.parametrize(
    ("value", "low", "high"), [(2**32 + 5, 0, UINT32_MAX), (-1, 0, UINT32_MAX), (True, 0, 1), (1.5, 0, 9), ("8", 0, 9)]
)
def test_a_number_outside_its_c_type_is_refused_not_wrapped(value: object, low: int, high: int) -> None:
    with pytest.raises(ContextError, match=rf"n_ctx={value!r}: expected an integer from {low} to {high}"):
        _platform.check_int("n_ctx", value, low, high, ContextError)


def test_threads_are_capped_at_ggmls_limit_and_more_than_the_cpus_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_platform, "usable_cpus", lambda: 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _platform.thread_count(None, ContextError) == 2
        assert _platform.thread_count(2, ContextError) == 2
    with pytest.warns(ThreadsWarning, match=r"n_threads=300 is more than the 2 CPU\(s\) this process may use"):
        assert _platform.thread_count(300, ContextError) == 300
    with pytest.warns(ThreadsWarning, match="ggml runs at most 512, so 512 are used"):
        assert _platform.thread_count(10**6, ContextError) == _platform.MAX_THREADS == 512
    for wrong in (0, -1, 2**31, 2**32 + 5):
        with pytest.raises(ContextError, match=rf"n_threads={wrong}: expected an integer from 1 to 2147483647"):
            _platform.thread_count(wrong, ContextError)
    monkeypatch.setattr(_platform, "usable_cpus", lambda: 1024)
    assert _platform.default_threads() == 512  # every CPU, but never past what ggml runs


def test_the_command_lines_numbers_are_checked_against_what_they_fill() -> None:
    threads = positive(int, INT32_MAX)
    assert threads("8") == 8
    for text, words in (
        ("2147483648", "2147483648 is more than 2147483647, the most it can be"),
        ("0", "0 is not above zero"),
        ("many", "'many' is not a number"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            threads(text)
    timeout = positive(float, MAX_TIMEOUT)
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not a finite number"):
            timeout(text)
    with pytest.raises(argparse.ArgumentTypeError, match="1e300 is more than 604800"):
        timeout("1e300")
    layers = integer(-(2**31), INT32_MAX)
    assert layers("-1") == -1
    with pytest.raises(argparse.ArgumentTypeError, match="2147483648 is not from -2147483648 to 2147483647"):
        layers("2147483648")


def test_text_that_is_not_utf8_is_named_where_it_is() -> None:
    from_argv = os.fsdecode(b"ab\xffc")  # what Python makes of such bytes in argv
    assert not_utf8(from_argv) == "byte 0xff at offset 2"
    assert not_utf8("héllo ✓") == ""
    assert not_utf8("é" + os.fsdecode(b"\x80")) == "byte 0x80 at offset 2"  # the offset counts bytes
    with pytest.raises(TokenizeError, match=r"'\\udcff' at position 2 is a lone surrogate"):
        utf8(from_argv)
    with pytest.raises(TokenizeError, match="--prompt is not valid UTF-8: byte 0xff at offset 2"):
        utf8(from_argv, "--prompt")
    assert utf8("héllo") == "héllo".encode()


class _Freed(Handle):
    """A handle whose free only records that it ran."""

    def __init__(self, usable_after_fork: bool) -> None:
        super().__init__(threading.Lock())
        self._usable_after_fork = usable_after_fork
        self._handle = 1
        self.freed = False

    def _free(self, handle: int) -> None:
        self.freed = True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_handle_is_its_processes_a_child_of_fork_gets_forkerror_and_frees_nothing() -> None:
    context, model = _Freed(usable_after_fork=False), _Freed(usable_after_fork=True)
    context._lock.acquire()  # held by a thread of the parent when it forked: the child must not wait for it

    def child() -> bool:
        try:
            context._live()
            return False
        except ForkError as error:
            if "a child made by fork()" not in str(error):
                return False
        context.close()  # neither waits for the held lock nor frees the parent's handle
        model._live()  # a model may be used in the child
        model.close()  # and is not freed there either
        return not context.freed and not model.freed

    assert in_child(child) == 0
    context._lock.release()
    assert context._live() == 1 and not context.freed  # the parent's handle is untouched
    context.close()
    assert context.freed
    with pytest.raises(ClosedError):
        context._live()


def test_a_model_file_changed_on_disk_is_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"x" * 100)
    loaded = _stat(path)
    assert _change(_stat(path), loaded) == ""
    os.truncate(path, 50)
    assert _change(_stat(path), loaded) == "50 bytes now, 100 when it was loaded"
    path.write_bytes(b"y" * 100)
    os.utime(path, ns=(0, 10**9))
    assert _change(_stat(path), loaded) == "modified in place"
    (tmp_path / "new").write_bytes(b"x" * 100)
    os.replace(tmp_path / "new", path)
    assert _change(_stat(path), loaded) == "another file is at its path now"
    path.unlink()
    assert _change(_stat(path), loaded) == "it is gone"


def _modules(tmp_path: Path, *names: str) -> list[ModuleFile]:
    (tmp_path / "modules").mkdir(exist_ok=True)
    made = []
    for name in names:
        path = tmp_path / "modules" / f"lib{name}.so"
        path.write_bytes(name.encode())
        made.append(ModuleFile(name, path, CORE_SOURCE))
    return made


def test_a_remembered_score_is_believed_only_from_an_untouched_record_of_these_inputs(tmp_path: Path) -> None:
    modules = _modules(tmp_path, "ggml-cpu-x64", "ggml-cpu-haswell")
    entry = variant_cache.entry_for(tmp_path / "cache", modules)
    assert entry is not None
    variant_cache.remember(entry, {"ggml-cpu-x64": 1, "ggml-cpu-haswell": 127})
    assert variant_cache.recall(entry, modules) == {"ggml-cpu-x64": 1, "ggml-cpu-haswell": 127}
    text = entry.path.read_text()
    entry.path.write_text(text.replace('"ggml-cpu-haswell": 127', '"ggml-cpu-haswell": 0'))  # valid, but wrong
    assert variant_cache.recall(entry, modules) is None
    entry.path.write_text(text)
    other = variant_cache.Entry(entry.path, entry.inputs + "\nanother module")  # a record of other inputs
    assert variant_cache.recall(other, modules) is None


def test_a_relative_cache_folder_is_refused_and_a_relative_xdg_cache_home_ignored() -> None:
    with pytest.raises(SettingError, match="LLAMA_CPP_RUNTIME_CACHE_DIR=cache: not an absolute path"):
        read_settings({"LLAMA_CPP_RUNTIME_CACHE_DIR": "cache"})
    assert read_settings({"LLAMA_CPP_RUNTIME_CACHE_DIR": "/abs/cache"}).cache_dir == Path("/abs/cache")
    if os.name == "posix" and not _platform.IS_MACOS:
        default = read_settings({"XDG_CACHE_HOME": "relative"}).cache_dir
        assert default == Path.home() / ".cache" / "llama-cpp-runtime"


def test_the_packages_modules_are_compared_with_what_its_stage_json_lists(tmp_path: Path) -> None:
    present = _modules(tmp_path, "ggml-cpu-x64", "ggml-cpu-mine")
    (tmp_path / "stage.json").write_text(
        '{"files": [{"path": "lib/libggml.so"}, {"path": "modules/libggml-cpu-x64.so"},'
        ' {"path": "modules/libggml-cpu-haswell.so"}, {"path": "modules/libggml-vulkan.so"}]}'
    )
    record = read_stage_record(tmp_path)
    assert record.found and record.module_files() == {
        "ggml-cpu-x64": "libggml-cpu-x64.so",
        "ggml-cpu-haswell": "libggml-cpu-haswell.so",
        "ggml-vulkan": "libggml-vulkan.so",
    }
    reports = [ModuleReport(m.name, "cpu", "loaded", "best score", str(m.path), CORE_SOURCE) for m in present]
    layout = Layout(tmp_path, tmp_path / "lib", tmp_path / "modules")
    compared = {r.name: r for r in compare_with_record(reports, present, record, layout)}
    assert compared["ggml-cpu-x64"].reason == "best score"
    assert compared["ggml-cpu-mine"].reason.startswith("best score; not shipped: ")
    for name, backend in (("ggml-cpu-haswell", "cpu"), ("ggml-vulkan", "vulkan")):
        missing = compared[name]
        assert (missing.status, missing.backend, missing.unusable) == ("absent", backend, True)
        assert "missing: the package shipped it (stage.json lists modules/" in missing.reason
    assert compare_with_record(reports, present, StageRecord(), layout) == reports  # no list: nothing to compare


def test_a_plugin_package_without_its_stage_json_is_unverified() -> None:
    plugin = ModuleFile("ggml-fake", Path("/site/fake/modules/libggml-fake.so"), "llama-cpp-runtime-fake")
    core = {"commit": "a" * 40, "patch_series_sha256": "b" * 64}
    assert "unverified: no stage.json beside /site/fake/modules" in unrecorded(plugin, StageRecord(), core)
    assert unrecorded(plugin, StageRecord(found=True), core) == ""
    assert unrecorded(plugin, StageRecord(), {}) == ""  # a core that recorded nothing cannot compare
    named = ModuleFile("ggml-fake", plugin.path, "LLAMA_CPP_RUNTIME_PLUGIN_DIRS")
    assert unrecorded(named, StageRecord(), core) == ""  # loaded, and its report says unverified


def test_a_second_copy_of_a_module_is_called_a_duplicate(tmp_path: Path) -> None:
    [package] = _modules(tmp_path, "ggml-cpu-x64")
    again = ModuleFile(package.name, package.path, "LLAMA_CPP_RUNTIME_PLUGIN_DIRS")
    assert _duplicate(again, package, package) == (
        "a duplicate: the same file as ggml-cpu-x64 from llama-cpp-runtime, which is loaded"
    )
    copy = tmp_path / "elsewhere.so"
    copy.write_bytes(package.path.read_bytes())
    other = ModuleFile(package.name, copy, "LLAMA_CPP_RUNTIME_PLUGIN_DIRS")
    assert _duplicate(other, package, None) == (
        f"a duplicate: another copy of ggml-cpu-x64 from llama-cpp-runtime ({package.path})"
    )


def test_no_cpu_backend_names_the_variable_that_removed_it() -> None:
    def row(reason: str, status: str = "skipped") -> ModuleReport:
        return ModuleReport("ggml-cpu-x64", "cpu", status, reason, "/m/libggml-cpu-x64.so")  # type: ignore[arg-type]

    only_vulkan = read_settings({"LLAMA_CPP_RUNTIME_BACKENDS": "vulkan", "LLAMA_CPP_RUNTIME_CACHE_DIR": "off"})
    assert no_cpu_backend([row("not in ...")], only_vulkan) == "LLAMA_CPP_RUNTIME_BACKENDS=vulkan leaves out cpu"
    excluded = read_settings({"LLAMA_CPP_RUNTIME_CPU_EXCLUDE": "x64", "LLAMA_CPP_RUNTIME_CACHE_DIR": "off"})
    reason = no_cpu_backend([row("excluded by LLAMA_CPP_RUNTIME_CPU_EXCLUDE")], excluded)
    assert reason == "LLAMA_CPP_RUNTIME_CPU_EXCLUDE=x64 excludes every variant this CPU runs"
    plain = read_settings({"LLAMA_CPP_RUNTIME_CACHE_DIR": "off"})
    assert no_cpu_backend([row("best score", "loaded")], plain) == ""
    assert "reinstall" in no_cpu_backend([], plain)
    assert Selection(only_vulkan).refusal(ModuleFile("ggml-cpu-x64", Path("/m"), CORE_SOURCE)).startswith("not in")
    report = Report("/lib", (), None, None, (), no_cpu_backend="LLAMA_CPP_RUNTIME_BACKENDS=vulkan leaves out cpu")
    assert "CPU variant: none: LLAMA_CPP_RUNTIME_BACKENDS=vulkan leaves out cpu" in report.lines()


def test_ctrl_c_during_a_c_call_is_held_and_raised_when_it_returns() -> None:
    """While C computes, the only Python that runs is a callback from C, where KeyboardInterrupt cannot unwind
    (ctypes prints a traceback and drops it): it is recorded there, and raised after the call."""
    reached = []
    with pytest.raises(KeyboardInterrupt), interrupts_held() as held:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, handled at the next bytecode: "in the callback"
        time.sleep(0.01)
        reached.append(held.pending)
    assert reached == [True]  # the body went on to the end of the "C call"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def ours(signum: int, frame: object) -> None:
        reached.append("the application's")

    previous = signal.signal(signal.SIGINT, ours)
    try:
        with interrupts_held():  # an application's own handler is left to it
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert reached[-1] == "the application's"
