"""Screenshots of the MLflow UI as a user sees it: the runs table of a sweep and the compare view of its trials.

Starts ``launch ui`` (a real MLflow server on 127.0.0.1) on a tracking dir, finds the sweep's parent run and
its child runs through the REST API, and drives headless Chromium (Debian's ``chromium`` package) to save
two PNGs. Usage::

    python scripts/ui_screenshots.py [--dir tailsweep-runs] [--sweep latest] [--out docs/img]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path


def _post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{base}/ajax-api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _get(base: str, path: str, query: dict) -> dict:
    with urllib.request.urlopen(f"{base}/ajax-api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}", timeout=10) as r:
        return json.loads(r.read())


def shoot(browser: str, url: str, out: Path, size: str = "1600,1000", wait_ms: int = 20000) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={out}",
            url,
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    if not out.is_file() or out.stat().st_size < 10_000:
        raise SystemExit(f"chromium wrote no usable screenshot for {url}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="tailsweep-runs", help="the sweep's tracking.dir")
    ap.add_argument("--sweep", default="latest", help="sweep id (prefix) or 'latest'")
    ap.add_argument("--out", default="docs/img", help="folder for the PNGs")
    ap.add_argument("--browser", default=None, help="chromium executable (default: found on PATH)")
    ap.add_argument(
        "--url", default=None, help="use this running `launch ui` (http://127.0.0.1:PORT) instead of starting one"
    )
    args = ap.parse_args()
    browser = args.browser or shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: install Debian's package (apt-get install chromium) or pass --browser")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ui = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        ui = subprocess.Popen(
            [sys.executable, "-m", "tailsweep.orchestrator.cli", "ui", "--dir", args.dir, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        for _ in range(600):  # an MLflow server can take minutes to start on a busy machine
            try:
                exps = _post(base, "experiments/search", {"max_results": 100})["experiments"]
                break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit("launch ui did not come up within 10 minutes")
        ids = [e["experiment_id"] for e in exps]
        runs = _post(
            base,
            "runs/search",
            {"experiment_ids": ids, "max_results": 1000, "order_by": ["attributes.start_time DESC"]},
        ).get("runs", [])
        tags = lambda r: {t["key"]: t["value"] for t in r["data"].get("tags", [])}  # noqa: E731
        parents = [r for r in runs if "tailsweep.sweep_id" in tags(r) and "mlflow.parentRunId" not in tags(r)]
        if args.sweep != "latest":
            parents = [r for r in parents if tags(r)["tailsweep.sweep_id"].startswith(args.sweep)]
        if not parents:
            raise SystemExit(f"no sweep '{args.sweep}' in {args.dir}")
        parent = parents[0]
        exp_id = parent["info"]["experiment_id"]
        kids = [r for r in runs if tags(r).get("mlflow.parentRunId") == parent["info"]["run_id"]]
        children = [r["info"]["run_id"] for r in kids]
        first_seed = min((tags(r).get("seed", "0") for r in kids), default="0")
        compared = [r["info"]["run_id"] for r in kids if tags(r).get("seed") == first_seed][:12] or children[:12]
        sweep_id = tags(parent)["tailsweep.sweep_id"]
        # the runs table filtered to this sweep's trials (one row per trial, its metrics as columns)
        query = urllib.parse.quote(f"tags.`mlflow.parentRunId` = '{parent['info']['run_id']}'")
        shoot(browser, f"{base}/#/experiments/{exp_id}/runs?searchFilter={query}", out / "mlflow-runs.png")
        compare = (
            f"{base}/#/compare-runs?runs={urllib.parse.quote(json.dumps(compared))}"
            f"&experiments={urllib.parse.quote(json.dumps([exp_id]))}"
        )
        shoot(browser, compare, out / "mlflow-compare.png", size="1600,1400")
        print(
            f"sweep {sweep_id}: {len(children)} child runs; wrote {out / 'mlflow-runs.png'} and {out / 'mlflow-compare.png'}"
        )
    finally:  # the UI and the MLflow server it started share a process group: stop them together
        if ui is not None:
            os.killpg(ui.pid, signal.SIGTERM)
            try:
                ui.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(ui.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
