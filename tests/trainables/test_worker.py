"""The worker recipe end to end in Ray Train's local mode (num_workers=0: no cluster, same code)."""

import pytest

from tailsweep.config import EvalConfig, ModelConfig, TrainConfig, TrialConfig
from tailsweep.datasets import label_stats
from tailsweep.trainables import train_loop_per_worker

MODEL_KEYS = set(ModelConfig.model_fields)
TRAIN_KEYS = set(TrainConfig.model_fields)


def trial_config(table, **overrides) -> TrialConfig:
    """A trial on ``table``: an MLP, 2 epochs, batch 16, unless ``overrides`` (model / train keys by name, or
    TrialConfig fields) say otherwise."""
    model = {"backbone": "mlp", "hidden": 16} | {k: v for k, v in overrides.items() if k in MODEL_KEYS}
    train = {"epochs": 2, "batch_size": 16} | {k: v for k, v in overrides.items() if k in TRAIN_KEYS}
    rest = {k: v for k, v in overrides.items() if k not in MODEL_KEYS | TRAIN_KEYS}
    if "precision" in rest:
        train["precision"] = rest.pop("precision")
    scheme = rest.pop("scheme", "inverse_frequency")
    return TrialConfig(
        data=str(table.root),
        model=ModelConfig(**model),
        train=TrainConfig(**train),
        eval=EvalConfig(),
        scheme=scheme,
        variant=scheme,
        group="0:0",
        label=f"{scheme} seed=0",
        **rest,
    )


def _fit(table, **overrides):
    import ray.train
    from ray.train.torch import TorchTrainer

    cfg = trial_config(table, **overrides)
    config = {"trial": cfg.model_dump(mode="json"), "stats": label_stats(table).to_dict()}
    trainer = TorchTrainer(
        train_loop_per_worker, train_loop_config=config, scaling_config=ray.train.ScalingConfig(num_workers=0)
    )
    return trainer.fit()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_features_table_trains_and_reports_test_metrics(features_table, precision):
    result = _fit(features_table, precision=precision)
    m = result.metrics
    assert m["epoch"] == 2
    assert 0.0 <= m["val/micro_auprc"] <= 1.0 and m["train/loss"] > 0
    assert "test/macro_f1" in m and "test/recall_few" in m  # the last report carries the test split
    assert m["val/best"] >= m["val/macro_ap"] - 1e-12


def test_image_table_with_a_torchvision_backbone(image_table):
    result = _fit(image_table, backbone="resnet18", batch_size=8)
    assert result.metrics["epoch"] == 2 and "test/micro_auprc" in result.metrics


@pytest.mark.parametrize(
    "overrides",
    [
        {"scheme": "node_imbalance_focal", "scheme_params": {"heads": 3, "uncertainty": "gated_margin"}},
        {"scheme": "node_imbalance", "scheme_params": {"schedule": "exponential", "mix": 0.5}, "oversample": "lpros"},
    ],
)
def test_hierarchical_variants_train(features_table, overrides):
    result = _fit(features_table, **overrides)
    m = result.metrics
    assert m["epoch"] == 2 and 0 < m["test/micro_auprc"] <= 1 and "test/recall_depth2" in m


def test_frozen_pretrained_encoder_embeds_once_and_reuses_the_cache(image_table):
    from tailsweep.trainables._embed import CACHE_DIR

    opts = {
        "backbone": "efficientnet_lite0",
        "freeze": True,
        "augment": False,
        "image_size": 32,
        "layers": 0,
        "batch_size": 8,
        "epochs": 1,
    }
    first = _fit(image_table, **opts).metrics
    caches = list((image_table.root / CACHE_DIR).glob("efficientnet_lite0-32px-bundled"))
    assert len(caches) == 1 and (caches[0] / "train.parquet").is_file()
    second = _fit(image_table, **opts).metrics
    assert first["time/embed_s"] > 0 and second["time/embed_s"] < first["time/embed_s"]
    assert second["test/micro_auprc"] == pytest.approx(first["test/micro_auprc"])  # same embeddings, same seed


def test_fine_tuning_the_pretrained_encoder(image_table):
    m = _fit(image_table, backbone="efficientnet_lite0", image_size=32, layers=0, batch_size=8, epochs=1).metrics
    assert m["epoch"] == 1 and "test/micro_auprc" in m and m["time/embed_s"] == 0


@pytest.mark.parametrize("loader_workers", [0, 1])
def test_streaming_pipeline_trains_from_parquet_row_groups(image_table, loader_workers):
    m = _fit(
        image_table,
        backbone="resnet18",
        pipeline="stream",
        image_size=16,
        loader_workers=loader_workers,
        batch_size=4,
        epochs=2,
    ).metrics
    assert m["epoch"] == 2 and "test/micro_auprc" in m and m["time/train_samples_per_s"] > 0


def test_lr_schedules_at_their_endpoints():
    import math

    import torch

    from tailsweep.trainables._optim import lr_factor

    total = 100
    constant, cosine, linear = (lr_factor(s, total) for s in ("constant", "cosine", "linear"))
    assert [constant(t) for t in (0, 50, 99, 100)] == [1.0, 1.0, 1.0, 1.0]  # C-HMCNN's protocol
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0, abs=1e-12)
    assert linear(0) == 1.0 and linear(25) == pytest.approx(0.75) and linear(100) == 0.0
    warm = lr_factor("cosine", total, warmup_steps=9)
    assert warm(0) == pytest.approx(0.1) and warm(8) == pytest.approx(0.9) and warm(9) == 1.0
    assert warm(100) == pytest.approx(0.0, abs=1e-12)
    # as the worker uses it: LambdaLR on the optimiser's lr; cosine matches torch's CosineAnnealingLR
    p = torch.nn.Parameter(torch.zeros(1))
    a, b = torch.optim.SGD([p], lr=0.1), torch.optim.SGD([p], lr=0.1)
    mine = torch.optim.lr_scheduler.LambdaLR(a, lr_factor("cosine", 10))
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(b, T_max=10)
    for _ in range(10):
        a.step(), b.step(), mine.step(), ref.step()
        assert mine.get_last_lr()[0] == pytest.approx(ref.get_last_lr()[0], abs=1e-12)
    with pytest.raises(ValueError, match="lr_schedule must be one of cosine, linear, constant"):
        lr_factor("step", 10)
    assert math.isfinite(lr_factor("linear", 0)(0))


def test_lpros_copies_come_from_the_training_split_only(tmp_path):
    import numpy as np

    from tailsweep.datasets._hmc import import_hmc
    from tailsweep.trainables._data import concat_splits, load_split, train_shard
    from tailsweep.trainables.worker import _lpros_copies

    head = "@RELATION t\n@ATTRIBUTE x numeric\n@ATTRIBUTE class hierarchical 01,01/01,02\n@DATA\n"
    folder = tmp_path / "src" / "toy_FUN"
    folder.mkdir(parents=True)
    # train: 12 rows of 02 and one row of 01/01 (x = 99): 01/01 and 01 are minority
    (folder / "toy_FUN.train.arff").write_text(head + "1,02\n" * 12 + "99,01/01\n")
    # val: the same rare label on rows with x = -50 -- never to be copied
    (folder / "toy_FUN.valid.arff").write_text(head + "-50,01/01\n" * 3 + "1,02\n")
    (folder / "toy_FUN.test.arff").write_text(head + "1,02\n2,01/01\n")
    table = import_hmc("toy_FUN", tmp_path / "t", tmp_path / "src", preprocess="impute")
    for splits in (("val", "train"), ("train", "val")):
        train = concat_splits([load_split(table, s) for s in splits])
        cfg = trial_config(table, scheme="mcloss", oversample="lpros", oversample_budget=1.0, train_splits=list(splits))
        out = train_shard(table, splits, None, 0, 1, _lpros_copies(table, cfg))
        copies = out.inputs[len(train) :].numpy().ravel()
        assert len(copies) > 0 and set(copies.tolist()) == {99.0}  # the training row, never a val row
        # each copy labelled with its minority node alone, closed upward: 01/01 -> {01, 01/01}
        labelled = {tuple(r) for r in out.targets[len(train) :].numpy().astype(int).tolist()}
        assert labelled <= {(1, 1, 0), (1, 0, 0)}
        assert np.array_equal(out.inputs[: len(train)].numpy(), train.inputs.numpy())
        assert np.array_equal(out.targets[: len(train)].numpy(), train.targets.numpy())
        # two ranks: every item (rows and copies) on exactly one of them, item i on rank i % 2
        halves = [train_shard(table, splits, None, r, 2, _lpros_copies(table, cfg)) for r in (0, 1)]
        assert halves[0].per_rank == halves[1].per_rank == -(-len(out) // 2)
        for r, half in enumerate(halves):
            assert np.array_equal(half.inputs.numpy(), out.inputs[r::2].numpy())
            assert np.array_equal(half.targets.numpy(), out.targets[r::2].numpy())
