"""Reference points for benchmarks/overhead.py: the plain Train V2 pattern and the floor probe.

- ``plain_sweep``: a tiny Tune function trainable that builds a ``TorchTrainer`` and nothing else
  (default Ray settings, no actor reuse, no MLflow), training a small MLP on random tensors.
- ``floor_probe``: two fresh Ray actors in series, each importing ``ray.train.torch``, then the first
  optimiser construction in the second -- the least a trial (driver actor -> worker) can cost.
"""

from __future__ import annotations

import time

import ray
from ray import tune

TRIAL_RESOURCE = "tailsweep_trial"


def _train_fn(config):
    import ray.train
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(512, 32)
    y = (torch.rand(512, 8) > 0.5).float()
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for epoch in range(config["epochs"]):
        for i in range(0, 512, 64):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[i : i + 64]), y[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
            first = first or time.time()
        ray.train.report({"epoch": epoch + 1, "time/first_step": first, "loss": float(loss)})


def _trial(config):
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    trial_id = ray.tune.get_context().get_trial_id()
    TorchTrainer(
        _train_fn,
        train_loop_config={"epochs": config["epochs"]},
        scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(
            name=f"plain-{trial_id}", storage_path=config["storage"], callbacks=[TuneReportCallback()]
        ),
    ).fit()


def plain_sweep(n_trials: int, epochs: int, storage: str, concurrency: int, callbacks: list) -> float:
    """Run the plain pattern; returns the command's wall time (``ray.init`` + ``Tuner.fit``)."""
    t0 = time.time()
    ray.init(resources={TRIAL_RESOURCE: 100}, log_to_driver=False, logging_level="ERROR")
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trial, {TRIAL_RESOURCE: 1}),
            param_space={"epochs": epochs, "storage": storage, "i": tune.grid_search(list(range(n_trials)))},
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrency),
            run_config=tune.RunConfig(name="plain", storage_path=storage, verbose=0, callbacks=callbacks),
        )
        tuner.fit()
        return time.time() - t0
    finally:
        ray.shutdown()


@ray.remote(num_cpus=0)
class _Probe:
    def ready(self) -> float:
        import ray.train.torch  # noqa: F401

        return time.time()

    def first_optimiser(self) -> float:
        import torch

        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(4))], lr=1e-3)
        return time.time()


def floor_probe(repeats: int = 3) -> float:
    """Median seconds from creating the first actor to the second actor's first optimiser."""
    ray.init(log_to_driver=False, logging_level="ERROR")
    try:
        times = []
        for _ in range(repeats):
            t0 = time.time()
            a = _Probe.remote()
            ray.get(a.ready.remote())
            b = _Probe.remote()
            ray.get(b.ready.remote())
            times.append(ray.get(b.first_optimiser.remote()) - t0)
            ray.kill(a)
            ray.kill(b)
        return sorted(times)[len(times) // 2]
    finally:
        ray.shutdown()
