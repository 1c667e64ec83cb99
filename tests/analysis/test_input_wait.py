"""`launch report`'s line on input wait."""

from types import SimpleNamespace

from tailsweep.analysis.input_wait import INPUT_WAIT, hint, report_blocks


def _t(v):
    return SimpleNamespace(metrics={} if v is None else {INPUT_WAIT: v})


def test_report_gives_each_settings_median_and_the_hint_for_slow_ones():
    (block,) = report_blocks({"unweighted": [_t(0.1), _t(0.3), _t(0.05)], "focal": [_t(0.5), _t(0.4)]})
    kind, text = block
    assert kind == "p" and "unweighted 0.10" in text and "focal 0.45" in text
    assert "Past 0.2: focal --" in text and "train.decode: gpu" in text and "unweighted --" not in text


def test_nothing_said_without_the_metric_and_no_hint_at_or_below_0_2():
    assert report_blocks({"unweighted": [_t(None)]}) == []
    (block,) = report_blocks({"unweighted": [_t(0.2)]})
    assert "Past" not in block[1]
    assert hint(0.2) is None and hint(float("nan")) is None and hint(None) is None and "21%" in hint(0.21)
