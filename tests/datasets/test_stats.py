import json

import numpy as np

from tailsweep.datasets import LabelStats, bucket_of, label_stats


def test_counts_buckets_and_cache(features_table):
    s = label_stats(features_table)
    y = features_table.targets("train")
    assert s.n_train == 120
    assert s.counts.tolist() == y.sum(0).tolist()
    assert s.counts[0] == s.counts[1] + s.counts[2]  # parent = union of its children here
    cache = features_table.root / "stats.json"
    assert cache.is_file()
    assert LabelStats.from_dict(json.loads(cache.read_text())).counts.tolist() == s.counts.tolist()
    # a damaged cache is recomputed, not trusted
    cache.write_text(json.dumps({**s.to_dict(), "counts": [0, 0, 0, 0]}) + "garbage")
    assert label_stats(features_table).counts.tolist() == s.counts.tolist()


def test_stale_cache_is_ignored(features_table):
    s = label_stats(features_table)
    d = s.to_dict()
    d["digest"] = "other"
    d["counts"] = [1, 1, 1, 1]
    (features_table.root / "stats.json").write_text(json.dumps(d))
    assert label_stats(features_table).counts.tolist() == s.counts.tolist()


def test_bucket_edges():
    # Liu et al. CVPR 2019: many > 100, medium 20..100, few < 20
    assert [bucket_of(c) for c in (0, 19, 20, 100, 101)] == ["few", "few", "medium", "medium", "many"]
    s = LabelStats.from_counts([150, 50, 5], n_train=200)
    assert s.buckets == ("many", "medium", "few")
    assert s.bucket_mask("few").tolist() == [False, False, True]
    assert np.array_equal(s.depths, [1, 1, 1])
