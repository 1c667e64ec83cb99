import pytest

from tailsweep.datasets import LabelStats
from tailsweep.losses import SCHEMES, UnknownSchemeError, build_loss, get_scheme

STATS = LabelStats.from_counts([10, 2], n_train=20)


def test_unknown_scheme_lists_valid_names():
    with pytest.raises(UnknownSchemeError) as e:
        get_scheme("focall")
    assert "did you mean focal" in str(e.value)
    for name in SCHEMES:
        assert name in str(e.value)


def test_unknown_param_is_named():
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['gama'\].*takes \['alpha', 'gamma'\]"):
        build_loss("focal", STATS, gama=1.0)


def test_every_entry_documents_its_params():
    for name, info in SCHEMES.items():
        assert info.name == name and info.paper and info.summary
        for p in info.params.values():
            assert p.doc
            if p.searchable:
                assert p.low < p.high


def test_param_sampling_stays_in_range():
    import numpy as np

    rng = np.random.default_rng(0)
    beta = SCHEMES["effective_number"].params["beta"]
    draws = [beta.sample(rng) for _ in range(200)]
    assert min(draws) >= beta.low and max(draws) <= beta.high
    assert sum(d > 0.999 for d in draws) > 20  # log on 1 - beta: the top decade is well covered


FOCAL_MODIFIED = (
    "unweighted",
    "inverse_frequency",
    "sqrt_inverse_frequency",
    "pos_weight",
    "effective_number",
    "distribution_balanced",
    "logit_adjusted",
)


def test_focal_gamma_is_a_quiet_nullable_modifier_of_the_flat_schemes():
    for name, info in SCHEMES.items():
        if name in FOCAL_MODIFIED:
            p = info.params["focal_gamma"]
            assert p.default is None and p.nullable and p.quiet and (p.low, p.high) == (0.5, 3.0)
            assert build_loss(name, STATS, focal_gamma=2.0) is not None  # from_label_stats takes it
        else:
            assert "focal_gamma" not in info.params  # focal and asymmetric focus on their own


def test_new_schemes_are_registered_with_search_ranges():
    assert SCHEMES["logit_adjusted"].params["tau"].searchable
    db = SCHEMES["distribution_balanced"].params
    assert {k: db[k].default for k in ("alpha", "beta", "mu", "lam", "kappa")} == {
        "alpha": 0.1,
        "beta": 10.0,
        "mu": 0.2,
        "lam": 2.0,
        "kappa": 0.05,
    }
    problems = SCHEMES["distribution_balanced"].problems({"lam": 0})
    assert problems and "scheme 'distribution_balanced'" in problems[0] and "lam" in problems[0]


def test_the_newer_schemes_are_registered_with_domains_and_references():
    tw = SCHEMES["two_way"]
    assert {k: (p.default, p.domain(), p.scale) for k, p in tw.params.items()} == {
        "t_pos": (4.0, "> 0", "log"),
        "t_neg": (1.0, "> 0", "log"),
    }
    assert "Kobayashi" in tw.paper and not tw.needs_hierarchy
    for key in ("t_pos", "t_neg"):
        problems = tw.problems({key: 0})
        assert problems == [f"scheme 'two_way': parameter '{key}' must be > 0, got 0"]
    assert SCHEMES["multilabel_softmax"].params == {} and "2208.02955" in SCHEMES["multilabel_softmax"].paper
    apl = SCHEMES["apl"].params
    assert {k: apl[k].default for k in apl} == {
        "gamma_pos": 0.0,
        "gamma_neg": 4.0,
        "clip": 0.05,
        "epsilon_pos": 1.0,
        "epsilon_pos2": -2.5,
        "epsilon_neg": 0.0,
    }
    assert all(apl[k].searchable for k in ("gamma_neg", "clip", "epsilon_pos", "epsilon_pos2", "epsilon_neg"))
