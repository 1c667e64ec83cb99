"""Ensembles of M heads: vectorised against a Python loop over M models, and against M x one head.

One training step of ``node_imbalance_focal`` (forward, MCLoss per head, uncertainty, backward,
``Adam(fused=True)``) at the C-HMCNN shape (77 -> 500 -> 500 -> 499, dropout 0.7, batch 4) on a
499-node tree, one torch thread (what a trial on one of this machine's cores gets):

- ``vectorised``: :class:`tailsweep.trainables._models.EnsembleMLP` (one batched matmul per layer);
- ``loop``: M separate ``MLPNet`` models called in a Python loop, their logits stacked (the same loss
  and one fused Adam over all their parameters).

Both run in the same process, interleaved round by round (the median of ``--rounds`` is reported), so
machine noise hits both alike; figures are ratios. Then M = 20 heads on a shared ResNet-18 image backbone
(64 px, batch 32) against one head on the same backbone.

Usage: ``python benchmarks/ensemble.py [--steps 300] [--rounds 5] [--out docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _docs import update_section

from tailsweep.datasets import LabelStats
from tailsweep.losses import build_loss
from tailsweep.trainables._models import EnsembleMLP, MLPNet, build_model

BEGIN, END = "<!-- ensemble:begin -->", "<!-- ensemble:end -->"
ROOT = Path(__file__).resolve().parents[1]
IN, HIDDEN, NODES, BATCH = 77, 500, 499, 4


def tree_stats(num: int = NODES, seed: int = 0) -> LabelStats:
    """A random 6-level tree of ``num`` nodes with long-tailed counts (FunCat-like)."""
    rng = np.random.default_rng(seed)
    parents, depths = [], []
    for j in range(num):
        if j < 17:  # top level
            parents.append([]), depths.append(1)
            continue
        p = int(rng.integers(0, j))
        while depths[p] >= 6:
            p = int(rng.integers(0, j))
        parents.append([f"n{p}"]), depths.append(depths[p] + 1)
    counts = np.maximum(1, (2000 / (1 + np.arange(num)) ** 0.9).astype(int))
    return LabelStats.from_counts(
        counts, n_train=2000, labels=[f"n{j}" for j in range(num)], depths=depths, parents=parents
    )


class Loop(torch.nn.Module):
    def __init__(self, heads: int, stats: LabelStats):
        super().__init__()
        self.models = torch.nn.ModuleList(MLPNet(IN, stats.num_labels, HIDDEN, 2, 0.7) for _ in range(heads))

    def forward(self, x):
        return torch.stack([m(x) for m in self.models])


def stepper(model, loss_fn, batches):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5, fused=True)
    it = iter(range(10**9))

    def step():
        x, y = batches[next(it) % len(batches)]
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def timed(step, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def mlp_ensembles(heads_list, steps: int, rounds: int) -> list[dict]:
    stats = tree_stats()
    torch.manual_seed(0)
    batches = [(torch.randn(BATCH, IN), (torch.rand(BATCH, NODES) < 0.02).float()) for _ in range(64)]
    steppers = {}
    for m in heads_list:
        loss = build_loss("node_imbalance_focal", stats, heads=m, uncertainty="margin", k=2)
        steppers[("vectorised", m)] = stepper(EnsembleMLP(IN, NODES, HIDDEN, 2, 0.7, heads=m), loss, batches)
        steppers[("loop", m)] = stepper(Loop(m, stats), loss, batches)
    times: dict = {k: [] for k in steppers}
    for s in steppers.values():  # warm-up
        timed(s, 20)
    for _ in range(rounds):
        for key, s in steppers.items():
            n = max(20, steps // key[1])
            times[key].append(timed(s, n))
    med = {k: statistics.median(v) for k, v in times.items()}
    one = med[("vectorised", 1)]
    return [
        {
            "heads": m,
            "vectorised_ms": med[("vectorised", m)] * 1e3,
            "loop_ms": med[("loop", m)] * 1e3,
            "vs_loop": med[("vectorised", m)] / med[("loop", m)],
            "vs_m_x_one": med[("vectorised", m)] / (m * one),
        }
        for m in heads_list
    ]


def image_heads(heads: int, steps: int, rounds: int) -> dict:
    labels = 20
    stats = LabelStats.from_counts(
        np.arange(1, labels + 1) * 10,
        n_train=500,
        labels=[f"l{j}" for j in range(labels)],
        depths=[1] * labels,
        parents=[[] if j < 4 else [f"l{j % 4}"] for j in range(labels)],
    )
    torch.manual_seed(0)
    batches = [(torch.randn(32, 3, 64, 64), (torch.rand(32, labels) < 0.2).float()) for _ in range(4)]
    steppers = {
        m: stepper(
            build_model("resnet18", labels, heads=m),
            build_loss("node_imbalance_focal", stats, heads=m, uncertainty="margin", k=1),
            batches,
        )
        for m in (1, heads)
    }
    for s in steppers.values():
        timed(s, 2)
    times: dict = {m: [] for m in steppers}
    for _ in range(rounds):
        for m, s in steppers.items():
            times[m].append(timed(s, steps))
    med = {m: statistics.median(v) for m, v in times.items()}
    return {"one_s": med[1], "many_s": med[heads], "ratio": med[heads] / med[1], "heads": heads}


def render(rows, img, args) -> str:
    lines = [
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/ensemble.py --steps {args.steps} --rounds {args.rounds}`, "
        "one torch thread, `node_imbalance_focal` (margin, k = 2) on a 499-node tree, C-HMCNN's MLP "
        f"({IN} -> {HIDDEN} -> {HIDDEN} -> {NODES}, dropout 0.7), batch {BATCH}, `Adam(fused=True)`; median over rounds, "
        "interleaved. Targets (issue 7): vectorised <= the loop and <= 1.05 x (M x one head).",
        "",
        "| M | vectorised ms/step | Python loop ms/step | vectorised / loop | vectorised / (M x one head) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['heads']} | {r['vectorised_ms']:.2f} | {r['loop_ms']:.2f} | {r['vs_loop']:.2f} | "
            f"{r['vs_m_x_one']:.2f} |"
        )
    lines += [
        "",
        f"Images: {img['heads']} heads on one ResNet-18 (64 px, batch 32, 20 labels) take "
        f"{img['many_s'] * 1e3:.0f} ms/step against {img['one_s'] * 1e3:.0f} ms for one head: "
        f"**{img['ratio']:.2f}x** (target <= 1.5x).",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="MLP steps per round for M = 1 (divided by M for larger M)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--image-steps", type=int, default=3)
    ap.add_argument("--out", default=None, help="Markdown file to update between the ensemble markers")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = mlp_ensembles([1, 2, 4, 20], args.steps, args.rounds)
    for r in rows:
        print(
            f"M={r['heads']:2d}  vectorised {r['vectorised_ms']:7.2f} ms  loop {r['loop_ms']:7.2f} ms  "
            f"vec/loop {r['vs_loop']:.2f}  vec/(M x one) {r['vs_m_x_one']:.2f}",
            flush=True,
        )
    img = image_heads(20, args.image_steps, args.rounds)
    print(f"images: 20 heads {img['many_s'] * 1e3:.0f} ms vs 1 head {img['one_s'] * 1e3:.0f} ms: {img['ratio']:.2f}x")
    text = render(rows, img, args)
    if args.out:
        update_section(args.out, BEGIN, END, "Ensembles of heads (`python benchmarks/ensemble.py`)", text)


if __name__ == "__main__":
    main()
