"""Every default that depends on the device, decided here once.

The Python API, the CLI (its ``--help`` too), the trials and the benchmarks all read these, so a
CPU user of ``dmnas.condense()`` gets what ``dmnas condense`` gives. Light: no torch at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dmnas.errors import DmnasError

# DM iterations. The paper's 20 000 are hours on a CPU. On the CPU, 50 ranked both shipped tables
# as well as 100 and 200 did (benchmarks/results/proxy_ablation*.md), and it is what keeps the README
# pipeline within minutes; how far such a set moves from its real initialisation is printed with it.
CUDA_ITERATIONS = 20_000
CPU_ITERATIONS = 50
# Real images per forward in DM: one batch for all classes on CUDA; on a CPU, cache-sized chunks
# (benchmarks/results/real_chunk.md: the first conv of 256 images spills the L3 cache).
CPU_REAL_CHUNK = 16
# The real branch in bf16 on a CPU with AMX: 32 images per forward run it 1.27x faster than 16 compiled
# (0.30 vs 0.38 s, 2 threads) and as fast eagerly (0.99 vs 1.01 s); 64 gains 4 % more compiled but is
# 1.8x slower eagerly (benchmarks/results/real_chunk_bf16-real.md). Measured on an AMX Xeon only:
# AVX512-BF16 CPUs without AMX keep CPU_REAL_CHUNK.
AMX_BF16_REAL_CHUNK = 32
# torch.compile of the DM embedding on a CPU pays for itself, with an empty code cache, from 18 iterations
# at IPC 50 fp32 (benchmarks/results/compile_break_even.md), 24 at IPC 10 bf16-real and 30 at IPC 10 fp32
# (one-off = (mean - median) x 20 iterations over the eager-compiled saving, condense_speed.md), and from
# 1-2 with a warm one (both files). 50 is above every cold break-even measured: `auto` never loses time,
# whatever the state of the code cache (which holds a graph per shape, so a new IPC compiles cold again).
COMPILE_MIN_ITERATIONS = 50
# Epochs of the DM paper's evaluation protocol (1000) and what a CPU affords (300).
EVAL_EPOCHS = {"cuda": 1000, "cpu": 300}
# Full-data (ground-truth) training: the ranking stops changing at 2 epochs on CPU
# (benchmarks/results/full_epochs_study.md); CUDA keeps it so that GPU searches reuse the shipped tables.
FULL_EPOCHS = {"cuda": 2, "cpu": 2}
# Precision of DM: TF32 on CUDA; on a CPU with native bfloat16 (AVX512-BF16 or AMX) the real images'
# embedding in bf16 and the rest in fp32 ("bf16-real": 0.49 s per IPC-10 iteration compiled against
# 1.27 s in fp32, 5.7x the reference, on an AMX Xeon; 0.97 vs 1.54 s on an AVX512-BF16 EPYC,
# benchmarks/results/condense_speed.md and CHANGELOG; loss within 5 % of fp32
# per iteration in tests/test_dm.py), exact fp32 on other CPUs.
PRECISION = {"cuda": "tf32", "cpu": "fp32"}
CPU_NATIVE_BF16_PRECISION = "bf16-real"
DEVICES = ("auto", "cpu", "cuda", "cuda:N")
# Images per forward when scoring a network: on a CPU, batches of 1024 spill a width-16 ConvNet's
# activations out of the cache and evaluate markedly slower than 256 (a one-off timing on the 2-core
# VM, not kept in a results file); a GPU wants the large batch.
EVAL_BATCH = {"cuda": 1024, "cpu": 256}


def native_bf16(device: str, cpu_flags: str | None = None) -> bool:
    """bfloat16 matmuls run natively here: bf16 tensor cores on CUDA, AVX512-BF16 or AMX on an x86
    CPU (read from /proc/cpuinfo; anything else, or no /proc, counts as not native)."""
    if kind(device) == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool(cpu_flag_set(cpu_flags) & {"avx512_bf16", "amx_bf16"})


def cpu_flag_set(cpu_flags: str | None = None) -> set[str]:
    """The x86 CPU's feature flags (``cpu_flags``: a /proc/cpuinfo ``flags`` line, else read from
    /proc/cpuinfo; empty where there is none)."""
    if cpu_flags is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpu_flags = next((ln for ln in f if ln.startswith("flags")), "")
        except OSError:
            return set()
    return set(cpu_flags.split())


def kind(device: str) -> str:
    """'cuda' or 'cpu': what every device-dependent default is keyed by."""
    return "cuda" if device.startswith("cuda") else "cpu"


def resolve_device(name: str) -> str:
    """``auto`` -> cuda when present, else cpu; a CUDA device that is not there is refused."""
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DmnasError(f"--device {name} but CUDA is not available on this machine; use --device cpu or auto")
        return name
    if name != "cpu":
        raise DmnasError(f"unknown --device {name!r}; valid: {', '.join(DEVICES)}")
    return name


@dataclass(frozen=True)
class DeviceDefaults:
    """The defaults for one resolved device."""

    device: str
    iterations: int
    real_chunk: int
    bf16_real_chunk: int  # the real chunk when the real branch runs in bf16
    precision: str
    channels_last: bool
    eval_epochs: int
    full_epochs: int

    def compile(self, iterations: int, choice: str = "auto") -> bool:
        """``--compile auto|on|off``: auto compiles CPU runs long enough to repay the compile."""
        if choice not in ("auto", "on", "off"):
            raise DmnasError(f"--compile must be auto, on or off, got {choice!r}")
        if choice != "auto":
            return choice == "on"
        return kind(self.device) == "cpu" and iterations >= COMPILE_MIN_ITERATIONS

    def chunk_for(self, precision: str) -> int:
        """Real images per forward for DM at ``precision`` (the bf16 real branch has its own)."""
        return self.bf16_real_chunk if precision == CPU_NATIVE_BF16_PRECISION else self.real_chunk

    def trial_threads(self, concurrency: int) -> int:
        """CPU threads per trial: concurrent CPU trials share the cores (oversubscribed OpenMP
        crawls); a GPU trial keeps torch's default (0)."""
        if kind(self.device) == "cuda":
            return 0
        return max(1, (os.cpu_count() or 1) // max(1, concurrency))


def for_device(device: str, cpu_flags: str | None = None) -> DeviceDefaults:
    """Defaults of a resolved device name (``cpu``, ``cuda``, ``cuda:1``); ``cpu_flags``: a
    /proc/cpuinfo ``flags`` line to decide for (default: this machine's)."""
    k = kind(device)
    chunk = 0 if k == "cuda" else CPU_REAL_CHUNK
    amx = k == "cpu" and "amx_bf16" in cpu_flag_set(cpu_flags)
    return DeviceDefaults(
        device=device,
        iterations=CUDA_ITERATIONS if k == "cuda" else CPU_ITERATIONS,
        real_chunk=chunk,
        bf16_real_chunk=AMX_BF16_REAL_CHUNK if amx else chunk,
        precision=CPU_NATIVE_BF16_PRECISION if k == "cpu" and native_bf16(device, cpu_flags) else PRECISION[k],
        channels_last=True,
        eval_epochs=EVAL_EPOCHS[k],
        full_epochs=FULL_EPOCHS[k],
    )

# Trials sharing one GPU (NNI's max_trial_number_per_gpu; in worker mode, warm workers per GPU). A
# proxy trial trains a width-8/16 ConvNet on 500 images: a few hundred MB of GPU memory and a second
# or two of GPU work, too little to fill an H200 and short next to the Python work around each step
# and NNI's launch of each trial process (benchmarks/results/trial_overhead.md); one trial at a time
# leaves the GPU idle through all of that. Four overlap it. Not yet timed on a GPU:
# benchmarks/gpu_check.sh measures 1 against this default when a GPU is available.
TRIALS_PER_GPU = 4
