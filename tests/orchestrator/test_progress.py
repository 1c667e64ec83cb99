"""The live table: a trial's input wait, and the hint past 0.2."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from tailsweep.orchestrator._plan import plan_trials
from tailsweep.orchestrator._progress import ProgressView
from tailsweep.orchestrator.spec import load_spec


def _view():
    out = io.StringIO()
    return ProgressView(2, 3, "val/macro_ap", "max", 1, Console(file=out, width=400)), out


def _trial(i):
    (t,) = plan_trials(load_spec(None, ["schemes=[focal]", f"seeds=[{i}]"]))
    return SimpleNamespace(trial_id=f"t{i}", config={"trial": t.model_dump(mode="json")})


def test_the_live_table_shows_input_wait_and_hints_past_0_2():
    view, out = _view()
    fast, slow = _trial(0), _trial(1)
    view.on_trial_result(0, [], fast, {"epoch": 1, "val/macro_ap": 0.5, "train/input_wait_frac": 0.05})
    view.on_trial_result(0, [], slow, {"epoch": 1, "val/macro_ap": 0.4, "train/input_wait_frac": 0.35})
    lines = out.getvalue().splitlines()  # not a terminal: one plain line per event
    assert "hint" not in lines[0] and "waited" not in lines[0]
    assert "training waited for its input 35% of its step time" in lines[1]
    assert "resources.cpus_per_worker" in lines[1] and "train.decode: gpu" in lines[1] and "model.freeze" in lines[1]
    shown = io.StringIO()
    Console(file=shown, width=400).print(view.render())
    text = shown.getvalue()
    assert "input wait" in text and "0.05" in text and "0.35" in text
    assert "focal γ=2 α=0.25 seed=1: over 20% of step time waiting for input" in text and "seed=0:" not in text


def test_no_hint_while_every_trial_is_fed():
    view, out = _view()
    view.on_trial_result(0, [], _trial(0), {"epoch": 1, "val/macro_ap": 0.5, "train/input_wait_frac": 0.2})
    view.on_trial_result(0, [], _trial(1), {"epoch": 1, "val/macro_ap": 0.5})  # a trial from before the metric
    shown = io.StringIO()
    Console(file=shown, width=400).print(view.render())
    assert "waiting for input" not in shown.getvalue() and "waited" not in out.getvalue()
