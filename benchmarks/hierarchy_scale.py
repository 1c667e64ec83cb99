"""MCM / MCLoss at scale: build ``Hierarchy`` and forward + backward of MCLoss on synthetic DAGs, side by side with the
landed implementation (issue 29).

One thread, batch 256, random logits, 1 % positives closed upward. A synthetic DAG of N nodes: 12 levels whose sizes
grow geometrically, every node below the top one parent on the level above, and 30 % of them a second parent on any
level above (about 1.3 edges per node). Every (implementation, size) runs in a fresh subprocess: its peak RSS is the
whole process's (torch included). The landed implementation is the module at the commit ``--landed`` names (read
with ``git show``), run the same way; it is skipped at sizes where it would exceed ``--cap`` seconds.

Times: wall and this thread's CPU time (``time.thread_time``); the machine is shared by other jobs, so CPU time is the
steadier figure and wall the one a user waits. Build: best of 3; forward + backward: best of ``--steps`` after one
warm-up step.

Usage: ``python benchmarks/hierarchy_scale.py [--sizes 4000,20000,50000,100000] [--landed 6f3ce4d]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BEGIN, END = "<!-- hierarchy-scale:begin -->", "<!-- hierarchy-scale:end -->"
ROOT = Path(__file__).resolve().parents[1]
LEVELS, EXTRA, BATCH = 12, 0.3, 256


def synthetic_dag(n: int, seed: int = 0) -> list[list[int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    w = np.geomspace(1, 40, LEVELS)
    sizes = np.maximum(1, np.round(n * w / w.sum()).astype(np.int64))
    sizes[-1] += n - sizes.sum()
    starts = np.concatenate([[0], np.cumsum(sizes)])
    level = np.repeat(np.arange(LEVELS), sizes)
    nodes = np.arange(sizes[0], n)
    lv = level[nodes]
    first = starts[lv - 1] + (rng.random(len(nodes)) * sizes[lv - 1]).astype(np.int64)
    second = (rng.random(len(nodes)) * starts[lv]).astype(np.int64)
    has_second = (rng.random(len(nodes)) < EXTRA) & (second != first)
    parents = [[] for _ in range(sizes[0])]
    parents += [[int(a), int(b)] if s else [int(a)] for a, b, s in zip(first, second, has_second, strict=True)]
    return parents


def _landed_module(commit: str):
    src = subprocess.run(
        ["git", "show", f"{commit}:tailsweep/losses/_hierarchy.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    src = src.replace("from ..datasets import", "from tailsweep.datasets import")
    ns: dict = {"__name__": "landed_hierarchy"}
    exec(compile(src, f"{commit}:tailsweep/losses/_hierarchy.py", "exec"), ns)  # noqa: S102 (the project's own code)
    return ns


def child(impl: str, n: int, steps: int, commit: str) -> dict:
    import resource

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if impl == "landed":
        ns = _landed_module(commit)
        hierarchy_cls, loss_cls = ns["Hierarchy"], ns["MCLoss"]
    else:  # "new", or "new:<K>": the new one with K (node, row) keys per CPU chunk
        import tailsweep.losses._hierarchy as hier
        from tailsweep.losses._hierarchy import Hierarchy as hierarchy_cls
        from tailsweep.losses._hierarchy import MCLoss as loss_cls

        if ":" in impl:
            hier._CHUNK_ELEMENTS = int(impl.split(":")[1])
    parents = synthetic_dag(n)
    builds = []
    for _ in range(3 if impl.startswith("new") else 1):
        t0 = time.perf_counter()
        h = hierarchy_cls(parents)
        builds.append(time.perf_counter() - t0)
    loss = loss_cls(h)
    z = torch.randn(BATCH, n, requires_grad=True)
    with torch.no_grad():
        y = h.mcm((torch.rand(BATCH, n) < 0.01).float())  # 1 % positives, closed upward (MCM of 0/1 is that)
    walls, cpus = [], []
    for i in range(steps + 1):
        w0, c0 = time.perf_counter(), time.thread_time()
        loss(z, y).backward()
        z.grad = None
        if i:  # the first is a warm-up
            walls.append(time.perf_counter() - w0)
            cpus.append(time.thread_time() - c0)
    edges = int(sum(len(p) for p in parents))
    return {
        "impl": impl,
        "nodes": n,
        "edges": edges,
        "levels": LEVELS,
        "build_s": min(builds),
        "fb_wall_s": min(walls),
        "fb_cpu_s": min(cpus),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def run_child(impl: str, n: int, steps: int, commit: str, cap: float) -> dict | None:
    cmd = [sys.executable, __file__, "--child", impl, str(n), str(steps), commit]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=cap, env=env)
    except subprocess.TimeoutExpired:
        print(f"{impl} at {n}: over the {cap:.0f} s cap, stopped", flush=True)
        return None
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description="Hierarchy build and MCLoss forward + backward at scale")
    ap.add_argument("--sizes", default="4000,20000,50000,100000")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--landed", default="6f3ce4d", help="commit of the landed implementation to compare with")
    ap.add_argument("--cap", type=float, default=600.0, help="seconds before a landed run is stopped")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument(
        "--chunks",
        default="262144,1048576,2097152,4194304,0",
        help="keys per CPU chunk to compare at the largest size (0: the whole batch at once); empty: skip",
    )
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, n, steps, commit = args.child
        print(json.dumps(child(impl, int(n), int(steps), commit)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, capped = [], []
    load = os.getloadavg()[0]
    for n in sizes:
        new = run_child("new", n, args.steps, args.landed, 3600)
        old = None if n in capped else run_child("landed", n, 1, args.landed, args.cap)
        if old is None:
            capped += [m for m in sizes if m >= n]
        rows.append((n, new, old))
    scan = []
    for k in [int(c) for c in args.chunks.split(",") if c.strip()]:
        r = run_child(f"new:{k or sizes[-1] * BATCH}", sizes[-1], args.steps, args.landed, 3600)
        scan.append((k, r))
    load = max(load, os.getloadavg()[0])
    write(args, rows, load, scan)


def _cell(r: dict | None, key: str, fmt: str) -> str:
    return "over the cap" if r is None else format(r[key], fmt)


def write(args, rows, load: float, scan=()) -> None:
    from _docs import load_note, update_section

    lines = [
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/hierarchy_scale.py --sizes {args.sizes} "
        f"--landed {args.landed} --cap {args.cap:.0f} --chunks {args.chunks}` (one run; one thread, B = {BATCH}, synthetic DAGs of "
        f"{LEVELS} levels, about 1.3 edges per node; {load_note(load)}; the thread's CPU time is given beside the "
        "wall time). "
        f"`landed` is `git show {args.landed}:tailsweep/losses/_hierarchy.py` (level-wise out-of-place "
        "`scatter_reduce`, Python DFS build); `new` the one-sweep path (packed keys; targets closed upward, as "
        "HMC data are: loss and gradient computed together, chunk by chunk of rows).",
        "",
        "| nodes | edges | build new / landed (s) | f+b wall new / landed (s) | f+b CPU new / landed (s) | "
        "peak RSS new / landed (GB) | f+b CPU ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, new, old in rows:
        ratio = "" if old is None else f"{old['fb_cpu_s'] / new['fb_cpu_s']:.1f}x"
        lines.append(
            f"| {n:,} | {new['edges']:,} | {new['build_s']:.3f} / {_cell(old, 'build_s', '.2f')} | "
            f"{new['fb_wall_s']:.2f} / {_cell(old, 'fb_wall_s', '.2f')} | "
            f"{new['fb_cpu_s']:.2f} / {_cell(old, 'fb_cpu_s', '.2f')} | "
            f"{new['peak_rss_gb']:.2f} / {_cell(old, 'peak_rss_gb', '.2f')} | {ratio} |"
        )
    big = rows[-1][1]
    lines += [
        "",
        f"At {rows[-1][0]:,} nodes (targets: build < 2 s, forward + backward < 1 s, peak RSS < 2 GB): build "
        f"**{big['build_s']:.3f} s**, forward + backward **{big['fb_wall_s']:.2f} s** wall / "
        f"**{big['fb_cpu_s']:.2f} s** CPU, peak RSS **{big['peak_rss_gb']:.2f} GB**.",
    ]
    if scan:
        import tailsweep.losses._hierarchy as hier

        lines += [
            "",
            f"Rows per CPU chunk at {rows[-1][0]:,} nodes (the default keeps about {hier._CHUNK_ELEMENTS:,} keys "
            "of 8 bytes per chunk):",
            "",
            "| keys per chunk | rows per chunk | f+b CPU (s) | f+b wall (s) | peak RSS (GB) |",
            "|---|---|---|---|---|",
        ]
        for k, r in scan:
            per = BATCH if not k else max(1, min(BATCH, k // rows[-1][0]))
            lines.append(
                f"| {k or 'whole batch'} | {per} | {_cell(r, 'fb_cpu_s', '.2f')} | {_cell(r, 'fb_wall_s', '.2f')} | "
                f"{_cell(r, 'peak_rss_gb', '.2f')} |"
            )
    lines += ["", END]
    text = "\n".join(lines)
    print(text)
    update_section(
        args.out, BEGIN, END, "MCLoss on hierarchies of 100,000 nodes (`python benchmarks/hierarchy_scale.py`)", text
    )


if __name__ == "__main__":
    main()
