"""The NNI trial: a thin adapter from ``nni.get_next_parameter()`` to :func:`dmnas.nas.proxies.run_trial`.

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

from dmnas.nas.context import TrialContext
from dmnas.nas.proxies import run_trial

log = logging.getLogger(__name__)

def seconds_since_process_start() -> float | None:
    """Wall seconds since this process was created (Linux /proc): interpreter start and imports."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    startup = seconds_since_process_start()
    t0 = time.perf_counter()
    import nni

    ap = argparse.ArgumentParser(description="dmnas NNI trial (launched by `dmnas search`)")
    ap.add_argument("--context", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = TrialContext.load(args.context)
    nni_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    params = nni.get_next_parameter() or {}
    params = {k: v for k, v in params.items() if not k.startswith("_")}
    extra = {"startup_and_imports": (startup or 0.0) + nni_import, "nni_parameters": time.perf_counter() - t1}
    trial_id = os.environ.get("NNI_TRIAL_JOB_ID", "standalone")
    record = run_trial(
        params, ctx, report=nni.report_intermediate_result, trial_id=trial_id, extra_timings=extra
    )
    log.info(
        "trial %s scored %s: %s %.4f in %.1fs",
        trial_id,
        record["arch"],
        ctx.proxy,
        record["score"],
        time.perf_counter() - t0,
    )
    nni.report_final_result(record)  # a synchronous HTTP PUT to NNI's trial channel: delivered now
    # The result is delivered and the record written atomically; what is left is Python's own
    # shutdown, which takes seconds once torch is imported (benchmarks/results/trial_overhead.md)
    # and would be charged to every trial. Flush and leave.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
