"""A real multi-objective tpe sweep (local Ray, Tune + Train, SQLite MLflow and Optuna storage): the studies
learn two metrics, the report draws the Pareto front, and the kept validation scores give post-hoc settings."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from tailsweep.orchestrator._search import study_storage
from tailsweep.orchestrator._sweep import run_sweep
from tailsweep.orchestrator._tracking import PARENT_TAG
from tests.conftest import make_features_table
from tests.integration.test_sweep import _spec

pytestmark = pytest.mark.integration


def test_a_multi_objective_sweep_reports_its_front_and_post_hoc_settings(tmp_path):
    table = make_features_table(tmp_path / "t", n=(200, 60, 60))
    spec = _spec(
        tmp_path,
        table,
        "schemes=[unweighted, {name: focal, search: {gamma: [0.5, 3.0]}}]",
        "seeds=[0]",
        "train.epochs=1",
        "search.algorithm=tpe",
        "search.num_samples=2",
        "search.metrics=[val/macro_ap, val/recall_medium]",  # the tiny table has no few-shot label
    )
    result = run_sweep(spec)
    client = MlflowClient(spec.tracking_uri)
    children = client.search_runs(
        [result.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'"
    )
    assert len(children) == 1 + 2 and {r.info.status for r in children} == {"FINISHED"}
    for run in children:  # each trial reports the objectives at its selected epoch, and keeps its val scores
        assert {"best/val/macro_ap", "best/val/recall_medium"} <= set(run.data.metrics)
        path = client.download_artifacts(run.info.run_id, "test_predictions.npz", str(tmp_path / run.info.run_id))
        with np.load(path) as z:
            assert {"p", "val_p", "val_y", "train_count", "n_train"} <= set(z.files)
            assert z["val_p"].shape == z["val_y"].shape and len(z["val_p"]) == int(z["n_val"]) == 60
    study = optuna.load_study(study_name=f"{result.sweep_id}/focal", storage=study_storage(result.report_dir))
    assert len(study.directions) == 2 and len(study.trials) == 2
    report = result.report_dir / "report"
    full = (report / "report.md").read_text()
    assert "## Trade-off: the Pareto front (multi-objective search)" in full
    assert (report / "pareto_front.png").stat().st_size > 0
    assert "configurations are on the front, from" in full
    assert "## Post-hoc logit adjustment (no retraining)" in full and "unweighted + post-hoc τ=" in full
