"""Label-table tools at a million rows: import (``data import-hmc``), validate and stats on a synthetic features
table with 5,000 labels, at 100,000 and 1,000,000 rows, and how each grows (issue 29).

The synthetic set is written as C-HMCNN-style ARFF files (train / valid / test = 80 / 10 / 10 % of the rows): 32
numeric features (0.1 % missing, ``?``), a Gene-Ontology-style DAG of 5,000 labels (``root/NS``, then
``parent/child`` edges; the DAG generator of ``hierarchy_scale.py``: 12 levels, about 1.3 edges per node), two
labels per row drawn from the bottom two levels. Every (stage, size) runs in a fresh subprocess; the memory figure
is its peak RSS (the whole process, Python and the libraries included). ``--landed COMMIT`` adds the landed
implementation (``git archive COMMIT tailsweep``) at the smaller size, side by side.

Usage: ``python benchmarks/table_scale.py [--rows 100000,1000000] [--landed 6f3ce4d]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BEGIN, END = "<!-- table-scale:begin -->", "<!-- table-scale:end -->"
ROOT = Path(__file__).resolve().parents[1]
LABELS, FEATURES, NAME = 5000, 32, "synth_GO"


def write_arff(folder: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    sys.path.insert(0, str(Path(__file__).parent))
    from hierarchy_scale import synthetic_dag

    parents = synthetic_dag(LABELS, seed)
    tokens = [f"root/NS,NS/L{c}" if not ps else ",".join(f"L{p}/L{c}" for p in ps) for c, ps in enumerate(parents)]
    header = [f"@RELATION {NAME}"] + [f"@ATTRIBUTE f{j} numeric" for j in range(FEATURES)]
    header += ["@ATTRIBUTE class hierarchical " + ",".join(tokens), "@DATA"]
    rng = np.random.default_rng(seed)
    low = int(LABELS * 0.55)  # the bottom two levels hold about half the nodes
    folder.mkdir(parents=True, exist_ok=True)
    for split, share in (("train", 0.8), ("valid", 0.1), ("test", 0.1)):
        n = int(rows * share)
        cols = {}
        for j in range(FEATURES):
            x = pc.round(pa.array(rng.normal(size=n)), 4).cast(pa.string())
            cols[f"f{j}"] = pc.if_else(pa.array(rng.random(n) < 0.001), "?", x)
        a = pc.binary_join_element_wise("L", pa.array(rng.integers(LABELS - low, LABELS, n)).cast(pa.string()), "")
        b = pc.binary_join_element_wise("L", pa.array(rng.integers(LABELS - low, LABELS, n)).cast(pa.string()), "")
        cols["class"] = pc.binary_join_element_wise(a, b, "@")
        path = folder / f"{NAME}.{split}.arff"
        path.write_text("\n".join(header) + "\n")
        with path.open("ab") as f:
            pacsv.write_csv(pa.table(cols), f, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def child(stage: str, src: str, out: str) -> dict:
    import resource

    from tailsweep.datasets import label_stats, validate_table
    from tailsweep.datasets._hmc import import_hmc

    t0 = time.perf_counter()
    if stage == "import":
        import_hmc(NAME, out, src)
    elif stage == "validate":
        errors = [p for p in validate_table(out) if p.severity == "error"]
        assert not errors, errors[:3]
    else:
        label_stats(out, use_cache=False)
    return {
        "stage": stage,
        "seconds": time.perf_counter() - t0,
        "cpu_s": time.process_time(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def run_child(stage: str, src: Path, out: Path, code: Path, cap: float) -> dict | None:
    cmd = [sys.executable, __file__, "--child", stage, str(src), str(out)]
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, env=env, cwd=code)
    except subprocess.TimeoutExpired:
        print(f"{stage} ({code}): over the {cap:.0f} s cap", flush=True)
        return None
    if res.returncode:
        print(f"{stage} ({code}) failed: {res.stderr[-600:]}", flush=True)
        return {"stage": stage, "failed": res.stderr.strip().splitlines()[-1][:120]}
    row = json.loads(res.stdout.strip().splitlines()[-1])
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description="import / validate / stats at a million rows")
    ap.add_argument("--rows", default="100000,1000000")
    ap.add_argument("--landed", default="", help="commit of the landed implementation, run at the smallest size")
    ap.add_argument("--cap", type=float, default=900.0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    sizes = [int(r) for r in args.rows.split(",")]
    results: dict[tuple[str, int], dict[str, dict | None]] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        codes = {"new": ROOT}
        if args.landed:
            codes["landed"] = tmp / "landed"
            codes["landed"].mkdir()
            tar = subprocess.run(
                ["git", "archive", args.landed, "tailsweep"], cwd=ROOT, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(codes["landed"])], input=tar.stdout, check=True)
        for n in sizes:
            src = tmp / f"src{n}"
            t0 = time.perf_counter()
            write_arff(src / NAME, n)
            print(f"wrote {n:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
            for impl, code in codes.items():
                if impl == "landed" and n != sizes[0]:
                    continue
                out = tmp / f"table-{impl}-{n}"
                for stage in ("import", "validate", "stats"):
                    row = run_child(stage, src, out, code, args.cap)
                    results[(impl, n)] = {**results.get((impl, n), {}), stage: row}
                    load = max(load, os.getloadavg()[0])
                    if row is None or "failed" in row:
                        break
            subprocess.run(["rm", "-rf", str(src)], check=True)
    write(args, sizes, results, load)


def _cell(row: dict | None) -> str:
    if row is None:
        return "over the cap"
    if "failed" in row:
        return f"failed ({row['failed']})"
    return f"{row['seconds']:.1f} s ({row['cpu_s']:.1f} s CPU) / {row['peak_rss_gb']:.2f} GB"


def write(args, sizes, results, load: float) -> None:
    from _docs import load_note, update_section

    cmd = f"python benchmarks/table_scale.py --rows {args.rows}" + (f" --landed {args.landed}" if args.landed else "")
    lines = [
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d')} by `{cmd}` (one run; {load_note(load)}). A synthetic GO-style set: {LABELS:,} labels in a "
        f"DAG, {FEATURES} numeric features, two labels per row, train / valid / test = 80 / 10 / 10 %. Each cell: "
        "wall seconds (the process's CPU seconds, imports included: the steadier figure on a shared machine) / peak "
        "RSS of a fresh process.",
        "",
        "| implementation | rows | import (`data import-hmc`) | validate | stats |",
        "|---|---|---|---|---|",
    ]
    for (impl, n), stages in results.items():
        cells = " | ".join(_cell(stages.get(s, {"failed": "not run"})) for s in ("import", "validate", "stats"))
        lines.append(f"| {impl} | {n:,} | {cells} |")
    small, big = ("new", sizes[0]), ("new", sizes[-1])
    if len(sizes) > 1 and small in results and big in results:
        growth = []
        for s in ("import", "validate", "stats"):
            a, b = results[small].get(s), results[big].get(s)
            if a and b and "failed" not in a and "failed" not in b:
                growth.append(
                    f"{s} {b['seconds'] / a['seconds']:.1f}x wall, {b['cpu_s'] / a['cpu_s']:.1f}x CPU, "
                    f"{b['peak_rss_gb'] / a['peak_rss_gb']:.1f}x memory"
                )
        lines += [
            "",
            f"From {sizes[0]:,} to {sizes[-1]:,} rows ({sizes[-1] / sizes[0]:.0f}x): " + "; ".join(growth) + ".",
        ]
    lines += ["", END]
    text = "\n".join(lines)
    print(text)
    update_section(args.out, BEGIN, END, "Label tables at a million rows (`python benchmarks/table_scale.py`)", text)


if __name__ == "__main__":
    main()
