#!/usr/bin/env bash
# The CUDA plugin, proven on a machine with an NVIDIA GPU: build the cuda13 family's plugin for this GPU's
# architecture (and the core), install both into a fresh venv with plain pip (NVIDIA's runtime wheels
# come from PyPI), then info, check, bench, and a model generating with every layer offloaded.
# One summary table at the end. It fails, loudly, rather than letting the CPU stand in for the GPU.
#
#   benchmarks/gpu_check.sh            # from a checkout with vendoring.toml; about 5 min on 16 cores
#
# Needs: an NVIDIA driver (nvidia-smi), CUDA 13's nvcc on PATH (or CUDA_PATH), python3 >= 3.11, a C/C++
# compiler, network access to PyPI. Exit 2: this machine cannot run the check; 1: the check failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cannot() { echo "gpu_check: cannot run here: $*" >&2; exit 2; }
failed() { echo "gpu_check: FAILED: $*" >&2; exit 1; }
step() { printf '%s … ' "$1" >&2; }

command -v nvidia-smi >/dev/null 2>&1 || cannot "no NVIDIA driver (nvidia-smi is not on PATH); this check needs a CUDA GPU"
capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .') \
    || cannot "nvidia-smi found no GPU ($(nvidia-smi -L 2>&1 | head -n 1))"
[[ $capability =~ ^[0-9]+$ ]] || cannot "nvidia-smi reported no compute capability (got '${capability}')"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
nvcc=$(command -v nvcc || { [[ -n ${CUDA_PATH:-} ]] && echo "$CUDA_PATH/bin/nvcc"; } || true)
[[ -x $nvcc ]] || cannot "no nvcc on PATH or in CUDA_PATH (the CUDA 13 toolkit builds the plugin)"
"$nvcc" --version | grep -q "release 13\." || cannot "$nvcc is not CUDA 13: $("$nvcc" --version | tail -n 1)"

work=$(mktemp -d)
trap 'echo "gpu_check: work files in $work" >&2' EXIT
architecture="${capability}-real"
# The cuda13 family member that ships this GPU's cubin (CMakePresets.json): Turing to Ada, or Hopper on.
if (( capability < 90 )); then member=cuda13-sm75; else member=cuda13-sm90; fi

step "build venv"
python3 -m venv "$work/build" && "$work/build/bin/pip" -q install -e "$root" "nvidia-cublas>=13,<14" >&2
echo ok >&2

step "wheels: cpu + $member for sm_${capability} ($gpu)"
started=$SECONDS
(cd "$root" && "$work/build/bin/python" -m buildsys wheels --backend "cpu,$member" \
    -D "CMAKE_CUDA_ARCHITECTURES=$architecture" >"$work/wheels.log" 2>&1) || failed "the build; see $work/wheels.log"
build_seconds=$((SECONDS - started))
echo "${build_seconds}s" >&2

step "fresh venv, plain pip"
python3 -m venv "$work/venv"
cores=("$root"/dist/llama_cpp_runtime-*.whl)
plugins=("$root"/dist/llama_cpp_runtime_"${member//-/_}"-*.whl)
core=${cores[0]} plugin=${plugins[0]}
"$work/venv/bin/pip" -q install "$core" "$plugin" >&2 || failed "pip install of $core and $plugin"
echo ok >&2
runtime() { (cd "$work" && "$work/venv/bin/python" -m llama_cpp_runtime "$@"); }

step "info"
runtime info --json >"$work/info.json" || failed "info"
"$work/venv/bin/python" - "$work/info.json" <<'EOF' || failed "the CUDA module did not give a CUDA device (see $work/info.json)"
import json, sys
report = json.load(open(sys.argv[1]))
cuda = [m for m in report["modules"] if m["backend"] == "cuda"]
devices = [d for d in report["devices"] if d["backend"].upper().startswith("CUDA")]
for module in cuda:
    print(f"  {module['name']}: {module['status']} {module['reason']}", file=sys.stderr)
sys.exit(0 if devices and any(m["status"] == "loaded" for m in cuda) else 1)
EOF
device=$("$work/venv/bin/python" -c 'import json,sys; print(next(d["name"] for d in json.load(open(sys.argv[1]))["devices"] if d["backend"].upper().startswith("CUDA")))' "$work/info.json")
echo "$device" >&2

step "check"
runtime check --device "$device" >"$work/check.txt" 2>&1 || failed "check on $device: $(cat "$work/check.txt")"
echo ok >&2

step "bench (mul_mat 1024³ f32)"
gflops=$(runtime bench --device "$device" --size 1024 | awk -v d="$device" '$1 == d { for (i = 1; i <= NF; i++) if ($i == "GFLOP/s") print $(i - 1) }')
[[ -n $gflops ]] || failed "bench printed no GFLOP/s for $device"
echo "$gflops GFLOP/s" >&2

step "model: generate and bench with every layer on $device"
"$work/build/bin/python" "$root/tests/helpers/tiny_models.py" --bench --dtype q4_0 "$work/bench-q4_0.gguf" >/dev/null
runtime run "$work/bench-q4_0.gguf" --prompt "Hello" -n 16 --device "$device" >"$work/run.txt" 2>&1 \
    || failed "generation on $device: $(tail -n 3 "$work/run.txt")"
runtime bench --model "$work/bench-q4_0.gguf" --device "$device" --json >"$work/bench-model.json" \
    || failed "model bench on $device"
read -r pp tg < <("$work/venv/bin/python" -c 'import json,sys; r={x["test"]: x["tokens_per_second"] for x in json.load(open(sys.argv[1]))}; print(round(r["pp512"]), round(r["tg128"]))' "$work/bench-model.json")
echo "pp512 $pp t/s, tg128 $tg t/s" >&2

printf '\n%-34s %s\n' "GPU" "$gpu (sm_${capability})" \
    "plugin wheel" "$(basename "$plugin") ($(du -h "$plugin" | cut -f1))" \
    "build (cpu + $member, this arch)" "${build_seconds}s" \
    "device" "$device" \
    "check" "ok" \
    "mul_mat 1024³ f32" "$gflops GFLOP/s" \
    "25.8M q4_0 llama, all layers" "pp512 $pp t/s, tg128 $tg t/s"
