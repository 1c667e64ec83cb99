"""The per-trial driver: a Tune function trainable that builds one ``TorchTrainer`` and fits it."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TrialConfig
from ..trainables import train_loop_per_worker


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares (passed once through the object store by ``tune.with_parameters``)."""

    tracking_uri: str
    storage_path: str
    stats: dict  # the table's label statistics (LabelStats.to_dict), every worker's
    num_workers: int
    cpus_per_worker: float
    use_gpu: bool
    max_failures: int
    lean: bool = True  # controller inside the trial process (orchestrator/_lean/inline.py)
    reuse_workers: bool = False  # lean, and Tune reuses trial actors: keep Train workers between trials
    gpus_per_worker: float = 1.0  # with use_gpu: a fraction lets one-worker trials share a GPU


def run_trial(config: dict, ctx: TrialContext) -> None:
    """Build the trial's worker group and train. No MLflow I/O here: the driver created the child
    run (its id is in the plan) and writes its statuses; the Train controller logs the metrics.
    Free of global state, so Tune can reuse the actor for the next trial."""
    import ray.tune

    from ..trainables._tracking import MlflowMetricsCallback

    if ctx.lean:
        from ._lean.inline import InlineTorchTrainer as TorchTrainer
        from ._lean.inline import lean_callbacks as report_callbacks
    else:
        from ray.train.torch import TorchTrainer
        from ray.tune.integration.ray_train import TuneReportCallback

        def report_callbacks():
            return [TuneReportCallback()]

    trial = TrialConfig.of(config)
    trial_id = ray.tune.get_context().get_trial_id()
    run_id = trial.run_id
    metrics_logger = MlflowMetricsCallback(ctx.tracking_uri, run_id)
    if ctx.lean:  # the controller runs here: no unpickling to start the warm-up
        metrics_logger.warm_up()
    from ..trainables._context import fake_gpu

    extra = {"reuse_workers": ctx.reuse_workers} if ctx.lean else {}
    if fake_gpu():  # test only: workers on CPU where Ray gave them (fake) GPUs, so gloo, not NCCL
        from ray.train.torch import TorchConfig

        extra["torch_config"] = TorchConfig(backend="gloo")
    trainer = TorchTrainer(
        train_loop_per_worker,
        **extra,
        train_loop_config=loop_config(trial, ctx),
        scaling_config=scaling_config(ctx),
        # Metrics logger first: it must see each report before Tune does (DESIGN.md).
        run_config=run_config(ctx, trial_id, [metrics_logger, metrics_logger.restart_watch(), *report_callbacks()]),
    )
    trainer.fit()


def loop_config(trial: TrialConfig, ctx: TrialContext) -> dict:
    """What every worker of the trial gets: the trial's JSON dump (validated again there) and the label stats."""
    return {"trial": trial.model_dump(mode="json"), "stats": ctx.stats}


def scaling_config(ctx: TrialContext):
    """The trial's worker group: ``num_workers`` workers of ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs
    (a fraction shares one) with ``use_gpu``."""
    import ray.train

    return ray.train.ScalingConfig(
        num_workers=ctx.num_workers,
        use_gpu=ctx.use_gpu,
        resources_per_worker={"CPU": ctx.cpus_per_worker, **({"GPU": ctx.gpus_per_worker} if ctx.use_gpu else {})},
    )


def run_config(ctx: TrialContext, trial_id: str, callbacks: list):
    """The trial's Train run: named after the Tune trial id, so that ``Tuner.restore`` resumes it from its Train
    checkpoint (the last one kept); ``callbacks`` in the order they see each report."""
    import ray.train

    return ray.train.RunConfig(
        name=f"train-{trial_id}",
        storage_path=ctx.storage_path,
        callbacks=callbacks,
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        failure_config=ray.train.FailureConfig(max_failures=ctx.max_failures),
    )
