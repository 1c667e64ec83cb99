"""The report's search section: configurations in suggestion order, each entry's best on validation, the
history and importance plots from a real Optuna study in SQLite."""

from __future__ import annotations

import json
import math

import optuna

from tailsweep.analysis.report import Sweep, Trial
from tailsweep.analysis.search import (
    best_settings,
    configurations,
    importances,
    search_blocks,
    search_settings,
)

PARAMS = {
    "spec.search.algorithm": "tpe",
    "spec.search.num_samples": "4",
    "spec.search.startup_trials": "null",
    "spec.search.metric": "val/macro_ap",
    "spec.search.mode": "max",
    "spec.search.lr": "[0.001, 0.01]",
    "spec.schemes": json.dumps(
        [{"name": "unweighted", "search": {}}, {"name": "focal", "search": {"gamma": [0.5, 3.0]}}]
    ),
}


def _trial(group, setting, seed, val, test=0.5, status="FINISHED"):
    metrics = {"val/best": val, "test/macro_ap": test, "test/micro_auprc": test} if status == "FINISHED" else {}
    return Trial(
        f"{group}-{seed}", f"{setting} seed={seed}", setting, setting.split()[0], seed, status, metrics, group=group
    )


def _sweep(tmp_path):
    trials = []
    vals = {0: [0.50, 0.70, 0.60, 0.55], 1: [0.40, 0.45, 0.80, 0.30]}
    for entry, name in ((0, "unweighted"), (1, "focal")):
        for draw, v in enumerate(vals[entry]):
            setting = f"{name} lr={draw}"
            trials += [_trial(f"{entry}:{draw}", setting, s, v + d) for s, d in ((0, -0.01), (1, 0.01))]
    trials.append(_trial("1:3", "focal lr=3", 2, math.nan, status="FAILED"))  # a failed third seed: left out
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    for entry, name, dims in ((0, "unweighted", ["lr"]), (1, "focal", ["gamma", "lr"])):
        study = optuna.create_study(study_name=f"sw/{name}", storage=storage, direction="maximize")
        for draw, v in enumerate(vals[entry]):
            dist = {
                "lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True),
                "gamma": optuna.distributions.FloatDistribution(0.5, 3.0),
            }
            params = {"lr": 1e-3 * (1 + 2 * draw), "gamma": 0.5 + 0.8 * draw}
            study.add_trial(
                optuna.trial.create_trial(
                    params={k: params[k] for k in dims}, distributions={k: dist[k] for k in dims}, value=v
                )
            )
    return Sweep("sw", "parent", "sw", trials, PARAMS), tmp_path / "optuna.db"


def test_configurations_come_in_suggestion_order_and_the_best_is_chosen_on_validation(tmp_path):
    sweep, _ = _sweep(tmp_path)
    settings = search_settings(sweep.params)
    assert settings["searched"] == [0, 1]  # search.lr: unweighted is tuned too
    configs = configurations(sweep.trials)
    assert [c["draw"] for c in configs[1]] == [0, 1, 2, 3]
    assert math.isclose(configs[1][2]["score"], 0.80)  # the mean over its seeds
    assert best_settings(sweep, settings) == {"unweighted lr=1", "focal lr=2"}
    assert search_settings({"spec.search.algorithm": "random"}) is None


def test_the_search_section_draws_the_history_and_the_importances(tmp_path):
    sweep, db = _sweep(tmp_path)
    out = tmp_path / "report"
    out.mkdir()
    blocks = search_blocks(sweep, search_settings(sweep.params), out, db)
    images = [b[1] for b in blocks if b[0] == "img"]
    assert images == ["search_history.png", "param_importances.png"]
    assert all((out / i).stat().st_size > 10_000 for i in images)
    (table,) = [b for b in blocks if b[0] == "table"]
    assert [r[:3] for r in table[2]] == [["unweighted", "unweighted lr=1", "4"], ["focal", "focal lr=2", "4"]]
    text = " ".join(b[1] for b in blocks if b[0] == "p")
    assert "optuna-dashboard sqlite:///" in text and "One parameter only" in text and "first 2 drawn at random" in text
    imps = importances(db, "sw", ["unweighted", "focal"])
    assert set(imps["focal"]) == {"gamma", "lr"} and math.isclose(sum(imps["focal"].values()), 1.0)
    assert imps["unweighted"] == {"lr": 1.0}


def test_a_missing_study_file_is_said_not_hidden(tmp_path):
    sweep, _ = _sweep(tmp_path)
    blocks = search_blocks(sweep, search_settings(sweep.params), tmp_path, None)
    assert any("optuna.db) was found neither" in b[1] for b in blocks if b[0] == "p")
