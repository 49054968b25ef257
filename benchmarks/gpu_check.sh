#!/usr/bin/env bash
# The GPU check: DM speed and memory vs the reference main_DM.py, fp32/tf32/bf16, a convnet_grid
# slice in both trial modes, and an IPC-50 DM set at a GPU budget, in under 10 minutes on one GPU. See benchmarks/gpu_check.py for what it
# measures. Results under $OUT when set, else benchmarks/results/.
#
#   benchmarks/gpu_check.sh --reference /path/to/DatasetCondensation      # on a GPU machine
#   benchmarks/gpu_check.sh --dry-run [--reference PATH]                   # anywhere: check the inputs
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
# The GPU machine's session limit is 10 minutes: the check stops just short of it.
exec timeout "${GPU_CHECK_TIMEOUT:-570}" "$PY" -m benchmarks.gpu_check "$@"
