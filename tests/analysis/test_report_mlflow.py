"""``launch report`` against a real MLflow store (SQLite in tmp_path, no mocks): settings read back by their plan
group and seed, the verdict first in the report and as the parent run's description, the embedding cache's share
of the wall time in its own column."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from tailsweep.analysis.report import MAX_NOTE, describe_run
from tailsweep.analysis.tags import KIND_TAG, NOTE_TAG, PARENT_TAG, STARTED_TAG, SWEEP_TAG
from tailsweep.orchestrator.cli import main

COUNTS = [400, 150, 60, 30, 12, 5]
BUCKETS = ["many", "many", "medium", "medium", "few", "few"]


def _child(client, exp, parent, folder, group, setting, scheme, seed, y, p, embed_s=0.0, legacy=False):
    name = f"{setting} seed={seed}"
    run = client.create_run(exp, run_name=name, tags={SWEEP_TAG: "sw-1", PARENT_TAG: parent})
    rid = run.info.run_id
    params = {"group": group, "seed": str(seed), "scheme": scheme, "variant": scheme}
    if not legacy:  # runs recorded before the setting's name was a param: the report falls back to the run name
        params["setting"] = setting
    for k, v in params.items():
        client.log_param(rid, k, v)
    client.set_tag(rid, STARTED_TAG, f"{time.time() - 30:.3f}")
    metrics = {"test/macro_ap": float(p[y].mean()), "test/micro_auprc": 0.5 + 0.1 * float(p[y].mean()), "epoch": 1}
    metrics |= {"test/macro_f1": 0.4, "test/recall_many": 0.6, "test/recall_few": 0.2, "time/embed_s": embed_s}
    for k, v in metrics.items():
        client.log_metric(rid, k, v)
    d = folder / rid
    d.mkdir()
    rows = ["label,train_count,bucket,ap,f1"] + [
        f"l{j},{c},{b},0.5,0.4" for j, (c, b) in enumerate(zip(COUNTS, BUCKETS, strict=True))
    ]
    (d / "per_label_test.csv").write_text("\n".join(rows) + "\n")
    np.savez(
        d / "test_predictions.npz",
        p=p.astype(np.float16),
        y=y,
        rows=np.arange(len(y), dtype=np.int32),
        n_test=np.int64(len(y)),
    )
    client.log_artifact(rid, str(d / "per_label_test.csv"))
    client.log_artifact(rid, str(d / "test_predictions.npz"))
    client.set_terminated(rid, "FINISHED")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite MLflow store for the module (creating one takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return uri, MlflowClient(uri)


def test_the_verdict_leads_the_report_and_is_the_parent_runs_description(tmp_path, store):
    uri, client = store
    art = Path(uri.removeprefix("sqlite:///")).parent / "art-verdict"  # in the store's folder: the report logs there
    exp = client.create_experiment("t", artifact_location=art.as_uri())
    parent = client.create_run(exp, run_name="sw-1", tags={SWEEP_TAG: "sw-1", KIND_TAG: "sweep"}).info.run_id
    rng = np.random.default_rng(0)
    y = rng.random((300, 6)) < np.array([0.4, 0.3, 0.2, 0.15, 0.08, 0.05])
    folder = tmp_path / "files"
    folder.mkdir()
    for seed in (0, 1):
        noise = np.random.default_rng(10 + seed).normal(size=y.shape)
        base = 1 / (1 + np.exp(-(1.0 * y + noise)))
        # the baseline built the embedding cache in its first seed (the others read it)
        _child(
            client, exp, parent, folder, "0:0", "unweighted", "unweighted", seed, y, base, 300.0 if seed == 0 else 0.2
        )
        _child(client, exp, parent, folder, "1:0", "focal γ=2", "focal", seed, y, 1 / (1 + np.exp(-(2.5 * y + noise))))
        _child(client, exp, parent, folder, "2:0", "copy", "inverse_frequency", seed, y, base.copy(), legacy=True)
    client.set_terminated(parent, "FINISHED")

    out = CliRunner().invoke(main, ["report", "latest", "--uri", uri, "--out", str(tmp_path / "out")])

    assert out.exit_code == 0, out.output
    md = tmp_path / "out" / "report.md"
    assert f"wrote {md} (6/6 trials complete)" in out.output.replace("\n", "")  # the CLI names the report's path
    assert out.output.startswith("## Verdict")  # and prints the verdict
    text = md.read_text()
    rows = {line.split(" | ")[0] for line in text.split("## Headline")[1].splitlines() if line.startswith("| ")}
    assert rows >= {"| unweighted", "| focal γ=2", "| copy"}  # the legacy runs' setting too
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[:3] == [
        "## Verdict",
        "## Headline metrics (test)",
        "## Against `unweighted` on the test rows (paired bootstrap, 1000 resamples)",
    ]
    verdict = text.split("## Verdict")[1].split("## Headline")[0]
    assert "`focal γ=2` beats `unweighted` on micro AU(PRC) by +" in verdict
    assert "`copy` beats" not in verdict and "No headline difference holds for `copy`" in verdict
    # seeds as a range, never a Student-t interval; the cache build in its own column, with a footnote
    headline = text.split("## Headline metrics (test)")[1].split("## ")[0]
    assert "–" in headline and " ± " not in headline and "of which embedding cache" in headline
    assert "1 trial(s) spent a second or more on it, `unweighted seed=0` the longest: 300 s" in headline
    row = next(line for line in headline.splitlines() if line.startswith("| unweighted |"))
    cells = row.split(" | ")  # macro AP: the mean of the two seeds, then their range, all inside [0, 1]
    mean, low, high = (float(x) for x in cells[2].replace("(", "").replace(")", "").replace("–", " ").split())
    assert 0 <= low < mean < high <= 1 and abs(mean - (low + high) / 2) < 0.0011  # two seeds: the midpoint
    assert row.endswith("| 150 s |")  # median of 300 s and 0.2 s
    # the same verdict as the parent run's description (the MLflow UI shows it on the run's page)
    note = client.get_run(parent).data.tags[NOTE_TAG]
    assert note.startswith("## Verdict") and "`focal γ=2` beats `unweighted`" in note and "report/report.md" in note


def test_a_verdict_past_mlflows_tag_limit_is_cut_at_a_sentence_and_says_so(store):
    _, client = store
    run = client.create_run(client.create_experiment("long")).info.run_id
    describe_run(client, run, "## Verdict\n\n" + "`x` beats `y` on macro AP. " * 600, "report/report.md")
    note = client.get_run(run).data.tags[NOTE_TAG]
    assert len(note) <= MAX_NOTE and "macro AP. … (cut to MLflow's limit)" in note
    assert note.endswith("The full report: `report/report.md` in this run's artifacts.\n")
