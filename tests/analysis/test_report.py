"""The report's statistics and renderers, by hand."""

import math

import pytest

from tailsweep.analysis.report import to_html, to_markdown
from tailsweep.analysis.stats import fmt_spread, mean_ci, paired_wilcoxon, seed_spread


def test_mean_and_95_ci_by_hand():
    mean, sd, half, n = mean_ci([0.5, 0.6, 0.7])
    assert (mean, n) == (pytest.approx(0.6), 3) and sd == pytest.approx(0.1)
    assert half == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)  # t(0.975, 2 dof)
    assert mean_ci([0.4, float("nan"), None])[3] == 1 and math.isnan(mean_ci([])[0])


def test_the_seeds_range_stays_in_the_metrics_domain_where_a_t_interval_does_not():
    two = [0.90, 0.964]  # two seeds of a micro AU(PRC): the Student-t interval runs past 1
    mean, _, half, _ = mean_ci(two)
    assert mean + half > 1.0
    assert seed_spread(two) == (pytest.approx(0.932), 0.90, 0.964, 2)
    assert fmt_spread(two) == "0.932 (0.900–0.964)"
    assert fmt_spread([0.5, None]) == "0.500 (1 seed)" and fmt_spread([float("nan")]) == "-"


def test_paired_wilcoxon_pairs_by_seed():
    diff, p, n = paired_wilcoxon({0: 0.5, 1: 0.6, 2: 0.7, 9: 0.1}, {0: 0.6, 1: 0.8, 2: 0.75})
    assert n == 3 and diff == pytest.approx((0.1 + 0.2 + 0.05) / 3) and p == pytest.approx(0.25)
    assert math.isnan(paired_wilcoxon({0: 0.5, 1: 0.5}, {0: 0.5, 1: 0.5})[1])  # no differences: undefined


def test_markdown_and_html_carry_the_same_table():
    blocks = [("h1", "T"), ("p", "a <b>"), ("table", ["x", "y"], [["1", "2"]]), ("img", "f.png", "fig")]
    md = to_markdown(blocks, "dir/")
    assert "| x | y |" in md and "| 1 | 2 |" in md and "![fig](dir/f.png)" in md
    html = to_html(blocks)
    assert "<td>1</td><td>2</td>" in html and "a &lt;b&gt;" in html and 'src="f.png"' in html


def test_retried_trials_get_a_section_naming_them_and_why():
    from tailsweep.analysis.report import Trial, retry_blocks

    def trial(name, retries=0, retry=""):
        return Trial("r", name, name, "focal", 0, "FINISHED", {}, retries=retries, retry=retry)

    assert retry_blocks([trial("a seed=0")]) == []  # nothing retried: no section
    note = "restart 1: node 3f2a9c1d5e7b (10.0.0.7) lost; resumed at epoch 2"
    md = to_markdown(retry_blocks([trial("a seed=0"), trial("b seed=1", 1, note)]))
    assert "## Retried trials" in md and f"| b seed=1 | FINISHED | 1 | {note} |" in md and "a seed=0" not in md


def test_recall_by_depth_is_a_section_only_for_a_hierarchy_and_reads_each_trials_rows():
    from types import SimpleNamespace

    from tailsweep.analysis.report import Trial, depth_blocks

    def trial(setting, seed, rows, metrics=None):
        m = {"test/macro_ap": 0.5, **(metrics or {})}
        per = [dict(zip(("label", "depth", "positives", "recall"), r, strict=True)) for r in rows]
        return Trial("r", f"{setting} seed={seed}", setting, setting, seed, "FINISHED", m, per_label=per)

    rows0 = [("a", "1", "3", "1.0"), ("a/x", "2", "2", "0.5"), ("a/y", "2", "1", "0.0"), ("a/z", "2", "0", "0.0")]
    rows1 = [("a", "1", "3", "0.5"), ("a/x", "2", "2", "1.0"), ("a/y", "2", "1", "1.0"), ("a/z", "2", "0", "0.0")]
    groups = {
        "mcloss": [trial("mcloss", 0, rows0), trial("mcloss", 1, rows1)],
        "old": [trial("old", 0, [], {"test/recall_depth1": 0.25, "test/recall_depth2": 0.75})],  # no rows kept
    }
    ctx = SimpleNamespace(groups=groups, done=[t for ts in groups.values() for t in ts])
    md = to_markdown(depth_blocks(ctx))
    assert "| setting | depth 1 (1) | depth 2 (2) |" in md  # labels with a test positive (a/z has none)
    # depth 2: seed 0 (0.5 + 0.0) / 2 = 0.25, seed 1 1.0; depth 1: 1.0 and 0.5
    assert "| mcloss | 0.750 (0.500–1.000) | 0.625 (0.250–1.000) |" in md
    assert "| old | 0.250 (1 seed) | 0.750 (1 seed) |" in md
    flat = {"u": [trial("u", 0, [("a", "1", "3", "1.0"), ("b", "1", "2", "0.0")])]}
    assert depth_blocks(SimpleNamespace(groups=flat, done=flat["u"])) == []
