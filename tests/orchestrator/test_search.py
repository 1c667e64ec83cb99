"""search.algorithm tpe | random | grid: the spec checks, the search-space translation and the per-scheme searcher
driven as Tune drives it (suggest, on_trial_complete, save, restore), on a real Optuna study in SQLite."""

from __future__ import annotations

import math

import optuna
import pytest

from tailsweep.orchestrator._plan import plan_trials, planned_count
from tailsweep.orchestrator._search import (
    PerSchemeSearch,
    configuration,
    describe_space,
    optuna_space,
    sampler,
    scheme_space,
    study_storage,
)
from tailsweep.orchestrator.spec import SpecError, load_spec, search_warnings

TPE = [
    "search.algorithm=tpe",
    "search.num_samples=3",
    "seeds=[0, 1]",
    "schemes=[unweighted, {name: effective_number, search: [beta]}, {name: focal, search: {gamma: [0.5, 3.0]}}]",
]


def test_space_translation_ranges_log_scales_and_per_scheme_spaces():
    spec = load_spec(None, [*TPE, "search.lr=[0.0003, 0.003]", "search.weight_decay=[1e-6, 1e-3]"])
    assert scheme_space(spec, 0) == scheme_space(spec, 0)  # unweighted: lr and weight decay only
    assert [d.name for d in scheme_space(spec, 0)] == ["lr", "weight_decay"]
    eff = {d.name: d for d in scheme_space(spec, 1)}
    assert set(eff) == {"1-beta", "lr", "weight_decay"}  # beta is searched as 1 - beta, log-uniformly
    dist = optuna_space(list(eff.values()))
    assert dist["1-beta"] == optuna.distributions.FloatDistribution(1 - 0.9999, 1 - 0.9, log=True)
    assert dist["lr"] == optuna.distributions.FloatDistribution(3e-4, 3e-3, log=True)
    assert dist["weight_decay"].log
    focal = {d.name: d for d in scheme_space(spec, 2)}
    assert optuna_space([focal["gamma"]])["gamma"] == optuna.distributions.FloatDistribution(0.5, 3.0, log=False)
    params, lr, wd = configuration(spec, 1, scheme_space(spec, 1), {"1-beta": 0.01, "lr": 1e-3, "weight_decay": 1e-5})
    assert params["beta"] == pytest.approx(0.99) and lr == 1e-3 and wd == 1e-5
    assert params["focal_gamma"] is None  # the other parameters keep their defaults


def test_only_fixed_entries_are_planned_up_front_and_the_budget_counts_every_seed():
    spec = load_spec(None, TPE)
    assert [t.scheme for t in plan_trials(spec)] == ["unweighted", "unweighted"]
    assert planned_count(spec) == 2 + 2 * 3 * 2


def _drive(search, scores, until=None, result=None):
    """Tune's loop, one trial at a time: suggest, complete with ``scores(plan)`` (or the result ``result(plan)``).
    Returns the plans handed out."""
    plans = []
    n = 0
    while until is None or n < until:
        cfg = search.suggest(f"t{len(plans)}")
        if cfg == PerSchemeSearch.FINISHED:
            break
        plans.append(cfg["trial"])
        done = result(cfg["trial"]) if result else {"val/best": scores(cfg["trial"])}
        search.on_trial_complete(f"t{len(plans) - 1}", done)
        n += 1
    return plans


def _searcher(spec, tmp_path, made):
    def child_run(plan):
        made.append(plan)
        return f"run-{len(made)}"

    return PerSchemeSearch(spec, "sw", study_storage(tmp_path), child_run, fixed=plan_trials(spec))


def _score(plan):  # a smooth objective with a seed effect, so the mean over seeds is checkable
    p = plan["scheme_params"]
    x = (p.get("gamma") or 1.0) + (1 - (p.get("beta") or 0.99)) * 10
    return 1 / (1 + x) + 0.01 * plan["seed"]


def test_each_configuration_runs_once_per_seed_and_its_study_learns_the_mean(tmp_path):
    spec = load_spec(None, TPE)
    made = []
    plans = _drive(_searcher(spec, tmp_path, made), _score)
    assert len(plans) == planned_count(spec) == len(made)
    by_group = {}
    for p in plans:
        by_group.setdefault(p["group"], []).append(p)
    assert all(sorted(p["seed"] for p in g) == [0, 1] for g in by_group.values())
    assert all(len({str(p["scheme_params"]) for p in g}) == 1 for g in by_group.values())  # one config per group
    assert sorted(by_group) == ["0:0", "1:0", "1:1", "1:2", "2:0", "2:1", "2:2"]
    assert len({(p["scheme"], str(p["scheme_params"])) for p in plans}) == 1 + 3 + 3  # no configuration twice
    for entry, name in ((1, "effective_number"), (2, "focal")):
        study = optuna.load_study(study_name=f"sw/{name}", storage=study_storage(tmp_path))
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
        for t in study.trials:
            g = by_group[f"{entry}:{t.number}"]
            assert t.value == pytest.approx(sum(_score(p) for p in g) / 2)  # the mean over the two seeds


def test_a_configuration_whose_seeds_all_fail_is_a_failed_study_trial(tmp_path):
    spec = load_spec(
        None,
        [
            "search.algorithm=tpe",
            "search.num_samples=2",
            "seeds=[0, 1]",
            "schemes=[{name: focal, search: {gamma: [0.5, 3.0]}}]",
        ],
    )
    search = _searcher(spec, tmp_path, [])
    for i in range(2):
        search.suggest(f"t{i}")
        search.on_trial_complete(f"t{i}", None, error=True)
    study = optuna.load_study(study_name="sw/focal", storage=study_storage(tmp_path))
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


def test_a_restored_search_continues_its_studies_without_repeats_or_overrun(tmp_path):
    spec = load_spec(None, TPE)
    made = []
    first = _searcher(spec, tmp_path, made)
    done = _drive(first, _score, until=6)  # the fixed pair, then one configuration of each searched entry
    state = tmp_path / "searcher-state.pkl"
    first.save(str(state))
    first.suggest("lost")  # a new configuration asked after the last saved state, then the driver died: never run
    assert any(
        t.state == optuna.trial.TrialState.RUNNING
        for name in ("effective_number", "focal")
        for t in optuna.load_study(study_name=f"sw/{name}", storage=study_storage(tmp_path)).trials
    )

    again = _searcher(spec, tmp_path, made)
    again.restore(str(state))
    rest = _drive(again, _score)
    plans = done + rest
    assert len(plans) == planned_count(spec)
    per_scheme = {}
    for p in plans:
        per_scheme.setdefault(p["scheme"], []).append(p)
    assert {k: len(v) for k, v in per_scheme.items()} == {"unweighted": 2, "effective_number": 6, "focal": 6}
    assert len({(p["group"], p["seed"]) for p in plans}) == len(plans)
    for name in ("effective_number", "focal"):
        study = optuna.load_study(study_name=f"sw/{name}", storage=study_storage(tmp_path))
        states = [t.state for t in study.trials]
        assert states.count(optuna.trial.TrialState.COMPLETE) == 3
        assert optuna.trial.TrialState.RUNNING not in states  # the lost suggestion was closed as FAIL


def test_grid_runs_every_combination_of_the_listed_values():
    spec = load_spec(
        None,
        [
            "search.algorithm=grid",
            "seeds=[0]",
            "search.lr=[0.001, 0.01]",
            "schemes=[{name: focal, search: {gamma: [0.5, 1.0, 2.0]}}]",
        ],
    )
    trials = plan_trials(spec)
    assert sorted((t.scheme_params["gamma"], t.train.lr) for t in trials) == sorted(
        (g, lr) for g in (0.5, 1.0, 2.0) for lr in (0.001, 0.01)
    )
    assert any("exactly the two values" in w for w in search_warnings(spec))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["search.algorithm=tpe", "schemes=[unweighted, focal]"], "nothing to search"),
        ([*TPE, "scheduler.name=asha"], "use scheduler fifo with tpe"),
        (["search.algorithm=grid", "schemes=[{name: effective_number, search: [beta]}]"], "give the values"),
        (["schemes=[{name: focal, search: {gamma: [0.5, 1, 2]}}]"], "use search.algorithm: grid"),
        (["search.lr=[0.001, 0.002, 0.003]"], "search.lr lists 3 value"),
        (["search.algorithm=grid", "schemes=[{name: focal, search: {gamma: [1, 1, 2]}}]"], "repeat one"),
    ],
)
def test_search_settings_that_cannot_run_are_refused_in_words(overrides, message):
    with pytest.raises(SpecError, match=message):
        load_spec(None, overrides)


def test_budgets_that_cannot_learn_are_warned_about():
    spec = load_spec(
        None,
        [
            *TPE[:1],
            "search.num_samples=1",
            "search.lr=[0.0003, 0.003]",
            "schemes=[{name: effective_number, search: [beta]}]",
        ],
    )
    warnings = " ".join(search_warnings(spec))
    assert "1 configurations for 2 searched parameters" in warnings
    assert "within TPE's random start" in warnings
    assert not search_warnings(
        load_spec(None, [*TPE[:1], "search.num_samples=20", "schemes=[{name: effective_number, search: [beta]}]"])
    )
    assert math.isclose(load_spec(None, [*TPE[:1], "search.num_samples=20", *TPE[3:]]).search.startup(), 5)


MULTI = [*TPE, "search.metrics=[val/macro_ap, val/recall_few]", "search.modes=[max, min]"]


def _two(plan):  # what the worker reports for a multi-objective search: each metric at the selected epoch
    return {"val/best": _score(plan), "best/val/macro_ap": _score(plan), "best/val/recall_few": 0.1 * plan["seed"]}


def test_a_multi_objective_search_learns_each_metrics_mean_over_seeds(tmp_path):
    spec = load_spec(None, MULTI)
    assert (spec.search.metric, spec.search.mode) == ("val/macro_ap", "max")  # the first objective picks
    assert spec.search.objectives() == [("val/macro_ap", "max"), ("val/recall_few", "min")]
    plans = _drive(_searcher(spec, tmp_path, []), None, result=_two)
    assert len(plans) == planned_count(spec)
    assert all(p["objectives"] == ["val/macro_ap", "val/recall_few"] and p["select_metric"] == "val/macro_ap"
               for p in plans)  # fmt: skip
    by_group = {}
    for p in plans:
        by_group.setdefault(p["group"], []).append(p)
    study = optuna.load_study(study_name="sw/focal", storage=study_storage(tmp_path))
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    for t in study.trials:
        g = by_group[f"2:{t.number}"]
        assert t.values == pytest.approx([sum(_score(p) for p in g) / 2, 0.05])  # seeds 0 and 1: 0.1 * 1 / 2
    assert len(study.best_trials) >= 1


def test_a_restored_multi_objective_search_keeps_its_studies(tmp_path):
    spec = load_spec(None, MULTI)
    made = []
    first = _searcher(spec, tmp_path, made)
    done = _drive(first, None, until=6, result=_two)
    state = tmp_path / "searcher-state.pkl"
    first.save(str(state))
    again = _searcher(spec, tmp_path, made)
    again.restore(str(state))
    rest = _drive(again, None, result=_two)
    plans = done + rest
    assert len(plans) == planned_count(spec) and len({(p["group"], p["seed"]) for p in plans}) == len(plans)
    for name in ("effective_number", "focal"):
        study = optuna.load_study(study_name=f"sw/{name}", storage=study_storage(tmp_path))
        assert [len(t.values) for t in study.trials] == [2, 2, 2]


def test_nsga2_from_100_configurations_of_a_multi_objective_search_and_tpe_below():
    multi = ["search.metrics=[val/macro_ap, val/recall_few]", "search.algorithm=tpe", "search.lr=[0.001, 0.01]"]
    big = load_spec(None, [*multi, "search.num_samples=100"])
    nsga = sampler(big, 0)
    assert isinstance(nsga, optuna.samplers.NSGAIISampler) and nsga._population_size == 10
    assert "NSGA-II (multi-objective: val/macro_ap max, val/recall_few max)" in describe_space(big)[0]
    assert isinstance(sampler(load_spec(None, [*multi, "search.num_samples=99"]), 0), optuna.samplers.TPESampler)
    one = load_spec(None, ["search.algorithm=tpe", "search.lr=[0.001, 0.01]", "search.num_samples=200"])
    assert isinstance(sampler(one, 0), optuna.samplers.TPESampler)


def test_a_stored_multi_objective_spec_loads_again(tmp_path):
    """Resume reads the stored spec, which carries search.metric / mode filled in from search.metrics."""
    import yaml

    from tailsweep.orchestrator.spec import spec_to_yaml

    spec = load_spec(None, MULTI)
    path = tmp_path / "spec.yaml"
    path.write_text(spec_to_yaml(spec))
    again = load_spec(path)
    assert again.search == spec.search
    assert yaml.safe_load(path.read_text())["search"]["modes"] == ["max", "min"]
