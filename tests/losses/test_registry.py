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
