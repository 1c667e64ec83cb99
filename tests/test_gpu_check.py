"""benchmarks/gpu_check.py as a smoke test on the CPU: every part runs and writes its figures."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_features_table

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_every_part_on_the_cpu(tmp_path):
    hmc = make_features_table(tmp_path / "hmc")  # a small hierarchy stands in for cellcycle_GO
    out = tmp_path / "gpu.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--hmc-table", str(hmc.root),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    figures = json.loads(out.read_text())
    cycles = figures["kept_workers"]
    assert [c["cycle"] for c in cycles] == [1, 2, 3] and all(c["group_destroyed"] and c["epochs"] == 1 for c in cycles)
    assert {p["pipeline"] for p in figures["pipelines"]} == {"memory", "stream"}
    assert all(p["loop_img_s"] > 0 and p["bare_img_s"] > 0 for p in figures["pipelines"])
    assert [h["scheme"] for h in figures["hmc"]] == ["mcloss", "node_imbalance_focal"]
    assert all(0 <= h["test_micro_auprc"] <= 1 for h in figures["hmc"])
    assert figures["host_syncs"]["syncs_per_step"] is None  # CUDA only
    cpu, gpu = figures["decode"]
    assert cpu["decode"] == "cpu" and cpu["loop_img_s"] > 0 and 0 <= cpu["input_wait_frac"] <= 1
    assert gpu == {"decode": "gpu", "skipped": "n/a without CUDA"}
    scale = figures["mcloss_scale"]
    assert scale["nodes"] == 2_000 and scale["fb_s"] > 0 and scale["peak_gpu_gb"] is None
