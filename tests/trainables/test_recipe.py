"""The worker recipe driven directly, with torch alone (LocalContext): steps, checkpoints, resume, hooks."""

import pytest

from tailsweep.datasets import label_stats
from tailsweep.trainables import TrialRecipe
from tailsweep.trainables._context import LocalContext
from tailsweep.trainables.hooks import FaultInjection, StartupTimestamps
from tests.trainables.test_worker import trial_config


def _recipe(table, tmp_path, hooks=(), **overrides):
    cfg = trial_config(table, checkpoint_every_s=0, **overrides)
    return TrialRecipe(cfg, label_stats(table), LocalContext("cpu", tmp_path / "ckpt"), hooks)


def test_each_epoch_reports_once_and_the_last_carries_the_test_split(features_table, tmp_path):
    r = _recipe(features_table, tmp_path, epochs=3).setup()
    r.train()
    assert [m["epoch"] for m in r.ctx.reports] == [1, 2, 3]
    assert "test/micro_auprc" in r.ctx.reports[-1] and "test/micro_auprc" not in r.ctx.reports[0]
    assert (r.ctx.checkpoint / "artifacts" / "per_label_test.csv").is_file()  # the final checkpoint's tables
    assert "time/worker_process_start" not in r.ctx.reports[0]  # no hook installed: no timestamps


def test_a_restarted_worker_resumes_after_its_last_checkpoint_and_ends_as_an_unbroken_run(features_table, tmp_path):
    whole = _recipe(features_table, tmp_path / "a", epochs=3).setup()
    whole.train()
    first = _recipe(features_table, tmp_path / "b", [FaultInjection("raise@3")], epochs=3).setup()
    with pytest.raises(RuntimeError, match="injected failure at epoch 3"):
        first.train()
    assert [m["epoch"] for m in first.ctx.reports] == [1, 2]
    again = TrialRecipe(first.cfg, first.stats, first.ctx)  # the same context: its checkpoint after epoch 2
    again.setup()
    assert again.start_epoch == 2
    again.train()
    assert [m["epoch"] for m in first.ctx.reports] == [1, 2, 3]
    # deterministic on one thread: the resumed run ends where the unbroken one did
    assert first.ctx.reports[-1]["test/micro_auprc"] == pytest.approx(whole.ctx.reports[-1]["test/micro_auprc"])


def test_hooks_see_every_epoch_and_step(features_table, tmp_path):
    stamps = StartupTimestamps()
    r = _recipe(features_table, tmp_path, [stamps], epochs=2).setup()
    r.train()
    assert all(m["time/first_step"] >= m["time/loop_entered"] > 0 for m in r.ctx.reports)


def test_objectives_are_reported_at_the_selected_epoch_and_kept_across_a_restart(features_table, tmp_path):
    objectives = ["val/macro_ap", "val/micro_auprc"]
    whole = _recipe(features_table, tmp_path / "a", epochs=4, objectives=objectives).setup()
    whole.train()
    reports = whole.ctx.reports
    for i, m in enumerate(reports):
        assert m["best/val/macro_ap"] == m["val/best"]  # the first objective is the selection metric
        chosen = next(r for r in reports[: i + 1] if r["val/macro_ap"] == m["val/best"])  # first epoch that best
        assert m["best/val/micro_auprc"] == chosen["val/micro_auprc"]
    first = _recipe(features_table, tmp_path / "b", [FaultInjection("raise@3")], epochs=4, objectives=objectives)
    first.setup()
    with pytest.raises(RuntimeError, match="injected failure at epoch 3"):
        first.train()
    again = TrialRecipe(first.cfg, first.stats, first.ctx).setup()  # from the checkpoint after epoch 2
    assert again.best_values == {k: first.ctx.reports[-1][k] for k in ("best/val/macro_ap", "best/val/micro_auprc")}
    again.train()
    assert first.ctx.reports[-1]["best/val/micro_auprc"] == pytest.approx(reports[-1]["best/val/micro_auprc"])
