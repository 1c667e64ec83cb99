"""TrialConfig: one shape for a trial's settings, from the spec to the worker and MLflow."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tailsweep.config import TrialConfig, flatten
from tailsweep.orchestrator._plan import plan_trials
from tailsweep.orchestrator.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


def test_plan_builds_trial_configs_that_survive_tunes_round_trip():
    trials = plan_trials(load_spec(None, ["train.epochs=4", "schemes=[focal]", "seeds=[0, 1]"]))
    assert [t.seed for t in trials] == [0, 1] and {t.scheme for t in trials} == {"focal"}
    t = trials[0]
    assert t.train.epochs == 4 and t.train.lr == 1e-3 and t.scheme_params["gamma"] == 2.0
    again = TrialConfig.of({"trial": t.model_dump(mode="json")})  # what Tune carries, what the worker reads
    assert again == t


def test_params_are_the_flattened_dump():
    t = plan_trials(load_spec(None, ["schemes=[effective_number]"]))[0]
    p = t.params()
    assert p["scheme"] == "effective_number" and p["scheme_params.beta"] == 0.999
    assert p["train.epochs"] == 3 and p["model.backbone"] == "resnet18" and p["eval.thresholds"] == "fixed"
    assert "run_id" not in p and p["group"] == "0:0"
    assert flatten({"a": {"b": 1, "c": {}}, "d": 2}) == {"a.b": 1, "a.c": {}, "d": 2}


def test_a_trial_refuses_unknown_or_bad_settings():
    t = plan_trials(load_spec(None, ["schemes=[unweighted]"]))[0].model_dump(mode="json")
    with pytest.raises(ValidationError, match="extra"):
        TrialConfig.model_validate({**t, "train": {**t["train"], "epochz": 3}})
    with pytest.raises(ValidationError, match="greater than 0"):
        TrialConfig.model_validate({**t, "train": {**t["train"], "epochs": 0}})


ONE_EDIT = "    dummy: int = 7  # the one edit\n"

FOLLOW = """
import sys, tempfile
from tailsweep.orchestrator._plan import plan_trials
from tailsweep.orchestrator.spec import load_spec
from tailsweep.config import TrialConfig
from tailsweep.datasets import label_stats, LabelTable
from tailsweep.orchestrator._tracking import Tracking
from tailsweep.trainables import TrialRecipe
from tailsweep.trainables._context import LocalContext

table = sys.argv[1]
spec = load_spec(None, [f"data.path={table}", "model.backbone=mlp", "model.hidden=8", "train.epochs=1",
                        "schemes=[unweighted]", "seeds=[0]", "train.dummy=3"])
trial = plan_trials(spec)[0]
dump = trial.model_dump(mode="json")          # Tune's param space
cfg = TrialConfig.of({"trial": dump})         # the worker's one validation
recipe = TrialRecipe(cfg, label_stats(LabelTable(table)), LocalContext("cpu"))
recipe.setup().train()
tracking = Tracking(f"sqlite:///{tempfile.mkdtemp()}/mlflow.db")
parent = tracking.get_or_create_run({"tailsweep.sweep_id": "s", "tailsweep.kind": "sweep"}, name="s")
run_id = tracking.child_run(parent, "s", trial)
params = tracking.client.get_run(run_id).data.params
print("WORKER", recipe.cfg.train.dummy, "EPOCHS", len(recipe.ctx.reports), "MLFLOW", params["train.dummy"])
"""


def test_a_new_train_option_reaches_the_worker_and_mlflow_with_one_edit(tmp_path, features_table):
    """Copy the package, add one field to TrainConfig, set it from the spec: the worker and MLflow see it."""
    pkg = tmp_path / "src" / "tailsweep"
    shutil.copytree(REPO / "tailsweep", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    config = pkg / "config.py"
    text = config.read_text()
    anchor = "class TrainConfig(_Frozen):\n"
    head, _, rest = text.partition(anchor)
    doc_end = rest.index('"""', rest.index('"""') + 3) + 4  # after the class docstring
    config.write_text(head + anchor + rest[:doc_end] + ONE_EDIT + rest[doc_end:])
    out = subprocess.run(
        [sys.executable, "-c", FOLLOW, str(features_table.root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the checkout: its tailsweep/ would come first on sys.path
        env={"PYTHONPATH": str(pkg.parent), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "WORKER 3 EPOCHS 1 MLFLOW 3" in out.stdout, out.stdout
    assert f"{pkg}" in subprocess.run(
        [sys.executable, "-c", "import tailsweep; print(tailsweep.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(pkg.parent)},
    ).stdout  # fmt: skip
