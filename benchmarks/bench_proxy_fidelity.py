"""Every proxy against the shipped ground-truth table: dm, random, early, synflow, naswot.

Runs ``dmnas search --space convnet_bench48`` (the table's architectures) once per proxy through
the real CLI and real NNI experiments, then ``dmnas report`` of all of them side by side against
the table (``dmnas/groundtruth/tables/shipped``): Spearman with its interval, Kendall, top-5 / top-10 %,
regret of the confirmed pick, cost per architecture, and the noise ceiling of the table itself.
Resumable: finished searches are remembered in the work folder and not run again; rerun with
``--report-only`` to re-score them after the table has grown.

    .venv/bin/python -m benchmarks.bench_proxy_fidelity --concurrency 2

Writes ``benchmarks/results/proxy_fidelity.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from benchmarks.common import RESULTS, ROOT, command_line, machine
from benchmarks.run_dmnas import dmnas, exp_id, project_env, report_body

TABLE = ROOT / "dmnas" / "groundtruth" / "tables" / "shipped"
PROXIES = ("dm", "random", "early", "synflow", "naswot")


def condensation_seconds(cache_dir: Path, search_dir: Path) -> float | None:
    """Wall time of the DM set the dm search used (paid once per dataset, not per architecture)."""
    try:
        key = json.loads((search_dir / "search.json").read_text())["entry_key"]
        return json.loads((cache_dir / key / "manifest.json").read_text()).get("wall_seconds")
    except (OSError, KeyError, TypeError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="convnet_bench48")
    ap.add_argument("--proxies", nargs="+", default=list(PROXIES))
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--port", type=int, default=8095)
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "_work" / "fidelity")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--out", default="proxy_fidelity")
    ap.add_argument("extra", nargs="*", help="further `dmnas search` options after --, e.g. -- --epochs 300")
    args = ap.parse_args()

    work = args.workdir.resolve()
    env = project_env(work)
    state_file = work / "searches.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    for proxy in args.proxies:
        if proxy in state or args.report_only:
            continue
        out, seconds = dmnas(
            env,
            "search",
            "--space",
            args.space,
            "--proxy",
            proxy,
            "--concurrency",
            str(args.concurrency),
            "--port",
            str(args.port),
            "--table",
            str(args.table),
            "-q",
            *args.extra,
        )
        state[proxy] = {"id": exp_id(out), "wall_seconds": seconds}
        state_file.write_text(json.dumps(state, indent=2))
        print(f"{proxy}: search {state[proxy]['id']} in {seconds:.0f} s", flush=True)
    ids = [state[p]["id"] for p in args.proxies if p in state]
    recipe = json.loads((args.table / "table.json").read_text())["recipe"]
    # Score every proxy against the table's own recipe, whatever default the searches ran under.
    report_out, _ = dmnas(
        env, "report", *ids, "--table", str(args.table), "--full-epochs", str(recipe["epochs"])
    )
    report = json.loads((work / "experiments" / "reports" / "+".join(ids) / "report.json").read_text())


    rows = []
    for p, r in zip([p for p in args.proxies if p in state], report["rows"], strict=True):
        est, conf = r["estimate"] or {}, r["confirmation"]
        rows.append(
            {
                "proxy": p,
                "label": r["label"],
                "n": est.get("n", 0),
                "spearman": est.get("spearman"),
                "spearman_ci95": est.get("spearman_ci95"),
                "kendall": est.get("kendall_tau"),
                "top5_overlap": est.get("top5_overlap"),
                "top10pct_overlap": est.get("top10pct_overlap"),
                "spearman_top10pct": (r.get("top_spearman") or {}).get("top10pct"),
                "spearman_top20pct": (r.get("top_spearman") or {}).get("top20pct"),
                "spearman_top10": (r.get("top_spearman") or {}).get("top10"),
                "spearman_top20": (r.get("top_spearman") or {}).get("top20"),
                "spearman_per_seed": r.get("per_seed_spearman"),
                "regret_at": r.get("regret_at"),
                "winner": conf["winner"],
                "winner_full_acc": conf["winner_full_acc"],
                "regret": conf["regret"],
                "seconds_per_arch": r["seconds_per_arch"],
                "total_seconds": r["total_seconds"],
                "search_wall_seconds": state[p]["wall_seconds"],
            }
        )
    table_manifest = json.loads((args.table / "table.json").read_text())
    ceilings = report.get("ceilings") or {}
    result = {
        "ceiling": {**(report["ceiling"] or {}), "spearman_brown": ceilings.get("mean")},
        "ceilings": ceilings,
        "ceiling_top10": (ceilings.get("mean_top") or {}).get("top10"),
        "ceiling_top20": (ceilings.get("mean_top") or {}).get("top20"),
        "paired": [
            {k: d[k] for k in ("a", "b", "measure", "n", "delta", "ci95", "p_a_beats_b")} for d in report.get("paired", [])
        ],
        "rows": rows,
        "ground_truth": report["ground_truth"],
        "table": {k: table_manifest[k] for k in ("space", "records", "planned", "complete", "recipe_text")},
        "condensation_seconds": condensation_seconds(
            work / "cache", work / "experiments" / "searches" / state["dm"]["id"]
        )
        if "dm" in state
        else None,
        "command": command_line(),
        "machine": machine(),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2, default=str))
    md = [
        f"# Proxy fidelity on the shipped ground-truth table ({args.space}, Fashion-MNIST)",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- table: {table_manifest['records']} of {table_manifest['planned']} records "
        f"({'complete' if table_manifest['complete'] else 'PARTIAL: still being built'}), recipe {table_manifest['recipe_text']}",
        f"- DM condensation (once per dataset): {result['condensation_seconds'] or 0:.0f} s",
        "",
        report_body(report_out),
    ]
    (RESULTS / f"{args.out}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
