"""validate(): every rule once, every problem at once, the plan when it can run."""

import pytest

from tailsweep.orchestrator.spec import SpecError, load_spec
from tailsweep.orchestrator.validate import SweepPlan, open_table, pipeline_problems, validate

CPU2 = {"CPU": 2.0, "GPU": 0.0}


def test_a_runnable_spec_gives_its_plan_with_resolved_trials(features_table):
    spec = load_spec(None, [f"data.path={features_table.root}", "model.backbone=mlp", "schemes=[unweighted, focal]"])
    plan = validate(spec, CPU2)
    assert isinstance(plan, SweepPlan) and plan.total == 4 and len(plan.trials) == 4
    assert plan.resources["max_concurrent_trials"] == 2 and plan.stats.num_labels == 4
    assert {t.train.threads for t in plan.trials} == {1}  # resolved from resources.cpus_per_worker
    assert all(t.data == str(features_table.root) for t in plan.trials)


def test_every_problem_is_reported_at_once(image_table):
    spec = load_spec(
        None,
        [
            f"data.path={image_table.root}",
            "model.backbone=mlp",  # an image table
            "schemes=[{name: mcloss, oversample: lpros}]",  # lpros with streaming; mcloss: hierarchy ok
            "train.pipeline=stream",  # without model.image_size
            "resources.workers_per_trial=4",  # 4 CPUs on a 2-CPU machine
        ],
    )
    with pytest.raises(SpecError) as e:
        validate(spec, CPU2, source="s.yaml")
    msg = str(e.value)
    assert msg.startswith("s.yaml: 4 problem(s)")
    for part in ("model.backbone = 'mlp'", "set model.image_size", "oversample = lpros", "4 CPUs but the cluster"):
        assert part in msg, msg


def test_the_table_is_validated_once_with_each_image_decoded_once(image_table, monkeypatch):
    from tailsweep.datasets import _validate

    seen = []
    real = _validate._decodable
    monkeypatch.setattr(_validate, "_decodable", lambda sources: seen.extend(sources) or real(sources))
    spec = load_spec(None, [f"data.path={image_table.root}", "model.backbone=resnet18"])
    validate(spec, CPU2)
    rows = sum(image_table.read(s, ["id"]).num_rows for s in ("train", "val", "test"))
    assert len(seen) == rows


def test_a_broken_table_is_named_and_nothing_else_is_needed(tmp_path):
    table, problems = open_table(tmp_path / "nope")
    assert table is None and problems and str(tmp_path / "nope") in problems[0]


def test_streaming_rules_apply_to_image_tables_only(features_table):
    from tailsweep.datasets import LabelTable

    spec = load_spec(None, ["train.pipeline=stream", "schemes=[{name: unweighted}]"])
    assert any("model.image_size" in p for p in pipeline_problems(spec))  # (no table known yet: assume images)
    assert pipeline_problems(spec, LabelTable(features_table.root)) == []  # features are never streamed
