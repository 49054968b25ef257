"""NNI's web UI of a finished dmnas search, opened by ``dmnas view`` in a real headless Chromium.

The trials page must list every trial with its status and metric, and each trial's *true*
architecture: NNI's own parameter column can show another trial's parameters when trials run
concurrently (#5726), so every trial also reports its architecture in its final result, which
the UI offers as the column "arch (metric)" (Add/Remove columns). The test turns that column on
the way the UI's own column dialog stores it, then reads the rendered rows.

Set ``DMNAS_WEBUI_SCREENSHOT=path.png`` to keep the screenshot (the README's comes from here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("nni")
pytest.importorskip("websockets")
pytestmark = [pytest.mark.nni, pytest.mark.slow]

from browser import Browser, find_chromium  # noqa: E402
from cli_output import search_id  # noqa: E402

# What the UI's "Add/Remove columns" dialog stores (static/model/localStorage.ts in NNI 3.0).
DEFAULT_COLUMNS = ["sequenceId", "id", "duration", "status", "latestAccuracy"]
ARCH_COLUMN = "metric/arch"


def columns_script(exp_id: str, columns: list[str]) -> str:
    stored = {"value": json.dumps(columns), "time": 0, "expire": 0, "isSelectall": False}
    # time/expire are set in the page: "expired" means now - time > expire.
    return (
        f"(() => {{ const v = {json.dumps(stored)}; v.time = Date.now(); v.expire = 864e5;"
        f" localStorage.setItem({json.dumps(exp_id + '_columns')}, JSON.stringify(v)); return true; }})()"
    )


def wait_for_view(port: int, proc: subprocess.Popen[str]) -> None:
    status = None
    for _ in range(180):
        if proc.poll() is not None:
            raise AssertionError(f"dmnas view exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/check-status", timeout=5) as r:
                status = json.loads(r.read())["status"]
            if status in ("VIEWED", "DONE", "STOPPED"):  # a finished experiment, read-only
                return
        except OSError:
            pass
        time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    raise AssertionError(f"the web UI never came up (last status {status}): {out} {err}")


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium binary (apt-get install chromium)")
def test_trials_page_shows_every_trial_status_metric_and_true_architecture(
    nni_env: dict[str, str], tmp_path: Path
) -> None:
    search = subprocess.run(
        [sys.executable, "-m", "dmnas", "search", "--space", "convnet_tiny", "--proxy", "synflow"]
        + ["--concurrency", "2", "--port", "18700", "--table", "none", "-q"],
        env=nni_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert search.returncode == 0, search.stderr
    exp_id = search_id(search.stdout)
    results = json.loads((Path(nni_env["DMNAS_WORKDIR"]) / "searches" / exp_id / "results.json").read_text())
    trials = {t["trial_id"]: t for t in results["trials"]}
    assert len(trials) == 4 and all(t["status"] == "SUCCEEDED" for t in trials.values())

    from dmnas.nas.nni.manager import choose_port

    port = choose_port(18750)  # the previous test's manager may still hold a port for a moment
    view = subprocess.Popen(
        [sys.executable, "-m", "dmnas", "view", exp_id, "--port", str(port)],
        env=nni_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_view(port, view)
        with Browser() as browser:
            browser.open(f"http://127.0.0.1:{port}/detail")
            browser.wait_for("document.querySelectorAll('.ms-DetailsRow').length > 0", timeout=90)
            browser.eval(columns_script(exp_id, DEFAULT_COLUMNS + [ARCH_COLUMN]))
            browser.open(f"http://127.0.0.1:{port}/detail")
            rows = browser.wait_for(
                f"(() => {{ const r = Array.from(document.querySelectorAll('.ms-DetailsRow'), e => e.innerText);"
                f" return r.length >= {len(trials)} && document.body.innerText.includes('arch (metric)') ? r : null; }})()",
                timeout=90,
            )
            browser.eval("document.querySelector('.ms-DetailsList').scrollIntoView({block: 'end'})")
            shot = browser.screenshot(tmp_path / "webui_trials.png")
    finally:
        view.send_signal(signal.SIGTERM)
        view.wait(timeout=60)

    assert shot.stat().st_size > 10_000
    if os.environ.get("DMNAS_WEBUI_SCREENSHOT"):
        shutil.copy(shot, os.environ["DMNAS_WEBUI_SCREENSHOT"])
    for trial_id, t in trials.items():
        row = next((r for r in rows if trial_id in r), None)
        assert row is not None, f"trial {trial_id} missing from the trials page: {rows}"
        assert "SUCCEEDED" in row
        assert t["record"]["arch"] in row, f"true architecture {t['record']['arch']} not shown: {row!r}"
        shown = [float(m) for m in re.findall(r"(-?\d+(?:\.\d+)?) \(FINAL\)", row)]
        assert shown and shown[0] == pytest.approx(t["record"]["default"], rel=1e-5), row
