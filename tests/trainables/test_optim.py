"""The optimiser and learning-rate schedule of a trial."""

import pytest
import torch

from tailsweep.config import TrainConfig
from tailsweep.trainables._optim import build_optimizer, build_schedule


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)]
)
def test_each_optimizer_with_the_trials_lr_and_weight_decay(name, cls):
    p = [torch.nn.Parameter(torch.zeros(3))]
    opt = build_optimizer(p, TrainConfig(optimizer=name, lr=0.01, weight_decay=0.1))
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.1


def test_warm_up_then_cosine_over_every_step():
    p = [torch.nn.Parameter(torch.zeros(1))]
    train = TrainConfig(lr=1.0, epochs=2, warmup_epochs=0.5, lr_schedule="cosine")
    opt = build_optimizer(p, train)
    sched = build_schedule(opt, train, steps_per_epoch=4)  # 8 steps, 2 of warm-up
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 3) and lrs[1] == pytest.approx(2 / 3) and lrs[2] == pytest.approx(1.0)
    assert lrs[3:] == sorted(lrs[3:], reverse=True) and lrs[-1] > 0
