"""The Pareto front of a multi-objective search (analysis/pareto.py), worked by hand."""

import math

import numpy as np

from tailsweep.analysis.pareto import pareto_blocks, pareto_mask
from tailsweep.analysis.report import Sweep, Trial
from tailsweep.analysis.search import search_settings


def test_pareto_mask_by_hand_for_both_modes_ties_and_nan():
    pts = [[0.5, 0.2], [0.4, 0.3], [0.3, 0.1], [0.5, 0.2], [math.nan, 1.0]]
    # (0.3, 0.1) is dominated by (0.5, 0.2); the two equal points do not dominate each other; NaN is left out
    assert pareto_mask(pts, ["max", "max"]).tolist() == [True, True, False, True, False]
    # minimising the second: (0.4, 0.3) is worse than (0.5, 0.2) on both
    assert pareto_mask(pts[:3], ["max", "min"]).tolist() == [True, False, True]
    assert pareto_mask([[1.0, 1.0]], ["min", "min"]).tolist() == [True]


def _config_trials(entry, draw, scheme, values):
    return [
        Trial(f"r{entry}{draw}{seed}", f"{scheme} c{draw} seed={seed}", f"{scheme} c{draw}", scheme, seed, "FINISHED",
              {"test/macro_ap": a, "test/recall_few": b, "best/val/macro_ap": a, "best/val/recall_few": b},
              group=f"{entry}:{draw}")
        for seed, (a, b) in enumerate(values)
    ]  # fmt: skip


def test_the_report_draws_the_fronts_and_names_schemes_off_the_front(tmp_path):
    trials = _config_trials(0, 0, "unweighted", [(0.60, 0.10), (0.62, 0.12)])  # mean (0.61, 0.11)
    trials += _config_trials(1, 0, "focal", [(0.50, 0.30), (0.50, 0.30)])  # (0.5, 0.3): on the front
    trials += _config_trials(1, 1, "focal", [(0.40, 0.20), (0.40, 0.20)])  # dominated by focal c0
    trials += _config_trials(2, 0, "inverse_frequency", [(0.45, 0.05), (0.45, 0.05)])  # dominated by unweighted
    params = {
        "spec.search.algorithm": "tpe",
        "spec.schemes": '[{"name": "unweighted"}, {"name": "focal"}, {"name": "inverse_frequency"}]',
        "spec.search.metrics": '["val/macro_ap", "val/recall_few"]',
        "spec.search.modes": '["max", "max"]',
        "spec.search.metric": "val/macro_ap",
    }
    sweep = Sweep("sw", "parent", "sw", trials, params)
    settings = search_settings(params)
    assert settings["metrics"] == ["val/macro_ap", "val/recall_few"] and settings["modes"] == ["max", "max"]
    blocks = pareto_blocks(sweep, settings, tmp_path)
    assert (tmp_path / "pareto_front.png").stat().st_size > 0
    text = " ".join(b[1] for b in blocks if b[0] == "p")
    assert "2 of 4 configurations are on the front, from 2 of 3 schemes" in text
    assert "Schemes with no configuration on the front: `inverse_frequency`." in text
    table = next(b for b in blocks if b[0] == "table")
    assert [r[:2] for r in table[2]] == [["unweighted", "unweighted c0"], ["focal", "focal c0"]]
    assert table[2][0][3:] == ["0.610", "0.110", "0.610", "0.110"]
    assert pareto_blocks(sweep, search_settings({**params, "spec.search.metrics": "null"}), tmp_path) == []


def test_mask_handles_an_empty_set():
    assert pareto_mask(np.zeros((0, 2)), ["max", "max"]).tolist() == []


def test_importances_of_a_multi_objective_study_are_for_the_first_metric(tmp_path):
    import optuna

    from tailsweep.analysis.search import importances

    path = tmp_path / "optuna.db"
    study = optuna.create_study(study_name="sw/focal", storage=f"sqlite:///{path}", directions=["maximize", "maximize"])
    for g in (0.5, 1.0, 2.0, 3.0):
        trial = study.ask({"gamma": optuna.distributions.FloatDistribution(0.5, 3.0)})
        study.tell(trial, [1 / (1 + g), g])
    got = importances(path, "sw", ["focal"])
    assert got["focal"] == {"gamma": 1.0}
