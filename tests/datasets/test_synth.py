import numpy as np

from tailsweep.datasets import LabelTable, label_stats, synth_garments, validate_table


def test_deterministic_valid_and_long_tailed(tmp_path):
    a = synth_garments(tmp_path / "a", n_train=1200, n_val=50, n_test=50, image_size=32, seed=3)
    b = synth_garments(tmp_path / "b", n_train=1200, n_val=50, n_test=50, image_size=32, seed=3)
    assert a.read("train").equals(b.read("train"))
    assert validate_table(a.root) == []
    s = label_stats(a)
    share = s.counts / s.n_train
    leaf_share = share[[not lbl.startswith("zone:") and lbl != "patterned" for lbl in s.labels]]
    assert leaf_share.max() > 0.2  # a head ...
    assert leaf_share.min() < 0.012  # ... and a tail as steep as a catalogue's (rarest near 0.5-1 %)
    assert (s.counts > 0).all()
    t = LabelTable(a.root)
    assert t.is_hierarchical and t.depths.max() == 2
    # ancestors are closed: every garment row has its zone
    y = t.targets("train")
    zones = [t.index[x] for x in t.labels if x.startswith("zone:")]
    assert np.all(y[:, zones].sum(1) == 1)


def test_other_seed_differs(tmp_path):
    a = synth_garments(tmp_path / "a", n_train=20, n_val=5, n_test=5, image_size=16, seed=0)
    b = synth_garments(tmp_path / "b", n_train=20, n_val=5, n_test=5, image_size=16, seed=1)
    assert not a.read("train").equals(b.read("train"))
