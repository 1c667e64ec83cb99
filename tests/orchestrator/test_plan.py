import pytest

from tailsweep.orchestrator._plan import plan_trials
from tailsweep.orchestrator._sweep import plan_resources
from tailsweep.orchestrator.spec import SpecError, load_spec


def test_demo_plan_is_schemes_times_seeds():
    trials = plan_trials(load_spec())
    assert len(trials) == 8
    assert {t.scheme for t in trials} == {"unweighted", "inverse_frequency", "effective_number", "focal"}
    assert [t.label for t in trials][:2] == ["unweighted seed=0", "unweighted seed=1"]


def test_search_draws_are_shared_by_seeds_and_deterministic():
    spec = load_spec(
        None,
        [
            "schemes=[unweighted, {name: effective_number, search: [beta]}]",
            "search.num_samples=3",
            "search.lr=[0.0001, 0.01]",
            "seeds=[0, 1]",
        ],
    )
    trials = plan_trials(spec)
    assert len(trials) == (3 + 3) * 2  # lr is searched, so unweighted gets 3 draws too
    by_group = {}
    for t in trials:
        by_group.setdefault(t.group, []).append(t)
    for members in by_group.values():
        assert len({(m.train.lr, str(m.scheme_params)) for m in members}) == 1
        assert sorted(m.seed for m in members) == [0, 1]
        # one setting name per group, shared by its seeds; the run name adds the seed
        assert len({m.setting for m in members}) == 1
        assert all(m.label == f"{m.setting} seed={m.seed}" and "seed" not in m.setting for m in members)
    assert len({ms[0].setting for ms in by_group.values()}) == len(by_group)  # distinct draws, distinct names
    betas = [t.scheme_params["beta"] for t in trials if t.scheme == "effective_number"]
    assert all(0.9 <= b <= 0.9999 for b in betas) and len(set(betas)) == 3
    assert plan_trials(spec) == trials


def test_resources_derived_from_the_cluster():
    spec = load_spec()
    r = plan_resources(spec, {"CPU": 2.0}, n_trials=8)
    assert r["max_concurrent_trials"] == 2 and not r["use_gpu"] and r["threads"] == 1
    two = load_spec(None, ["resources.workers_per_trial=2"])
    assert plan_resources(two, {"CPU": 2.0}, 8)["max_concurrent_trials"] == 1
    gpu = plan_resources(spec, {"CPU": 16.0, "GPU": 1.0}, 8)
    assert gpu["use_gpu"] and gpu["max_concurrent_trials"] == 1


def test_a_plan_that_cannot_be_placed_is_refused():
    with pytest.raises(SpecError, match="needs 3 workers x 1 CPU = 3 CPUs but the cluster has 2"):
        plan_resources(load_spec(None, ["resources.workers_per_trial=3"]), {"CPU": 2.0}, 4)


def test_a_streaming_plan_that_would_starve_is_refused_with_the_reason():
    ok = load_spec(None, ["train.pipeline=stream", "model.image_size=64", "resources.cpus_per_worker=2"])
    assert plan_resources(ok, {"CPU": 2.0}, 4)["loader_workers"] == 1  # one spare CPU: one loader process
    one = load_spec(None, ["train.pipeline=stream", "model.image_size=64"])
    assert plan_resources(one, {"CPU": 2.0}, 4)["loader_workers"] == 0  # decode in the training process
    starving = load_spec(None, ["train.pipeline=stream", "model.image_size=64", "train.loader_workers=2"])
    with pytest.raises(SpecError) as e:
        plan_resources(starving, {"CPU": 2.0}, 4)
    assert "train.loader_workers = 2" in str(e.value) and "raise resources.cpus_per_worker to 3" in str(e.value)


def test_gpu_decode_on_a_cluster_without_gpus_is_refused():
    spec = load_spec(None, ["train.decode=gpu"])
    assert plan_resources(spec, {"CPU": 16.0, "GPU": 1.0}, 4)["use_gpu"]
    with pytest.raises(SpecError, match="train.decode = 'gpu' decodes images on the GPU, but the cluster has 0 GPUs"):
        plan_resources(spec, {"CPU": 2.0}, 4)
    assert plan_resources(load_spec(None, ["train.decode=auto"]), {"CPU": 2.0}, 4)["max_concurrent_trials"] == 2


def test_an_entry_can_run_its_own_seeds():
    spec = load_spec(None, ["schemes=[unweighted, {name: focal, seeds: [2]}]", "seeds=[0, 1, 2]"])
    assert [(t.scheme, t.seed) for t in plan_trials(spec)] == [
        ("unweighted", 0),
        ("unweighted", 1),
        ("unweighted", 2),
        ("focal", 2),
    ]
    with pytest.raises(SpecError, match=r"seeds must be distinct, got \[1, 1\]"):
        load_spec(None, ["schemes=[{name: focal, seeds: [1, 1]}]"])
