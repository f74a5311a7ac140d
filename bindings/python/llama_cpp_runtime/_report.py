"""What load() found: every module with its status and reason, the chosen CPU variant, the devices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Status = Literal["loaded", "skipped", "not chosen", "absent"]
GPU_TYPES = frozenset({"GPU", "IGPU"})  # ggml's device types of a GPU (not CPU, ACCEL or META)
# Vulkan implementations that run on the CPU: ggml-vulkan offers them as an (I)GPU when GGML_VK_VISIBLE_DEVICES
# lists them, but nothing is offloaded to a GPU there.
_SOFTWARE_RENDERERS = ("llvmpipe", "lavapipe", "swiftshader")

# ggml's registration names, as the backends are named elsewhere (the HIP build of ggml-cuda registers "ROCm").
_BACKEND_OF_REGISTRATION = {
    "cuda": "cuda",
    "rocm": "hip",
    "hip": "hip",
    "metal": "metal",
    "mtl": "metal",
    "vulkan": "vulkan",
}


def backend_of(registration: str) -> str:
    """The backend (cuda, hip, metal, vulkan) of a module's backend or a registration's name; "" when unknown."""
    return _BACKEND_OF_REGISTRATION.get(registration.lower(), "")


@dataclass(frozen=True)
class ModuleReport:
    name: str  # ggml-cpu-haswell, ggml-vulkan
    backend: str  # cpu, vulkan, cuda, ...
    status: Status
    reason: str = ""
    path: str | None = None
    source: str = ""  # the distribution that provided it
    score: int | None = None  # CPU variants: what ggml_backend_score() said on this machine
    unusable: bool = False  # the file itself is broken (truncated, not loadable, refused by ggml), not this machine


@dataclass(frozen=True)
class Device:
    name: str  # CPU, Vulkan0, CUDA0
    description: str
    type: str  # CPU, GPU, IGPU, ACCEL
    memory_free: int
    memory_total: int
    backend: str  # the registration's name: CPU, Vulkan, CUDA
    device_id: str = ""  # the PCI bus id ggml reports ("0000:01:00.0"); "" when the backend gives none
    same_as: str = ""  # the preferred device of the same GPU, when another backend drives it and comes first
    _handle: int = field(default=0, repr=False, compare=False)

    @property
    def gpu(self) -> bool:
        """Whether it is a GPU: ggml's type GPU or IGPU, and not a Vulkan implementation on the CPU (lavapipe)."""
        described = self.description.lower()
        if self.remote:  # ggml says GPU of every RPC device, whatever the server runs it on
            return False
        return self.type in GPU_TYPES and not any(name in described for name in _SOFTWARE_RENDERERS)

    @property
    def remote(self) -> bool:
        """Whether it is another machine's device, served by a ggml RPC server (Runtime.add_rpc_server)."""
        return self.backend == "RPC"

    @property
    def preferred(self) -> bool:
        """Whether load_model(devices=None) uses it: no other backend's device drives the same GPU first."""
        return not self.same_as


@dataclass(frozen=True)
class Report:
    library_dir: str
    modules: tuple[ModuleReport, ...]
    cpu_variant: str | None
    cpu_variant_score: int | None
    devices: tuple[Device, ...]
    core_libraries: tuple[tuple[str, str], ...] = ()  # (name, path) of every core library loaded
    upstream: Mapping[str, str] = field(default_factory=dict)  # stage.json: commit, patch_series_sha256
    ggml_commit: str | None = None  # what the loaded ggml-base says it was built from
    llama_abi: str = ""  # "matches", or why libllama's struct layout differs from the binding's ("": no libllama)
    no_cpu_backend: str = ""  # why no CPU variant was loaded, naming the variable that removed it ("": one was)

    def module(self, name: str) -> ModuleReport:
        """The report of the module of that name (e.g. "ggml-cpu-haswell"); KeyError when none was found."""
        for module in self.modules:
            if module.name == name:
                return module
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The report as `info --json` writes it: every field, each device with `preferred` and without its
        handle (a pointer, meaningless in another process)."""
        document = asdict(self)
        for device, described in zip(self.devices, document["devices"], strict=True):
            del described["_handle"]
            described["preferred"] = device.preferred
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Report:
        """to_json()'s document (`info --json`, from a child process) read back; a field it lacks takes its
        default, one this binding does not know (a newer one's) is left out."""
        device_fields = {f.name for f in fields(Device) if f.init and f.name != "_handle"}
        module_fields = {f.name for f in fields(ModuleReport)}
        return cls(
            library_dir=document["library_dir"],
            modules=tuple(
                ModuleReport(**{k: v for k, v in m.items() if k in module_fields}) for m in document["modules"]
            ),
            cpu_variant=document["cpu_variant"],
            cpu_variant_score=document["cpu_variant_score"],
            devices=tuple(Device(**{k: v for k, v in d.items() if k in device_fields}) for d in document["devices"]),
            core_libraries=tuple((str(name), str(path)) for name, path in document.get("core_libraries", ())),
            upstream={str(k): str(v) for k, v in document.get("upstream", {}).items()},
            ggml_commit=document.get("ggml_commit"),
            llama_abi=document.get("llama_abi", ""),
            no_cpu_backend=document.get("no_cpu_backend", ""),
        )

    def upstream_line(self) -> str:
        """The upstream commit and patch series the libraries were built from, as `info` prints it."""
        commit = self.upstream.get("commit")
        series = self.upstream.get("patch_series_sha256")
        recorded = f"{commit} + patch series {series[:12]}" if commit and series else "not recorded (no stage.json)"
        if self.ggml_commit is None:
            return recorded
        agrees = "" if not commit or self.ggml_commit in {commit, commit[: len(self.ggml_commit)]} else " (differs!)"
        return f"{recorded}; ggml_commit() {self.ggml_commit}{agrees}"

    def lines(self) -> list[str]:
        """The report as `python -m llama_cpp_runtime info` prints it."""
        out = [f"libraries: {self.library_dir}"]
        out.append(f"upstream: {self.upstream_line()}")
        out.append("core: " + ", ".join(f"{name} (loaded)" for name, _ in self.core_libraries))
        if self.llama_abi:
            out.append(f"libllama structs: {self.llama_abi}")
        served = self.upstream.get("llama_cpp_python")
        if served:
            out.append(f'serves: llama-cpp-python {served} (llama_cpp_runtime.use_for("llama_cpp"))')
        chosen = f"{self.cpu_variant} (score {self.cpu_variant_score})" if self.cpu_variant else "none"
        chosen += f": {self.no_cpu_backend}" if self.no_cpu_backend else ""
        out.append(f"CPU variant: {chosen}")
        out.append("")
        rows = [("module", "status", "score", "source", "reason")]
        for m in self.modules:
            rows.append((m.name, m.status, "" if m.score is None else str(m.score), m.source, m.reason))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
        out.append("")
        device_rows = [("device", "type", "backend", "memory", "description")]
        for d in self.devices:
            memory = f"{d.memory_free / 2**30:.1f}/{d.memory_total / 2**30:.1f} GiB" if d.memory_total else "-"
            same = "" if d.preferred else f" (not used by default: the same GPU as {d.same_as}, {d.device_id})"
            device_rows.append((d.name, d.type, d.backend, memory, d.description + same))
        widths = [max(len(r[i]) for r in device_rows) for i in range(4)]
        for row in device_rows:
            out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
        return out
