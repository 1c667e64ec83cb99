"""LocalContext: Ray Train's context stood in for by torch alone."""

import torch

from tailsweep.trainables._context import LocalContext


def test_reports_are_kept_and_only_the_last_checkpoint_stays(tmp_path):
    ctx = LocalContext("cpu", tmp_path / "root")
    assert (ctx.rank, ctx.world, ctx.device.type) == (0, 1, "cpu")
    with ctx.restored() as d:
        assert d is None
    for epoch in (1, 2):
        src = tmp_path / f"src{epoch}"
        src.mkdir()
        (src / "state.txt").write_text(str(epoch))
        ctx.report({"epoch": epoch}, src)
    ctx.report({"epoch": 3}, None)
    assert [r["epoch"] for r in ctx.reports] == [1, 2, 3]
    with ctx.restored() as d:
        assert (d / "state.txt").read_text() == "2"
    assert len(list((tmp_path / "root").iterdir())) == 1


def test_a_single_worker_model_is_moved_not_wrapped():
    model = LocalContext("cpu").prepare_model(torch.nn.Linear(2, 2))
    assert isinstance(model, torch.nn.Linear)
