"""The report's statistics and renderers, by hand."""

import math

import pytest

from tailsweep.analysis.report import to_html, to_markdown
from tailsweep.analysis.stats import mean_ci, paired_wilcoxon


def test_mean_and_95_ci_by_hand():
    mean, sd, half, n = mean_ci([0.5, 0.6, 0.7])
    assert (mean, n) == (pytest.approx(0.6), 3) and sd == pytest.approx(0.1)
    assert half == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)  # t(0.975, 2 dof)
    assert mean_ci([0.4, float("nan"), None])[3] == 1 and math.isnan(mean_ci([])[0])


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
