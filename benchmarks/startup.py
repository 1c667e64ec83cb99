"""Start-up time of the light commands (issue 22): `launch --help`, `launch schemes`, `launch data validate`,
`launch data stats`, each run as a fresh process (what a user types), median of N; and the heaviest imports
behind `launch` (``python -X importtime``). Prints a Markdown table for docs/benchmarks.md.

    python benchmarks/startup.py [--runs 5] [--table DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCH = Path(sys.executable).parent / "launch"


def timed(args: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([str(LAUNCH), *args], check=True, capture_output=True)
        out.append(time.perf_counter() - t)
    return out


def heaviest_imports(n: int = 6) -> list[tuple[float, str]]:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tailsweep.orchestrator.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (x.strip() for x in line.removeprefix("import time:").split("|"))
            if cumulative.isdigit():
                rows.append((int(cumulative) / 1e6, name))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--table", default=None, help="a label table (default: a small generated features table)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = a.table
        if table is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.conftest import make_features_table

            table = str(make_features_table(Path(tmp) / "t").root)
        cases = {
            "launch --help": ["--help"],
            "launch schemes": ["schemes"],
            "launch data validate": ["data", "validate", table],
            "launch data stats": ["data", "stats", table],
        }
        print(f"| command | median of {a.runs} (s) | min (s) | max (s) |\n|---|---|---|---|")
        for name, args in cases.items():
            ts = timed(args, a.runs)
            print(f"| `{name}` | {statistics.median(ts):.2f} | {min(ts):.2f} | {max(ts):.2f} |")
    print("\nHeaviest imports under `import tailsweep.orchestrator.cli` (cumulative, python -X importtime):\n")
    for seconds, name in heaviest_imports():
        print(f"- `{name}`: {seconds:.3f} s")


if __name__ == "__main__":
    main()
