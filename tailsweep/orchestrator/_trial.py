"""The per-trial driver: a Tune function trainable that builds one ``TorchTrainer`` and fits it."""

from __future__ import annotations

from dataclasses import dataclass

from ..trainables import WorkerConfig, train_loop_per_worker


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares (passed once through the object store by ``tune.with_parameters``)."""

    tracking_uri: str
    storage_path: str
    worker_defaults: dict  # WorkerConfig fields common to all trials (data, stats, model, train)
    num_workers: int
    cpus_per_worker: float
    use_gpu: bool
    max_failures: int
    lean: bool = True  # controller inside the trial process (orchestrator/_lean/inline.py)
    reuse_workers: bool = False  # lean, and Tune reuses trial actors: keep Train workers between trials


def run_trial(config: dict, ctx: TrialContext) -> None:
    """Build the trial's worker group and train. No MLflow I/O here: the driver created the child
    run (its id is in the plan) and writes its statuses; the Train controller logs the metrics.
    Free of global state, so Tune can reuse the actor for the next trial."""
    import ray.train
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

    plan = config["trial"]
    trial_id = ray.tune.get_context().get_trial_id()
    run_id = plan["run_id"]
    worker = WorkerConfig(**{**ctx.worker_defaults, "scheme": plan["scheme"], "scheme_params": plan["scheme_params"],
                             "oversample": plan.get("oversample", "none"),
                             "oversample_budget": plan.get("oversample_budget", 0.1),
                             "lr": plan["lr"], "seed": plan["seed"], "tracking_uri": ctx.tracking_uri, "run_id": run_id,
                             # searched (search.weight_decay), else the spec's train.weight_decay
                             **({"weight_decay": plan["weight_decay"]} if plan.get("weight_decay") is not None else {})})
    metrics_logger = MlflowMetricsCallback(ctx.tracking_uri, run_id)
    if ctx.lean:  # the controller runs here: no unpickling to start the warm-up
        metrics_logger.warm_up()
    trainer = TorchTrainer(
        train_loop_per_worker,
        **({"reuse_workers": ctx.reuse_workers} if ctx.lean else {}),
        train_loop_config=worker.to_dict(),
        scaling_config=ray.train.ScalingConfig(
            num_workers=ctx.num_workers, use_gpu=ctx.use_gpu,
            resources_per_worker={"CPU": ctx.cpus_per_worker, **({"GPU": 1} if ctx.use_gpu else {})}),
        run_config=ray.train.RunConfig(
            # Derived from the trial id so that Tuner.restore resumes from the Train checkpoint.
            name=f"train-{trial_id}",
            storage_path=ctx.storage_path,
            # Metrics logger first: it must see each report before Tune does (DESIGN.md).
            callbacks=[metrics_logger, *report_callbacks()],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            failure_config=ray.train.FailureConfig(max_failures=ctx.max_failures),
        ),
    )
    trainer.fit()
