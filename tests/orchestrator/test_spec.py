from pathlib import Path

import pytest

from tailsweep.orchestrator.spec import SpecError, SweepSpec, check_spec, load_spec, spec_to_yaml

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_defaults_are_the_demo():
    s = load_spec()
    assert s == SweepSpec()
    assert [x.name for x in s.schemes] == ["unweighted", "inverse_frequency", "effective_number", "focal"]
    assert s.seeds == [0, 1] and s.train.epochs >= 3
    assert s.tracking_uri.startswith("sqlite:////")  # absolute path: four slashes


def test_every_problem_at_once_with_key_value_and_allowed_values():
    with pytest.raises(SpecError) as e:
        load_spec(
            None,
            [
                "train.epochs=-1",
                "schemes=[nope]",
                "scheduler.name=hyperband",
                "train.lr=0",
                "trian.epochs=3",
                "search.metric=val/acc",
            ],
        )
    text = str(e.value)
    assert "6 problem(s)" in text
    assert "train.epochs = -1: Input should be greater than 0" in text
    assert "schemes.0.name = \"nope\": unknown scheme 'nope'; allowed: unweighted, inverse_frequency" in text
    assert 'scheduler.name = "hyperband"' in text and "'fifo' or 'asha'" in text
    assert "train.lr = 0" in text
    assert "trian: unknown key" in text
    assert 'search.metric = "val/acc": unknown metric; allowed:' in text and "val/recall_few" in text


def test_scheme_params_checked_against_the_registry():
    with pytest.raises(SpecError) as e:
        load_spec(None, ["schemes=[{name: focal, params: {gama: 1}}, {name: unweighted, search: [beta]}]"])
    text = str(e.value)
    assert "scheme 'focal' has no parameter 'gama'" in text
    assert "scheme 'unweighted' cannot search 'beta'" in text


def test_ensemble_settings_rejected_before_a_sweep():
    with pytest.raises(SpecError) as e:
        load_spec(
            None,
            [
                "schemes=[{name: node_imbalance_focal, params: {heads: 1, uncertainty: epistemic}}, "
                "{name: focal, oversample: lpros}, {name: node_imbalance, search: [schedule]}]"
            ],
        )
    text = str(e.value)
    assert "uncertainty 'epistemic' measures disagreement between heads: heads = 1 has none" in text
    assert "oversample: lpros balances label paths of a hierarchy; scheme 'focal' is flat" in text
    assert "parameter 'schedule' is a choice" in text


def test_two_entries_of_one_scheme_are_told_apart_by_label():
    spec = load_spec(
        None,
        [
            "schemes=[{name: node_imbalance_focal, label: nif-margin}, "
            "{name: node_imbalance_focal, label: nif-gmu, params: {uncertainty: gated_margin}}]"
        ],
    )
    assert [s.display for s in spec.schemes] == ["nif-margin", "nif-gmu"]
    with pytest.raises(SpecError, match="both called 'x'"):
        load_spec(None, ["schemes=[{name: focal, label: x}, {name: unweighted, label: x}]"])


def test_overrides_beat_the_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("train: {epochs: 7, lr: 0.01}\nschemes: [focal]\n")
    s = load_spec(f, ["train.epochs=2"])
    assert s.train.epochs == 2 and s.train.lr == 0.01 and [x.name for x in s.schemes] == ["focal"]


def test_bad_yaml_and_missing_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(f)
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="expected key=value"):
        load_spec(None, ["train.epochs"])


def test_spec_is_frozen_and_roundtrips():
    s = load_spec()
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        s.train.epochs = 9  # type: ignore[misc]
    import yaml

    assert SweepSpec.model_validate(yaml.safe_load(spec_to_yaml(s))) == s


def test_data_problems_are_reported_before_anything_starts(tmp_path):
    s = load_spec(None, [f"data.path={tmp_path / 'missing'}"])
    problems = check_spec(s)
    assert problems and "no such folder" in problems[0]


def test_features_table_needs_the_mlp(features_table):
    s = load_spec(None, [f"data.path={features_table.root}"])
    assert any("use backbone: mlp" in p for p in check_spec(s))
    assert check_spec(load_spec(None, [f"data.path={features_table.root}", "model.backbone=mlp"])) == []


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    spec = load_spec(path)
    assert check_spec(spec, check_data=spec.data.path is None) == []


def test_demo_config_is_the_builtin_demo():
    # the same sweep; its tracking.dir is the repository's tailsweep-runs (relative to the file), wherever it runs
    repo = Path(CONFIGS[0]).resolve().parent.parent
    demo = load_spec(Path(CONFIGS[0]).parent / "demo.yaml")
    assert demo.tracking.dir == str(repo / "tailsweep-runs")
    assert demo.model_copy(update={"tracking": SweepSpec().tracking}) == SweepSpec()


def test_a_carved_validation_split_is_not_selected_on_when_trained_on(tmp_path):
    from tailsweep.datasets._hmc import import_hmc
    from tailsweep.orchestrator.spec import check_spec, load_spec
    from tests.datasets.test_hmc import OTHERS_TREE, _others

    _others(tmp_path / "src" / "enron_others", ["Enron_corr_trainvalid.arff", "Enron_corr_test.arff"], OTHERS_TREE)
    import_hmc("enron_others", tmp_path / "t", tmp_path / "src")
    base = [f"data.path={tmp_path / 't'}", "model.backbone=mlp", "schemes=[mcloss]"]
    selecting = load_spec(None, [*base, "train.train_splits=[train, val]", "train.final_model=best"])
    problems = check_spec(selecting)
    assert any("has no validation file" in p and "final_model: last" in p for p in problems)
    protocol = load_spec(None, [*base, "train.train_splits=[train, val]", "train.final_model=last"])
    assert check_spec(protocol) == []
    held_out = load_spec(None, [*base, "train.final_model=best"])  # trains on train: val is held out
    assert check_spec(held_out) == []
