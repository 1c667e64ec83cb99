"""The end-of-sweep summary (summary.md and the printed table): one row per plan group, named by the setting the
plan wrote, best validation first."""

from __future__ import annotations

from types import SimpleNamespace

from tailsweep.analysis.summary import as_markdown, summarise, trial_rows


def _result(group, setting, seed, val, error=None):
    plan = {"group": group, "setting": setting, "label": f"{setting} seed={seed}", "scheme": "focal", "seed": seed}
    metrics = {"epoch": 2, "val/best": val, "test/macro_f1": 0.5}
    return SimpleNamespace(config={"trial": plan}, metrics=metrics, error=error)


def test_rows_are_grouped_by_the_plan_group_and_named_by_its_setting():
    results = [_result("0:0", "focal γ=2", s, 0.6 + s / 100) for s in (0, 1)]
    results += [_result("1:0", "focal γ=2", s, 0.7) for s in (0, 1)]  # the same name, another group
    results += [_result("2:0", "plain", 0, 0.4, error=RuntimeError("x"))]
    rows = trial_rows(results)
    assert [r["setting"] for r in rows] == ["focal γ=2"] * 4 + ["plain"]
    summary = summarise(rows, "val/macro_ap")
    assert [(e["setting"], e["seeds"], e["complete"]) for e in summary] == [
        ("focal γ=2", 2, 2),  # group 1:0, best on validation first
        ("focal γ=2", 2, 2),
        ("plain", 1, 0),  # failed: counted, not complete
    ]
    assert summary[0]["val/best"][0] == 0.7 and summary[1]["val/best"][0] == 0.605
    assert "| focal γ=2 | 2/2 | 0.700 ± 0.000 |" in as_markdown(summary, "val/macro_ap")


def test_a_plan_without_a_setting_name_falls_back_to_its_label():
    rows = trial_rows([SimpleNamespace(config={"trial": {"group": "0:0", "label": "x"}}, metrics={}, error=None)])
    assert rows[0]["setting"] == "x"
