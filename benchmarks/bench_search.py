"""Proxy search vs full-data search on one space: wall time and rank agreement, DM vs random proxy.

Runs, through the real CLI and real NNI experiments, on Fashion-MNIST:
  1. ``dmnas condense`` (timed separately: the one-off cost of the DM proxy),
  2. ``dmnas search --proxy full`` over the whole space (the ground truth, timed),
  3. ``dmnas search --proxy dm`` and ``--proxy random`` (same images per class, timed),
then ``dmnas report`` of the two proxies side by side against the full-data accuracies.

    python -m benchmarks.bench_search --space convnet_small --concurrency 2

Writes ``benchmarks/results/search_<space>.{json,md}``; the work folder is temporary unless ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from benchmarks.common import RESULTS, command_line, machine
from benchmarks.run_dmnas import dmnas, exp_id, report_body



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="convnet_small")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument(
        "--iterations", type=int, default=None, help="DM iterations (default: dmnas's device default)"
    )
    ap.add_argument("--epochs", type=int, default=200, help="proxy training epochs")
    ap.add_argument("--full-epochs", type=int, default=None, help="default: dmnas's full-data recipe")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="dmnas-bench-search-")
    work = (args.workdir or Path(tmp.name)).resolve()
    (work / "home").mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        DMNAS_WORKDIR=str(work / "experiments"),
        DMNAS_CACHE=str(work / "cache"),
        HOME=str(work / "home"),
        PYTHONUNBUFFERED="1",
    )
    common = [
        "--space",
        args.space,
        "--concurrency",
        str(args.concurrency),
        "--epochs",
        str(args.epochs),
        "--ipc",
        str(args.ipc),
        "--device",
        args.device,
        "--port",
        str(args.port),
        "--table",
        "none",
        "-q",
    ]
    if args.full_epochs is not None:
        common += ["--full-epochs", str(args.full_epochs)]
    if args.iterations is not None:
        common += ["--iterations", str(args.iterations)]
    cond_args = ["--ipc", str(args.ipc), "--device", args.device, "-q"] + (
        ["--iterations", str(args.iterations)] if args.iterations else []
    )
    _, t_condense = dmnas(env, "condense", *cond_args)
    out_full, t_full = dmnas(env, "search", "--proxy", "full", *common)
    out_dm, t_dm = dmnas(env, "search", "--proxy", "dm", *common)
    out_rand, t_rand = dmnas(env, "search", "--proxy", "random", *common)
    ids = {"full": exp_id(out_full), "dm": exp_id(out_dm), "random": exp_id(out_rand)}
    report_out, _ = dmnas(env, "report", ids["dm"], ids["random"])
    report = json.loads(
        (work / "experiments" / "reports" / f"{ids['dm']}+{ids['random']}" / "report.json").read_text()
    )


    result = {
        "command": command_line(),
        "machine": machine(f"device {args.device}"),
        "date": datetime.now().isoformat(timespec="seconds"),
        "wall_seconds": {
            "condense_dm": t_condense,
            "search_full": t_full,
            "search_dm": t_dm,
            "search_random": t_rand,
        },
        "speedup_dm_search_vs_full": t_full / t_dm,
        "speedup_dm_incl_condense_vs_full": t_full / (t_dm + t_condense),
        "speedup_random_vs_full": t_full / t_rand,
        "experiments": ids,
        "report": report,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"search_{args.space}.json").write_text(json.dumps(result, indent=2))
    md = [
        f"# Search on the proxy vs full-data search: {args.space}, Fashion-MNIST\n",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- proxy: {args.ipc} images/class, {args.epochs} epochs; full data: {report['ground_truth']['recipe']} on the 54 000-image training split; "
        f"concurrency {args.concurrency}\n",
        "| run | wall time (s) | speed-up vs full-data search |",
        "|---|---|---|",
        f"| DM condensation (one-off) | {t_condense:.0f} | |",
        f"| full-data search (ground truth) | {t_full:.0f} | 1.0x |",
        f"| DM-proxy search | {t_dm:.0f} | {t_full / t_dm:.1f}x ({t_full / (t_dm + t_condense):.1f}x incl. condensation) |",
        f"| random-subset-proxy search | {t_rand:.0f} | {t_full / t_rand:.1f}x |",
        "",
        "## Rank agreement with full-data training (all architectures of the space)\n",
        report_body(report_out),
    ]
    (RESULTS / f"search_{args.space}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
