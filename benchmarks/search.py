"""TPE against random search at an equal budget (issue 20), through the product itself: each repetition is one
`launch sweep`-equivalent run (``run_sweep``: real Ray, SQLite MLflow) of ``effective_number`` with beta and the
learning rate searched, on a real features table (C-HMCNN's cellcycle_FUN, imported from ../shared/data), one
training seed, one trial at a time (so TPE sees every result before its next suggestion). The two algorithms differ
only in ``search.algorithm``; repetition r uses ``search.seed = r`` for both.

Reported: the best validation micro AU(PRC) (``val/best``: the best epoch's) found after 5, 10 and 20
configurations, mean ± std and median over repetitions, and in how many repetitions TPE's was at least random's.
Each finished sweep is recorded in ``docs/results/search-bench/<algorithm>-<rep>.json`` and skipped when the
benchmark runs again (resumable); the table in docs/benchmarks.md is rewritten from every recorded file.

    python benchmarks/search.py [--reps 5] [--trials 20] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- search-bench:begin -->", "<!-- search-bench:end -->"
CHECKPOINTS = (5, 10, 20)


def overrides(algo: str, rep: int, args, table: Path) -> list[str]:
    return [
        f"name=bench-{algo}-{rep}",
        f"data.path={table}",
        "model.backbone=mlp",
        f"model.hidden={args.hidden}",
        "model.layers=2",
        f"train.epochs={args.epochs}",
        "train.batch_size=16",
        "train.optimizer=adam",
        "train.augment=false",
        "train.checkpoint_every_s=60",
        "schemes=[{name: effective_number, search: [beta]}]",
        "search.lr=[0.0001, 0.03]",
        "seeds=[0]",
        f"search.algorithm={algo}",
        f"search.num_samples={args.trials}",
        f"search.seed={rep}",
        "search.metric=val/micro_auprc",
        "resources.max_concurrent_trials=1",
        f"tracking.dir={args.runs_dir}",
    ]


def run_one(algo: str, rep: int, args, table: Path, out: Path, console: Console) -> None:
    from tailsweep.orchestrator._sweep import run_sweep
    from tailsweep.orchestrator.spec import load_spec

    spec = load_spec(None, overrides(algo, rep, args, table))
    result = run_sweep(spec, console=console)
    by_draw = {}
    for row in result.rows:
        if row["status"] == "DONE" and row.get("val/best") is not None:
            by_draw[int(str(row["group"]).split(":")[1])] = float(row["val/best"])
    scores = [by_draw.get(d) for d in range(args.trials)]
    if result.interrupted or any(s is None for s in scores):
        console.print(f"{algo} rep {rep}: incomplete ({sum(s is None for s in scores)} missing); not recorded")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "algorithm": algo,
                "rep": rep,
                "search_seed": rep,
                "sweep": result.sweep_id,
                "epochs": args.epochs,
                "hidden": args.hidden,
                "dataset": args.dataset,
                "scores_in_order": scores,
            },
            indent=1,
        )
        + "\n"
    )


def best_after(scores: list[float], k: int) -> float:
    return max(scores[:k])


def results_table(results: Path, trials: int) -> str:
    runs = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    by = {a: {r["rep"]: r["scores_in_order"] for r in runs if r["algorithm"] == a} for a in ("random", "tpe")}
    reps = sorted(set(by["random"]) & set(by["tpe"]))
    if not reps:
        return "(no repetition recorded for both algorithms yet)"
    ks = [k for k in CHECKPOINTS if k <= trials]
    lines = [
        "| configurations tried | random: mean ± std (median) | TPE: mean ± std (median) | TPE ≥ random |",
        "|---|---|---|---|",
    ]
    for k in ks:
        cells = []
        for a in ("random", "tpe"):
            v = [best_after(by[a][r], k) for r in reps]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):.4f} ± {sd:.4f} ({statistics.median(v):.4f})")
        wins = sum(best_after(by["tpe"][r], k) >= best_after(by["random"][r], k) for r in reps)
        lines.append(f"| {k} | {cells[0]} | {cells[1]} | {wins}/{len(reps)} |")
    first = runs[0]
    best_any = max(max(s) for a in by.values() for s in a.values())
    return (
        f"Best validation micro AU(PRC) found (the best epoch of each configuration), {len(reps)} repetitions "
        f"(search seeds {reps[0]}-{reps[-1]}) of {trials} configurations each; {first['dataset']}, "
        f"effective_number with beta (log-uniform on 1 - beta, [0.9, 0.9999]) and lr (log-uniform, "
        f"[1e-4, 3e-2]) searched; MLP {first['hidden']} wide, {first['epochs']} epochs, batch 16, Adam, one training seed. "
        f"Best value seen in any run: {best_any:.4f}. TPE's first {max(2, min(10, trials // 4))} configurations "
        "are random draws too (search.startup_trials), so up to there the two differ only by their draws.\n\n"
        + "\n".join(lines)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--dataset", default="cellcycle_FUN")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--runs-dir", default=str(ROOT / "tailsweep-runs" / "bench-search"))
    ap.add_argument("--results", default=str(ROOT / "docs" / "results" / "search-bench"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--report", action="store_true", help="only rewrite the table from the recorded runs")
    args = ap.parse_args()
    results = Path(args.results)
    console = Console()
    if not args.report:
        from tailsweep.datasets import LabelTable
        from tailsweep.datasets._hmc import import_hmc

        table = Path(args.runs_dir) / "data" / args.dataset
        if not table.exists():
            import_hmc(args.dataset, table, args.data_dir, "chmcnn")
        LabelTable(table)
        for rep in range(args.reps):
            for algo in ("random", "tpe"):
                out = results / f"{algo}-{rep}.json"
                if out.is_file():
                    console.print(f"{algo} rep {rep}: recorded, skipped")
                    continue
                run_one(algo, rep, args, table, out, console)
    from _docs import update_section

    text = results_table(results, args.trials)
    print(text)
    update_section(
        args.out, BEGIN, END, "TPE against random search (`python benchmarks/search.py`)", f"{BEGIN}\n{text}\n{END}"
    )


if __name__ == "__main__":
    main()
