"""_launch: what `launch sweep` does, as one call."""

import io
import shlex

from rich.console import Console

from tailsweep.orchestrator._launch import SweepRequest, dry_run_lines, sweep
from tailsweep.orchestrator.spec import load_spec
from tailsweep.orchestrator.validate import validate


def test_printed_commands_are_quoted_and_keep_what_a_resume_takes(tmp_path):
    runs = tmp_path / "my runs"
    r = SweepRequest("my spec.yaml", (f"tracking.dir={runs}", "train.epochs=5"))
    again = r.command(resume="demo-1")
    assert shlex.split(again) == [
        "launch",
        "sweep",
        "my spec.yaml",
        "--set",
        f"tracking.dir={runs}",
        "--resume",
        "demo-1",
    ]
    assert shlex.split(r.command()) == ["launch", "sweep", "my spec.yaml", "--set", f"tracking.dir={runs}", "--set",
                                        "train.epochs=5"]  # fmt: skip


def test_dry_run_lines_list_every_trial(features_table):
    spec = load_spec(None, [f"data.path={features_table.root}", "model.backbone=mlp", "schemes=[focal]", "seeds=[3]"])
    lines = dry_run_lines(validate(spec, {"CPU": 4.0}))
    assert lines[0].startswith("1 trials, 1 at a time on this machine's 4 CPU(s) and 0 GPU(s)")
    assert lines[1:] == ["  focal γ=2 α=0.25 seed=3"]


def test_a_dry_run_validates_prints_and_writes_nothing(tmp_path, features_table):
    out = io.StringIO()
    runs = tmp_path / "runs"
    request = SweepRequest(None, (f"data.path={features_table.root}", "model.backbone=mlp", f"tracking.dir={runs}"),
                           dry_run=True)  # fmt: skip
    assert sweep(request, Console(file=out, width=200)) is None
    assert "8 trials" in out.getvalue() and not runs.exists()
    assert load_spec(None, request.overrides).tracking.dir == str(runs)
