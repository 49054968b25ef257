"""The whole report as a value: what ``dmnas report`` prints and writes and ``dmnas.report()`` returns."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dmnas.reporting.build import build_rows, ceiling_of, ceilings_of, paired_comparisons, report_dict
from dmnas.reporting.markdown import markdown
from dmnas.reporting.figures import draw_all
from dmnas.reporting.findings import ranking, ranking_csv
from dmnas.reporting.stats import Ceiling, PairedDelta, SeedCeilings
from dmnas.groundtruth.truth import GroundTruth
from dmnas.reporting.types import ProxyScores, Row


@dataclass(frozen=True)
class Report:
    """Rows (one per proxy), the ground truth they were read against, its ceilings on every footing,
    the paired comparisons of every two proxies, and (once written) the files."""

    rows: list[Row]
    truth: GroundTruth
    confirm_k: int
    ceiling: Ceiling | None
    ceilings: SeedCeilings | None
    paired: list[PairedDelta]
    proxies: list[ProxyScores]
    paths: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. how far each DM set moved from its initialisation
    full_epochs: int = 0  # of the full-data recipe (prices the next step when there is no ground truth)
    train_rate: float | None = None  # seconds per forward multiply-add per image pass (findings.seconds_per_flop)
    image_geometry: tuple[int, int] = (28, 1)

    def to_markdown(self) -> str:
        return markdown(
            self.rows, self.truth, self.confirm_k, self.ceiling, self.ceilings, self.paired, self.notes, self.full_epochs,
            self.train_rate, self.image_geometry,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **report_dict(self.rows, self.truth, self.confirm_k, self.ceiling, self.ceilings, self.paired, self.proxies),
            "notes": self.notes,
            "rankings": {p.label: [asdict(r) for r in ranking(p, self.truth)] for p in self.proxies},
        }

    def figures(self, folder: Path) -> dict[str, Path]:
        """Scatter and rank plots per proxy and the proxies' comparison, PNG and SVG."""
        return draw_all(Path(folder), self.rows, self.truth, self.ceiling, self.ceilings)


def make_report(proxies: list[ProxyScores], truth: GroundTruth, confirm_k: int, seed: int = 0) -> Report:
    return Report(
        build_rows(proxies, truth, confirm_k, seed),
        truth,
        confirm_k,
        ceiling_of(truth),
        ceilings_of(truth),
        paired_comparisons(proxies, truth, seed=seed),
        proxies,
    )


def write_report(out_dir: Path, report: Report) -> dict[str, Path]:
    """report.json, report.md and the figures in ``out_dir``; returns every path written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str))
    paths["markdown"].write_text(report.to_markdown())
    for i, p in enumerate(report.proxies):  # the whole ranking of each proxy, for a spreadsheet
        paths[f"ranking_{i}_csv"] = out_dir / f"ranking_{i}_{p.proxy}.csv"
        paths[f"ranking_{i}_csv"].write_text(ranking_csv(ranking(p, report.truth)))
    paths.update(report.figures(out_dir))
    return paths
