"""The new MCLoss against the landed one, trained side by side on the real HMC tables (issue 29: results unchanged).

For each dataset: import it (C-HMCNN's preprocessing), build two copies of C-HMCNN's MLP from the same seed
(tailsweep's ``MLPNet``, the protocol's hidden width, 2 hidden layers, dropout 0.7), and train both for ``--steps``
steps of Adam (lr 1e-4, weight decay 1e-5, batch 4, the same batches and the same dropout masks) on train + val,
one with ``git show COMMIT:tailsweep/losses/_hierarchy.py``'s MCLoss, one with the new one. Reported: the largest
relative difference between the two losses over the steps, the largest parameter difference at the end, and the
test micro AU(PRC) of both (MCM-coherent outputs, non-root nodes, sklearn).

Usage: ``python benchmarks/mcloss_equivalence.py [--datasets cellcycle_FUN,cellcycle_GO] [--steps 2000]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

BEGIN, END = "<!-- mcloss-equivalence:begin -->", "<!-- mcloss-equivalence:end -->"
ROOT = Path(__file__).resolve().parents[1]


def compare(name: str, data_dir: str, steps: int, commit: str) -> dict:
    import numpy as np
    import torch
    from hierarchy_scale import _landed_module
    from sklearn.metrics import average_precision_score

    from tailsweep.datasets import label_stats
    from tailsweep.datasets._hmc import import_hmc
    from tailsweep.losses._hierarchy import Hierarchy, MCLoss
    from tailsweep.orchestrator._reproduce import HMC_DATASETS
    from tailsweep.trainables._models import MLPNet

    torch.set_num_threads(1)
    hidden = HMC_DATASETS[name][0]
    landed = _landed_module(commit)
    with tempfile.TemporaryDirectory() as tmp:
        table = import_hmc(name, Path(tmp) / name, data_dir)
        stats = label_stats(table)

        def split(s):
            x = np.stack(table.read(s, ["features"]).column("features").to_numpy(zero_copy_only=False))
            return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(table.targets(s).astype(np.float32))

        (xt, yt), (xv, yv), (xs, ys) = split("train"), split("val"), split("test")
    x, y = torch.cat([xt, xv]), torch.cat([yt, yv])
    losses = {
        "landed": landed["MCLoss"](landed["Hierarchy"](stats.parent_indices())),
        "new": MCLoss.from_label_stats(stats),
    }
    models, opts, trace = {}, {}, {k: [] for k in losses}
    for k in losses:
        torch.manual_seed(0)
        models[k] = MLPNet(x.shape[1], stats.num_labels, hidden=hidden, layers=2, dropout=0.7)
        opts[k] = torch.optim.Adam(models[k].parameters(), lr=1e-4, weight_decay=1e-5)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    for step in range(steps):
        idx = order[(step * 4) % len(x) : (step * 4) % len(x) + 4]
        for k, loss_fn in losses.items():
            torch.manual_seed(step)  # the same dropout masks for both
            opts[k].zero_grad()
            loss = loss_fn(models[k](x[idx]), y[idx])
            loss.backward()
            opts[k].step()
            trace[k].append(loss.item())
    a, b = np.array(trace["landed"]), np.array(trace["new"])
    h = Hierarchy.from_label_stats(stats)
    auprc = {}
    for k, m in models.items():
        m.eval()
        with torch.no_grad():
            p = h.mcm(torch.sigmoid(m(xs))).numpy()
        auprc[k] = average_precision_score(ys.numpy().ravel(), p.ravel())
    params = max(
        (pa - pb).abs().max().item()
        for pa, pb in zip(models["landed"].parameters(), models["new"].parameters(), strict=True)
    )
    return {
        "dataset": name,
        "nodes": stats.num_labels,
        "steps": steps,
        "loss_rel_diff": float(np.max(np.abs(a - b) / np.abs(a))),
        "first_diff_step": int(np.argmax(a != b)) if (a != b).any() else None,
        "param_max_diff": params,
        "auprc_landed": auprc["landed"],
        "auprc_new": auprc["new"],
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="new vs landed MCLoss, trained side by side")
    ap.add_argument("--datasets", default="cellcycle_FUN,cellcycle_GO")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--landed", default="6f3ce4d")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    rows = []
    for name in args.datasets.split(","):
        rows.append(compare(name, args.data_dir, args.steps, args.landed))
        print(rows[-1], flush=True)
    from _docs import update_section

    lines = [
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/mcloss_equivalence.py --datasets {args.datasets} "
        f"--steps {args.steps} --landed {args.landed}`: two copies of the protocol's MLP from one seed, the same "
        "batches (4 rows of train + val) and dropout masks, Adam lr 1e-4, wd 1e-5; one trained with the landed "
        "MCLoss, one with the new.",
        "",
        "| dataset | nodes | steps | largest relative loss difference | first step that differs | largest parameter "
        "difference at the end | test micro AU(PRC) landed / new |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['nodes']:,} | {r['steps']:,} | {r['loss_rel_diff']:.1e} | {r['first_diff_step']} | "
            f"{r['param_max_diff']:.1e} | {r['auprc_landed']:.4f} / {r['auprc_new']:.4f} |"
        )
    lines += ["", END]
    text = "\n".join(lines)
    print(text)
    update_section(args.out, BEGIN, END, "MCLoss, new against landed, trained side by side", text)


if __name__ == "__main__":
    main()
