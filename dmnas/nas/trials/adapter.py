"""The NNI trial: a thin adapter from NNI's parameters to :func:`dmnas.nas.trials.proxies.run_trial`.

Two modes. ``process``: this process imports torch and nni, loads the data and trains (seconds of
start-up per trial). ``worker``: this process imports neither; it speaks NNI's trial protocol
itself (:mod:`dmnas.nas.nni.channel`) and has a warm worker of its slot score the architecture
(:mod:`dmnas.nas.trials.warm_workers`), relaying the results. NNI sees one trial per architecture either way.

The final result reports the architecture the trial really trained (NNI 3.0 can show another one
with concurrency > 1, #5726) and is also written to the search's results folder, so dmnas never
depends on NNI's records.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

def seconds_since_process_start() -> float | None:
    """Wall seconds since this process was created (Linux /proc): interpreter start and imports."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def process_trial(context: Path, startup: float) -> None:
    """Score in this process (the per-process mode)."""
    t0 = time.perf_counter()
    import nni

    from dmnas.util.allocator import keep_freed_memory
    from dmnas.nas.trials.context import TrialContext
    from dmnas.nas.trials.proxies import run_trial

    keep_freed_memory()
    ctx = TrialContext.load(context)
    imports = time.perf_counter() - t0
    t1 = time.perf_counter()
    params = nni.get_next_parameter() or {}
    params = {k: v for k, v in params.items() if not k.startswith("_")}
    extra = {"startup_and_imports": startup + imports, "nni_parameters": time.perf_counter() - t1}
    trial_id = os.environ.get("NNI_TRIAL_JOB_ID", "standalone")
    record = run_trial(params, ctx, report=nni.report_intermediate_result, trial_id=trial_id, extra_timings=extra)
    log.info(
        "trial %s scored %s: %s %.4f in %.1fs", trial_id, record["arch"], ctx.proxy, record["score"], time.perf_counter() - t0
    )
    nni.report_final_result(record)  # a synchronous HTTP PUT to NNI's trial channel: delivered now


def worker_trial(context: Path, workers: int, owner_pid: int, startup: float) -> None:
    """Hand the architecture to a warm worker and relay its results (the worker mode)."""
    from dmnas.nas.nni.channel import open_channel
    from dmnas.nas.trials.warm_workers import score_in_worker

    t0 = time.perf_counter()
    channel = open_channel()
    params = {k: v for k, v in channel.parameters().items() if not k.startswith("_")}
    extra = {"startup_and_imports": startup, "nni_parameters": time.perf_counter() - t0}
    trial_id = os.environ.get("NNI_TRIAL_JOB_ID", "standalone")
    record = score_in_worker(params, trial_id, context, workers, owner_pid, channel.intermediate, extra)
    t1 = time.perf_counter()
    channel.final(record)
    log.info(
        "trial %s scored %s: %.4f (%.1fs here, result sent in %.3fs)",
        trial_id, record["arch"], record["score"], time.perf_counter() - t0, time.perf_counter() - t1,
    )


def main() -> None:
    startup = seconds_since_process_start() or 0.0
    ap = argparse.ArgumentParser(description="dmnas NNI trial (launched by `dmnas search`)")
    ap.add_argument("--context", type=Path, required=True)
    ap.add_argument("--mode", choices=("process", "worker"), default="process")
    ap.add_argument("--workers", type=int, default=1, help="worker mode: slots per device")
    ap.add_argument("--owner-pid", type=int, default=0, help="worker mode: the search process (workers end with it)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.mode == "worker":
        from dmnas.errors import DmnasError

        try:
            worker_trial(args.context, args.workers, args.owner_pid or os.getppid(), startup)
        except DmnasError as err:  # one line for NNI's trial log; the worker's log has the rest
            print(f"dmnas trial: {err}", file=sys.stderr)
            sys.stderr.flush()
            os._exit(1)
    else:
        process_trial(args.context, startup)
    # The result is delivered and the record written atomically; what is left is Python's own
    # shutdown, which takes seconds once torch is imported (benchmarks/results/trial_overhead.md)
    # and would be charged to every trial. Flush and leave.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
