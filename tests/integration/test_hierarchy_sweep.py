"""cellcycle_GO (a DAG of 4,122 nodes) through a real sweep with every hierarchical scheme."""

import json

import pytest
from mlflow.tracking import MlflowClient

from tailsweep.datasets._hmc import import_hmc
from tailsweep.losses import SCHEMES
from tailsweep.orchestrator._sweep import run_sweep
from tailsweep.orchestrator.spec import check_spec, load_spec
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not (SHARED_DATA / "cellcycle_GO").is_dir(), reason="../shared/data/cellcycle_GO not present")
def test_cellcycle_go_every_hierarchical_scheme(tmp_path):
    table = import_hmc("cellcycle_GO", tmp_path / "go", SHARED_DATA)
    schemes = [n for n, i in SCHEMES.items() if i.needs_hierarchy]
    entries = [{"name": n} for n in schemes] + [
        {"name": "node_imbalance_focal", "label": "nif-gmu", "params": {"heads": 3, "uncertainty": "gated_margin"}},
        {"name": "mcloss", "label": "mcloss-lpros", "oversample": "lpros"},
    ]
    schemes += ["nif-gmu", "mcloss-lpros"]
    spec = load_spec(
        None,
        [
            f"data.path={table.root}",
            "model.backbone=mlp",
            "model.hidden=64",
            f"tracking.dir={tmp_path / 'runs'}",
            f"schemes={json.dumps(entries)}",
            "seeds=[0]",
            "train.epochs=1",
            "train.batch_size=128",
            "train.augment=false",
            "search.metric=val/micro_auprc",
            "eval.prediction_rows=300",  # the report's bootstrap on a 300-row subsample: its cost, not its logic
        ],
    )
    result = run_sweep(spec)
    assert [r["status"] for r in result.rows] == ["DONE"] * len(schemes)
    client = MlflowClient(spec.tracking_uri)
    for run in client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'"):
        assert run.info.status == "FINISHED"
        m = run.data.metrics
        assert 0 < m["test/micro_auprc"] < 1 and "test/recall_depth1" in m and "test/macro_recall_allnodes" in m


def test_hierarchical_scheme_on_a_flat_table_is_refused_before_ray(tmp_path):
    import numpy as np

    from tailsweep.datasets import Manifest, write_table
    from tests.conftest import features_split

    flat = write_table(
        tmp_path / "flat",
        Manifest(name="flat", input="features"),
        [{"label": x, "parents": []} for x in ("a/x", "a/y", "b")],
        {s: features_split(30, 8, np.random.default_rng(0)) for s in ("train", "val", "test")},
    )
    spec = load_spec(None, [f"data.path={flat.root}", "model.backbone=mlp", "schemes=[mcloss]"])
    assert any("'mcloss' needs a label hierarchy; table 'flat' has none" in p for p in check_spec(spec))
