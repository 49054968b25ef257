"""Hyperband and BOHB vs the grid on the shipped ground-truth space: proxy compute and rank agreement.

Runs three real ``dmnas search --space convnet_bench48 --proxy dm`` searches through the CLI and
NNI, one after the other on the same cached DM set: ``--tuner grid`` (every architecture at the
full proxy budget), ``--tuner hyperband`` (NNI's Hyperband, R = --epochs, eta = 3: most
architectures trained for a few epochs, the better ones up to the full budget) and ``--tuner
bohb`` (the same brackets, new architectures drawn from a density model of the good ones). Then, against the shipped table
(``dmnas/groundtruth/tables/shipped``): the confirmed winner of each (its top 3 checked on the table) and
its regret; the proxy compute spent in all (trial training seconds, image passes, trials, NNI's
trial seconds, search wall time) and until the winner's deciding trial had finished; Spearman of
the scores over every architecture each search ranked, and over only those scored at the full
budget. Resumable: a finished search is remembered in the work folder.

    .venv/bin/python -m benchmarks.bench_hyperband --cache-dir benchmarks/_work/fidelity/cache

Writes ``benchmarks/results/hyperband_vs_grid.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, ROOT, command_line, machine
from benchmarks.run_dmnas import dmnas, exp_id, project_env

TABLE = ROOT / "dmnas" / "groundtruth" / "tables" / "shipped"
TUNERS = ("grid", "hyperband", "bohb")


def end_times(db: Path) -> dict[str, int]:
    """trial id -> when NNI saw it end (ms), from the manager's own database."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT trialJobId, MAX(timestamp) FROM TrialJobEvent WHERE event IN "
            "('SUCCEEDED', 'FAILED', 'USER_CANCELED', 'SYS_CANCELED', 'EARLY_STOPPED') GROUP BY trialJobId"
        ).fetchall()
    return {t: int(ts) for t, ts in rows}


def table_means(table: Path) -> dict[str, float]:
    manifest = json.loads((table / "table.json").read_text())
    folder = table / manifest["fingerprint"] / manifest["recipe_key"]
    accs: dict[str, list[float]] = {}
    for f in folder.glob("*__seed*.json"):
        accs.setdefault(f.name.split("__seed")[0], []).append(float(json.loads(f.read_text())["val_acc"]))
    return {a: sum(v) / len(v) for a, v in accs.items()}


def spearman(scores: dict[str, float], truth: dict[str, float]) -> tuple[float | None, int]:
    from scipy.stats import spearmanr

    common = sorted(set(scores) & set(truth))
    if len(common) < 3:
        return None, len(common)
    return float(spearmanr([scores[a] for a in common], [truth[a] for a in common]).statistic), len(common)


def summarise(tuner: str, work: Path, sid: str, wall: float, report_row: dict[str, Any], truth: dict[str, float]) -> dict:
    results = json.loads((work / "experiments" / "searches" / sid / "results.json").read_text())
    trials = [t for t in results["trials"] if t["record"]]
    full_budget = max(int(t["record"].get("budget_epochs") or 0) for t in trials) or None
    ends = end_times(work / "experiments" / "nni" / sid.replace("-", "_") / "db" / "nni.sqlite")
    by_arch: dict[str, dict[int, list[float]]] = {}
    for t in trials:
        r = t["record"]
        by_arch.setdefault(r["arch"], {}).setdefault(int(r.get("budget_epochs") or 0), []).append(r["score"])
    top = {a: max(b) for a, b in by_arch.items()}
    scores = {a: sum(b[top[a]]) / len(b[top[a]]) for a, b in by_arch.items()}
    at_full = {a: s for a, s in scores.items() if full_budget is None or top[a] == full_budget}
    winner = report_row["confirmation"]["winner"]
    # The winner is known once its deciding trial (at its highest budget) has finished.
    deciding = [t for t in trials if t["record"]["arch"] == winner and int(t["record"].get("budget_epochs") or 0) == top.get(winner)]
    t_win = min((ends.get(t["trial_id"], 0) for t in deciding), default=None)
    # A grid's ranking (and so its pick) is final only when its last trial ends, whatever the order.
    before = trials if tuner == "grid" else [t for t in trials if t_win is not None and ends.get(t["trial_id"], 0) <= t_win]
    epochs = json.loads((work / "experiments" / "searches" / sid / "search.json").read_text())["trial_recipe"]["epochs"]
    passes = lambda ts: sum(int(t["record"]["images"]) * int(t["record"].get("budget_epochs") or epochs) for t in ts)  # noqa: E731
    rho_all, n_all = spearman(scores, truth)
    rho_full, n_full = spearman(at_full, truth)
    return {
        "tuner": tuner,
        "search": sid,
        "trials": len(trials),
        "architectures": len(scores),
        "at_full_budget": len(at_full),
        "full_budget_epochs": full_budget,
        "train_seconds": round(sum(float(t["record"]["train_seconds"]) for t in trials), 1),
        "nni_trial_seconds": round(sum(float(t.get("nni_seconds") or 0) for t in trials), 1),
        "image_passes": passes(trials),
        "search_wall_seconds": round(wall, 1),
        "winner": winner,
        "winner_full_acc": report_row["confirmation"]["winner_full_acc"],
        "regret_pts": None if report_row["confirmation"]["regret"] is None else 100 * report_row["confirmation"]["regret"],
        "train_seconds_to_winner": round(sum(float(t["record"]["train_seconds"]) for t in before), 1),
        "image_passes_to_winner": passes(before),
        "spearman_all": rho_all,
        "n_all": n_all,
        "spearman_full_budget": rho_full,
        "n_full_budget": n_full,
        "report_spearman": (report_row["estimate"] or {}).get("spearman"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="convnet_bench48")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--port", type=int, default=8097)
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "_work" / "hyperband")
    ap.add_argument("--cache-dir", type=Path, default=None, help="DM cache (default: <workdir>/cache)")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="Hyperband's and BOHB's trial cap (default: dmnas's, one Hyperband iteration)",
    )
    args = ap.parse_args()

    work = args.workdir.resolve()
    env = project_env(work, args.cache_dir)
    state_file = work / "searches.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    for tuner in TUNERS:
        if tuner in state:
            continue
        extra = ["--max-trials", str(args.max_trials)] if tuner != "grid" and args.max_trials else []
        out, seconds = dmnas(
            env, "search", "--space", args.space, "--proxy", "dm", "--tuner", tuner,
            "--concurrency", str(args.concurrency), "--port", str(args.port),
            "--table", str(args.table), "--ground-truth", "0", "-q", *extra,
        )  # fmt: skip
        state[tuner] = {"id": exp_id(out), "wall_seconds": seconds}
        state_file.write_text(json.dumps(state, indent=2))
        print(f"{tuner}: search {state[tuner]['id']} in {seconds:.0f} s", flush=True)

    recipe = json.loads((args.table / "table.json").read_text())["recipe"]
    truth = table_means(args.table)
    rows = []
    for tuner in TUNERS:
        sid = state[tuner]["id"]
        dmnas(env, "report", sid, "--table", str(args.table), "--full-epochs", str(recipe["epochs"]))
        report = json.loads((work / "experiments" / "reports" / sid / "report.json").read_text())
        rows.append(summarise(tuner, work, sid, state[tuner]["wall_seconds"], report["rows"][0], truth))


    grid = rows[0]
    ratio_keys = ("train_seconds", "image_passes", "nni_trial_seconds", "search_wall_seconds", "train_seconds_to_winner")
    result = {
        "rows": rows,
        "over_grid": {r["tuner"]: {k: (r[k] / grid[k] if grid[k] else None) for k in ratio_keys} for r in rows[1:]},
        # relative to the checkout where it is inside it: a results file names no machine's paths
        "table": str(args.table.resolve().relative_to(ROOT)) if args.table.resolve().is_relative_to(ROOT) else str(args.table),
        "command": command_line(),
        "machine": machine(),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hyperband_vs_grid.json").write_text(json.dumps(result, indent=2))
    f = lambda v, d=3: "n/a" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))  # noqa: E731
    keys = [
        ("trials", "trials"), ("architectures", "architectures ranked"), ("at_full_budget", "of them at the full budget"),
        ("train_seconds", "proxy training seconds, all trials"), ("image_passes", "image passes, all trials"),
        ("nni_trial_seconds", "NNI trial seconds (start to end), all trials"), ("search_wall_seconds", "search wall seconds"),
        ("train_seconds_to_winner", "training seconds until the pick was known (grid: all of them)"),
        ("image_passes_to_winner", "image passes until then"), ("winner", "confirmed winner (top 3 on the table)"),
        ("regret_pts", "regret (points)"), ("spearman_all", "Spearman, every architecture ranked (n)"),
        ("spearman_full_budget", "Spearman, only those at the full budget (n)"),
    ]  # fmt: skip
    others = [r["tuner"] for r in rows[1:]]
    md = [
        f"# Hyperband and BOHB vs grid on the shipped table ({args.space}, dm proxy, Fashion-MNIST)",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- ground truth: the shipped table ({recipe['epochs']} ep full-data recipe, seed mean of 2 seeds); "
        "the searches ran one after the other on the same cached DM set (its condensation is not counted here)",
        "- Hyperband and BOHB: R = the proxy's epochs, eta = 3, one iteration (every bracket once; NNI's own "
        "would go on with new configurations until the trial cap); an architecture is ranked by its score "
        "at the highest budget it reached",
        "",
        "| | " + " | ".join(r["tuner"] for r in rows) + " | " + " | ".join(f"{t} / grid" for t in others) + " |",
        "|---|" + "---|" * (len(rows) + len(others)),
    ]
    for k, label in keys:
        n = {"spearman_all": "n_all", "spearman_full_budget": "n_full_budget"}.get(k)
        cells = [f(r[k]) + (f" (n={r[n]})" if n else "") for r in rows]
        ratios = [result["over_grid"][t].get(k) for t in others]
        md.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(f(x, 2) if x is not None else "" for x in ratios) + " |")
    (RESULTS / "hyperband_vs_grid.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
