"""The Runtime: libraries loaded once per process, their devices, models and compute, other bindings served."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

from ._errors import (
    AbiMismatch,
    DownstreamError,
    GpuUnavailable,
    LoadError,
    ModelLoadError,
    RpcError,
    SettingError,
    UnknownDevice,
    UnusedGpuWarning,
)
from ._loading.loader import Loaded, enumerate_devices, load_everything
from ._numbers import INT32_MAX, check_int
from ._platform import IS_MACOS, IS_WINDOWS
from ._report import Device, Report
from ._settings import REQUIRE, read_settings, required

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._ggml.compute import Backend
    from ._gpu.serving import Unserved
    from ._llama.model import Model, Progress
    from ._rpc.client import RemoteModel
    from ._rpc.protocol import ServerInfo, Version


class Runtime:
    """The loaded libraries. There is one per process: ggml keeps a process-wide registry."""

    def __init__(self, loaded: Loaded) -> None:
        self._loaded = loaded
        self._llama_lock = threading.Lock()
        self._llama_declared = False
        self._unserved: list[Unserved] | None = None  # the GPUs no device serves, with advice: made once
        self._rpc_servers: list[ServerInfo] = []  # add_rpc_server's, in order: their devices are RPC0, RPC1, ...
        self._rpc_lock = threading.Lock()
        self._rpc_version: Version | None = None  # the build's protocol, read when a server is first asked

    def devices(self) -> list[Device]:
        """Every device, each marked preferred or not: a GPU that two backends drive (CUDA and Vulkan) is
        preferred through the backend first in LLAMA_CPP_RUNTIME_BACKEND_ORDER (default cuda, hip, metal,
        vulkan), and load_model(devices=None) leaves the other out. The devices of the RPC servers added
        (add_rpc_server) follow, named RPC0, RPC1, ... in the order added, as ggml names them."""
        local = enumerate_devices(self._loaded.ggml, self._loaded.settings.backend_order)
        with self._rpc_lock:
            servers = list(self._rpc_servers)
        remote: list[Device] = []
        for server in servers:
            for found in server.devices:
                remote.append(
                    Device(
                        name=f"RPC{len(remote)}",
                        description=server.endpoint,
                        type="GPU",  # what ggml says of every RPC device
                        memory_free=found.memory_free,
                        memory_total=found.memory_total,
                        backend="RPC",
                    )
                )
        return local + remote

    def add_rpc_server(self, endpoint: str, *, timeout: float = 10.0) -> list[Device]:
        """Use the devices of a ggml RPC server (`python -m llama_cpp_runtime rpc-server` on that machine):
        its devices join devices() as RPC<n> and load_model may put layers on them. The server is asked here
        (protocol version, devices, memory; within `timeout` seconds) and refused with RpcError when it is
        not a ggml RPC server of this build's protocol (the RPC_PROTO_*_VERSION defines of the ggml-rpc.h
        installed with the libraries); adding one again changes nothing. A model with layers on RPC devices
        runs in a child process (RemoteModel), where ggml's RPC client may abort."""
        from ._rpc import ggml_side, protocol

        ggml_side.registration(self._loaded.ggml)  # RpcError: the module is not loaded
        host, port = protocol.parse_endpoint(endpoint)
        key = f"{host}:{port}"
        ours = self._rpc_protocol()
        with self._rpc_lock:
            if not any(server.endpoint == key for server in self._rpc_servers):
                if len(self._rpc_servers) >= protocol.MAX_SERVERS:
                    raise RpcError(f"{key}: ggml uses at most {protocol.MAX_SERVERS} RPC servers")
                self._rpc_servers.append(protocol.probe(key, ours, timeout))
        return [d for d in self.devices() if d.backend == "RPC" and d.description == key]

    def _rpc_protocol(self) -> Version:
        """The ggml RPC protocol this build speaks: RPC_PROTO_*_VERSION of the include/ggml-rpc.h installed with
        the libraries loaded (the package's, or the stage's), read the first time a server is asked and kept.
        RpcError naming the file when it is missing or says no version: a guess would refuse this release's
        servers, or let ggml's client abort on another's."""
        from ._rpc.protocol import read_version

        with self._rpc_lock:
            if self._rpc_version is None:
                self._rpc_version = read_version(self._loaded.layout.root)
            return self._rpc_version

    def register_rpc_server(self, endpoint: str) -> int:
        """In the process that runs a model on RPC devices: ggml's own ggml_backend_rpc_add_server (the devices
        it registers are RPC<n> in ggml's registry); the number of devices. Only for a server that answered
        add_rpc_server: ggml's client aborts the process on any other."""
        from ._rpc.ggml_side import add_server

        return add_server(self._loaded.ggml, endpoint)

    def device(self, wanted: str | Device) -> Device:
        """The device of that name (a Device is looked up by its name); UnknownDevice names the ones there are."""
        name = wanted.name if isinstance(wanted, Device) else wanted
        known = self.devices()
        found = next((d for d in known if d.name == name), None)
        if found is None:
            missing_cpu = self._loaded.report.no_cpu_backend if name == "CPU" else ""
            why = f" (no CPU backend: {missing_cpu})" if missing_cpu else ""
            raise UnknownDevice(f"no device {name!r}; devices: {', '.join(d.name for d in known) or 'none'}{why}")
        return found

    def report(self) -> Report:
        """Every module found: loaded, skipped (with the reason), not chosen or absent; the CPU variant chosen."""
        return self._loaded.report

    def library_path(self, name: str) -> Path:
        """Absolute path of a core library (ggml-base, ggml, llama, mtmd) as loaded."""
        try:
            return self._loaded.libraries[name.removeprefix("lib")]
        except KeyError:
            raise KeyError(f"{name!r} is not loaded; core libraries: {', '.join(self._loaded.libraries)}") from None

    def require_llama_abi(self) -> None:
        """Raise AbiMismatch unless libllama's structs could be laid out from the build's llama-abi.json when the
        libraries were loaded (the message names the first field the binding uses that is missing or of another
        size). Every libllama call that passes a struct checks this first."""
        if "llama" not in self._loaded.libraries:
            raise LoadError(f"libllama is not in {self._loaded.layout.lib}")
        if self._loaded.llama_abi_problem is not None:
            raise AbiMismatch(self._loaded.llama_abi_problem)

    def load_model(
        self,
        path: str | os.PathLike[str],
        *,
        devices: Sequence[str | Device] | str | None = None,
        n_gpu_layers: int | None = None,
        mmap: bool = True,
        mlock: bool = False,
        vocab_only: bool = False,
        progress: Progress | None = None,
        rpc: Sequence[str] | None = None,
        rpc_timeout: float = 300.0,
    ) -> Model | RemoteModel:
        """Load a GGUF model. devices None uses every device; a list (names from devices(), e.g. ["CPU"]
        or ["Vulkan0"]) restricts the offload to those; "gpu" is every GPU device and raises GpuUnavailable,
        naming why, when there is none (instead of running on the CPU). n_gpu_layers None is upstream's default (every
        layer on the GPU devices; a value outside a C int is a ValueError). mmap maps the file instead of
        reading it; mlock keeps it in RAM (a failure is an MlockWarning). progress(fraction) returning False
        cancels the load (LoadCancelled).
        rpc ["host:port", ...] adds those RPC servers first (add_rpc_server); when any device chosen is an RPC
        device (devices=None: every device, the RPC servers' too), the model runs in a child process and a
        RemoteModel is returned: the same methods, and RpcError when a server goes away (each answer awaited at
        most rpc_timeout seconds). progress is not available there.
        The file's header is checked first: files llama.cpp would abort on raise InvalidModel instead."""
        from ._llama.gguf import read_header
        from ._llama.model import Model

        if n_gpu_layers is not None:  # an int32_t field: ctypes would wrap a larger value silently
            check_int("n_gpu_layers", n_gpu_layers, -INT32_MAX - 1, INT32_MAX, ValueError)
        header = read_header(path)  # the input first: a bad file is named whatever the libraries are
        missing_cpu = self._loaded.report.no_cpu_backend
        if missing_cpu:  # llama.cpp needs one; its own words would only say no backend was loaded
            raise ModelLoadError(f"{header.path}: cannot be loaded without a CPU backend, and none is: {missing_cpu}")
        for endpoint in rpc or ():
            self.add_rpc_server(endpoint)
        chosen = self._offload_devices(devices)
        if any(d.backend == "RPC" and not d._handle for d in (self.devices() if chosen is None else chosen)):
            return self._load_remote(header.path, chosen, n_gpu_layers, mmap, mlock, vocab_only, progress, rpc_timeout)
        llama = self._llama()
        return Model(
            llama,
            self._loaded.ggml,
            self._loaded.bridge,
            header,
            devices=chosen,
            n_gpu_layers=n_gpu_layers,
            mmap=mmap,
            mlock=mlock,
            vocab_only=vocab_only,
            progress=progress,
        )

    def _load_remote(
        self,
        path: Path,
        chosen: list[Device] | None,
        n_gpu_layers: int | None,
        mmap: bool,
        mlock: bool,
        vocab_only: bool,
        progress: Progress | None,
        timeout: float,
    ) -> RemoteModel:
        """The model in a child process that adds every RPC server (in order, so that ggml names their devices
        as devices() does) and loads it there; each server asked again first (gone, or busy with a client)."""
        from ._child import check_timeout
        from ._rpc import protocol
        from ._rpc.client import RemoteModel

        check_timeout(timeout)
        if progress is not None:
            raise ValueError("load_model(progress=...) is not available for a model on RPC devices")
        ours = self._rpc_protocol()
        with self._rpc_lock:
            endpoints = [server.endpoint for server in self._rpc_servers]
        for endpoint in endpoints:
            protocol.probe(endpoint, ours)
        options = {
            "devices": None if chosen is None else [d.name for d in chosen],
            "n_gpu_layers": n_gpu_layers,
            "mmap": mmap,
            "mlock": mlock,
            "vocab_only": vocab_only,
        }
        return RemoteModel.load(self._loaded.layout.root, endpoints, path, options, timeout)

    def _offload_devices(self, devices: Sequence[str | Device] | str | None) -> list[Device] | None:
        """What load_model's `devices` means: None llama.cpp's choice, "gpu" every preferred GPU device (at least
        one), a list those devices. Any other single string would be taken letter by letter: refused."""
        if devices is None:
            return self.default_devices()
        if isinstance(devices, str):
            if devices.lower() != "gpu":
                raise UnknownDevice(f'devices={devices!r}: give "gpu" or a list of device names, e.g. [{devices!r}]')
            gpus = [d for d in self.devices() if d.gpu and d.preferred]
            if not gpus:
                raise GpuUnavailable(f'load_model(devices="gpu"): {self._missing("gpu")}')
            return gpus
        return [self.device(d) for d in devices]

    def _missing(self, wanted: str) -> str:
        """Why `wanted` (cuda, hip, vulkan, metal, gpu) serves no device here, and the fix ("" when it does).
        A loaded device of a wanted backend answers first; the advice is imported only when none is."""
        from ._gpu.sysfs import requirement_met

        if requirement_met(wanted, self._loaded.report.devices):
            return ""
        from ._gpu.serving import missing_requirement

        return missing_requirement(wanted, self._loaded.report, self._loaded.machine, self._unserved_gpus())

    def _unserved_gpus(self) -> list[Unserved]:
        """Every GPU here that no loaded device serves, with the advice: sysfs's raw listing decides whether
        there is one, and the advice's modules are imported only then."""
        if self._unserved is None:
            unserved = [] if IS_MACOS or IS_WINDOWS else self._loaded.machine.unserved(self._loaded.report.devices)
            if unserved:
                from ._gpu.serving import unserved as advised

                self._unserved = advised(self._loaded.report, self._loaded.machine)
            else:
                self._unserved = []
        return self._unserved

    def _require(self, asked: Iterable[str], source: str) -> None:
        """GpuUnavailable naming every requirement that no device meets, with why and the fix."""
        problems = [f"{wanted}: {why}" for wanted in asked if (why := self._missing(wanted))]
        if problems:
            raise GpuUnavailable(f"{source} refuses to run on the CPU instead: {'; '.join(problems)}")

    def unused_gpu_warning(self) -> str:
        """The UnusedGpuWarning's text: each GPU here that no loaded device serves, with the fix ("" when every
        one is served, or there is none). Linux reads sysfs's PCI listing (the common case ends there); macOS
        and Windows look at what their drivers' files say. LLAMA_CPP_RUNTIME_QUIET_GPU does not change it."""
        report = self._loaded.report
        if IS_MACOS or IS_WINDOWS:
            from ._gpu.serving import unused_mac_gpu, unused_windows_gpu

            return unused_mac_gpu(report) if IS_MACOS else unused_windows_gpu(report)
        found = self._unserved_gpus()
        if not found:
            return ""
        from ._gpu.serving import warning_text

        return warning_text(found)

    def _warn_unused_gpus(self) -> None:
        """One UnusedGpuWarning naming each GPU here that no loaded device serves, unless silenced."""
        if self._loaded.settings.quiet_gpu:
            return
        text = self.unused_gpu_warning()
        if text:
            warnings.warn(text, UnusedGpuWarning, stacklevel=3)  # the caller of load()

    def default_devices(self) -> list[Device] | None:
        """What load_model(devices=None) offloads to: None (llama.cpp's choice: every device) unless a GPU
        is driven by two backends, then every preferred device."""
        devices = self.devices()
        return None if all(d.preferred for d in devices) else [d for d in devices if d.preferred]

    def _llama(self) -> ctypes.CDLL:
        """libllama with the model runtime's signatures, once its struct layout is proven to match."""
        self.require_llama_abi()
        llama = self._loaded.llama
        assert llama is not None  # require_llama_abi raised otherwise
        structs = self._loaded.llama_structs
        assert structs is not None  # laid out, or require_llama_abi raised
        with self._llama_lock:
            if not self._llama_declared:
                from ._llama import api as _llama_api

                try:
                    _llama_api.declare(llama, structs)
                except AttributeError as missing:
                    raise LoadError(
                        f"{self._loaded.libraries['llama']} lacks a function the model runtime calls: {missing}"
                    ) from None
                llama.llama_backend_init()
                self._llama_declared = True
        return llama

    def open(self, device: Device | str, *, n_threads: int | None = None) -> Backend:
        """A backend on the device, for compute: `with rt.open("CPU") as backend: backend.mul_mat(...)`.
        n_threads (CPU backends) defaults to every CPU this process may run on, as a model context does."""
        from ._ggml.compute import Backend

        return Backend(self._loaded.ggml, self.device(device), n_threads=n_threads)

    def environment(self) -> dict[str, str]:
        """The variables that make another binding in another process (llama-cpp-python) load these
        libraries and this machine's best CPU variant: LLAMA_CPP_LIB_PATH, MTMD_CPP_LIB, GGML_BACKEND_PATH.
        In this process, use_for() does more: every plugin too, and the struct layouts checked."""
        from ._downstream import environment

        chosen = next((m.path for m in self.report().modules if m.backend == "cpu" and m.status == "loaded"), None)
        return environment(self._loaded.libraries, Path(chosen) if chosen else None, self._loaded.settings.cache_dir)

    @property
    def upstream(self) -> Mapping[str, str]:
        """The upstream commit and patch-series hash the libraries were built from, when recorded."""
        return dict(self._loaded.report.upstream)


_lock = threading.Lock()
_loaded: list[Runtime] = []  # at most one: ggml's registry is process-wide
_served: dict[str, ModuleType] = {}


def use_for(package: str) -> ModuleType:
    """Make another binding use these libraries, this machine's best CPU variant and every installed GPU
    plugin: `llama_cpp_runtime.use_for("llama_cpp")` before anything imports llama_cpp
    (llama-cpp-python installed with CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF"). Returns the
    imported package, once its ctypes struct layouts were proven to match this libllama; raises
    DownstreamError naming both versions if they do not, or if the package was imported first."""
    from . import _downstream

    with _lock:
        if package in _served:
            return _served[package]
        if package not in _downstream.SUPPORTED:
            raise DownstreamError(f"use_for serves {', '.join(_downstream.SUPPORTED)}, not {package!r}")
        if package in sys.modules:
            raise DownstreamError(
                f"{package} was imported before use_for({package!r}) and has loaded its own libllama: "
                f"call llama_cpp_runtime.use_for({package!r}) before the first import of {package}"
            )
    runtime = load()
    runtime.require_llama_abi()
    variables = runtime.environment()
    os.environ[_downstream.LIB_PATH_VARIABLE] = variables[_downstream.LIB_PATH_VARIABLE]
    os.environ[_downstream.MTMD_VARIABLE] = variables[_downstream.MTMD_VARIABLE]
    record = runtime._loaded.llama_abi_record or {}  # present: require_llama_abi() passed
    module = _downstream.import_checked(package, record, runtime.upstream.get("llama_cpp_python"))
    with _lock:
        _served[package] = module
    return module


def load(library_dir: str | os.PathLike[str] | None = None, *, require: str | Iterable[str] | None = None) -> Runtime:
    """Load everything once; later calls return the same Runtime. `library_dir` (or the
    LLAMA_CPP_RUNTIME_LIBRARY_DIR variable) points at a directory with lib/ and modules/ instead of
    the package's own, e.g. a build stage.

    `require` ("cuda", "hip", "vulkan", "metal" or "gpu" for any; several as a list or comma-separated), and
    LLAMA_CPP_RUNTIME_REQUIRE, make it fail closed: GpuUnavailable, naming each module that could have served
    and why it did not, instead of a Runtime that computes on the CPU. Without either, a GPU here that no
    plugin serves is an UnusedGpuWarning (once per process; LLAMA_CPP_RUNTIME_QUIET_GPU=1 silences it)."""
    wanted = Path(library_dir).resolve() if library_dir is not None else None
    text = require if isinstance(require, str) or require is None else ",".join(require)
    try:
        asked = required(text, "require") if text else ()  # a misspelt name fails before anything loads
    except SettingError as error:
        raise ValueError(str(error)) from None
    with _lock:
        created = not _loaded  # the UnusedGpuWarning is given once per process: by the call that loads
        if created:
            _loaded.append(Runtime(load_everything(wanted, read_settings(os.environ))))
        runtime = _loaded[0]
        if wanted is not None and wanted != runtime._loaded.layout.root:
            raise LoadError(f"already loaded from {runtime._loaded.layout.root}; one runtime per process")
    runtime._require(runtime._loaded.settings.require, f"{REQUIRE}={','.join(runtime._loaded.settings.require)}")
    runtime._require(asked, f"load(require={text!r})")
    if created:
        runtime._warn_unused_gpus()
    return runtime
