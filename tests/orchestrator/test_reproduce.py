"""The HMC reproduction's bookkeeping: recorded runs are skipped, the report's statistics are right."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console
from scipy.stats import friedmanchisquare

from tailsweep.analysis.hmc import friedman_nemenyi, report_hmc, result_path
from tailsweep.orchestrator._reproduce import reproduce_hmc
from tailsweep.orchestrator.cli import main

METRICS = (
    "micro_auprc",
    "macro_recall_allnodes",
    "macro_f1_allnodes",
    "macro_precision_allnodes",
    "macro_precision",
    "macro_recall",
    "macro_f1",
)


def _record(root, dataset, scheme, seed, auprc, recall=0.01):
    path = result_path(root, dataset, scheme, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    test = dict.fromkeys(METRICS, recall) | {"micro_auprc": auprc, "recall_depth1": recall}
    path.write_text(json.dumps({"dataset": dataset, "scheme": scheme, "seed": seed, "wall_s": 120.0, "test": test}))


def _by(table: dict) -> dict:
    """{(dataset, scheme): [one run]} from {(dataset, scheme): auprc}."""
    return {k: [{"test": dict.fromkeys(METRICS, v)}] for k, v in table.items()}


def test_friedman_matches_scipy_without_ties():
    rng = np.random.default_rng(0)
    schemes, datasets = ["a", "b", "c"], [f"d{i}" for i in range(6)]
    values = {
        (d, s): float(v)
        for d in datasets
        for s, v in zip(schemes, rng.permutation(3) + rng.random(3) * 0.1, strict=True)
    }
    text = "\n".join(friedman_nemenyi(_by(values)))
    expected = friedmanchisquare(*[[values[(d, s)] for d in datasets] for s in schemes])
    row = next(line for line in text.splitlines() if line.startswith("| micro_auprc"))
    assert f"| {expected.statistic:.2f} | {expected.pvalue:.3g} |" in row
    # Nemenyi CD for k = 3, N = 6 at alpha 0.05: q = 2.343 -> 2.343 * sqrt(3 * 4 / 36) = 1.35
    assert "**1.35** ranks" in text


def test_friedman_leaves_out_a_scheme_still_being_recorded():
    values = {(d, s): v for d in ("d1", "d2", "d3") for s, v in (("mcloss", 0.3), ("node_imbalance", 0.2))}
    values[("d1", "nif")] = 0.1  # recorded on one dataset so far
    text = "\n".join(friedman_nemenyi(_by(values)))
    assert "`nif` so far on d1" in text
    assert "3 datasets with every scheme" in text and "1 datasets" not in text  # one dataset: no table
    row = next(line for line in text.splitlines() if line.startswith("| micro_auprc"))
    assert row.startswith("| micro_auprc | 1.00 | 2.00 | 3.00 |")  # mcloss best on all three: chi2 = N
    values[("d2", "nif")] = 0.1  # now two datasets have all three schemes: both tables
    text = "\n".join(friedman_nemenyi(_by(values)))
    assert "2 datasets with every scheme (d1, d2); 3 schemes" in text
    assert "3 datasets with every scheme (d1, d2, d3); 2 schemes" in text


def test_report_pairs_seeds_and_checks_the_published_value(tmp_path):
    root = tmp_path / "results"
    for seed, (base, other) in enumerate([(0.250, 0.240), (0.252, 0.241), (0.251, 0.239)]):
        _record(root, "cellcycle_FUN", "mcloss", seed, base, recall=0.010)
        _record(root, "cellcycle_FUN", "node_imbalance", seed, other, recall=0.002)
    _record(root, "derisi_FUN", "mcloss", 0, 0.150)
    text = report_hmc(root, tmp_path / "out.md")
    assert (tmp_path / "out.md").read_text() == text
    rows: dict = {}  # the main table's row (the per-depth table repeats the keys below it)
    for line in text.splitlines():
        if line.startswith(("| cellcycle_FUN", "| derisi_FUN")):
            rows.setdefault(tuple(c.strip() for c in line.split("|")[1:3]), line)
    assert "0.2510 ± 0.0010" in rows[("cellcycle_FUN", "mcloss")]
    assert "| 0.250 |" in rows[("cellcycle_FUN", "node_imbalance")]  # Wilcoxon, 3 pairs all one way
    assert "within the 0.01 tolerance" in text.split("cellcycle_FUN: `mcloss`")[1].splitlines()[0]
    assert "outside the 0.01 tolerance" in text.split("derisi_FUN: `mcloss`")[1].splitlines()[0]
    assert "`node_imbalance` node macro recall (all nodes) is 0.20x" in text
    # the figure beside the table: drawn (cellcycle_FUN has mcloss and another scheme) and linked
    assert "](img/hmc-against-mcloss.png)" in text
    assert (tmp_path / "img" / "hmc-against-mcloss.png").stat().st_size > 10_000


def test_report_without_a_comparison_draws_no_figure(tmp_path):
    root = tmp_path / "results"
    _record(root, "derisi_FUN", "mcloss", 0, 0.150)
    text = report_hmc(root, tmp_path / "out.md")
    assert "hmc-against-mcloss" not in text and not (tmp_path / "img").exists()


def test_recorded_runs_are_skipped_without_touching_data_or_ray(tmp_path):
    root = tmp_path / "results"
    for scheme in ("mcloss", "node_imbalance"):
        for seed in (0, 1):
            _record(root, "derisi_FUN", scheme, seed, 0.19)
    out = io.StringIO()
    # data_dir does not exist: a run that was not skipped would fail on it
    reproduce_hmc(
        ["derisi_FUN"],
        ["mcloss", "node_imbalance"],
        [0, 1],
        root,
        tmp_path / "no-data",
        tmp_path / "runs",
        Console(file=out, width=200),
    )
    assert "derisi_FUN: all 4 runs recorded, skipped" in out.getvalue()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--datasets", "nope_FUN", "--datasets: unknown ['nope_FUN']"),
        ("--schemes", "mcloss,nif_margin_m9", "--schemes: unknown ['nif_margin_m9']"),
    ],
)
def test_cli_refuses_unknown_datasets_and_schemes(tmp_path, option, value, message):
    result = CliRunner().invoke(main, ["reproduce", "hmc", option, value, "--results", str(tmp_path / "r")])
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "r").exists()


def test_a_resumed_dataset_trains_only_its_unrecorded_runs(tmp_path):
    from tailsweep.orchestrator._plan import plan_trials
    from tailsweep.orchestrator._reproduce import hmc_overrides
    from tailsweep.orchestrator.spec import load_spec

    todo = [("nif_margin_m4", 2), ("nif_gated_margin_m4", 0), ("nif_gated_margin_m4", 1), ("nif_gated_margin_m4", 2)]
    spec = load_spec(None, hmc_overrides("cellcycle_FUN", todo, tmp_path / "table", tmp_path / "runs"))
    assert sorted((t.variant, t.seed) for t in plan_trials(spec)) == sorted(todo)


def test_frequency_baseline_is_recorded_once_and_reported(tmp_path):
    from tailsweep.orchestrator._reproduce import record_frequency_baseline
    from tailsweep.trainables._data import load_split
    from tests.conftest import make_features_table

    table = make_features_table(tmp_path / "t")
    root = tmp_path / "results"
    record_frequency_baseline(root, "cellcycle_FUN", table)
    path = root / "cellcycle_FUN" / "frequency_baseline.json"
    floor = json.loads(path.read_text())
    y = load_split(table, "test").targets.numpy()
    # ranking nodes by frequency beats a random ranking (AP = positive rate) on these labels, and is no model
    assert y.mean() < floor["micro_auprc"] < 1.0 and floor["rows_test"] == len(y)
    path.write_text(json.dumps(floor | {"micro_auprc": 0.1234}))
    record_frequency_baseline(root, "cellcycle_FUN", table)  # recorded: left as it is
    _record(root, "cellcycle_FUN", "mcloss", 0, 0.25)
    row = next(ln for ln in report_hmc(root, tmp_path / "out.md").splitlines() if ln.startswith("| cellcycle_FUN"))
    assert "| 0.255 | 0.1234 |" in row  # published, then the baseline


def test_report_has_the_recall_multiple_and_the_cross_check(tmp_path):
    root = tmp_path / "results"
    _record(root, "cellcycle_FUN", "mcloss", 0, 0.2575, recall=0.0180)
    _record(root, "cellcycle_FUN", "node_imbalance", 0, 0.2540, recall=0.0450)
    _record(root, "cellcycle_FUN", "nif_margin_m2", 0, 0.2400, recall=0.0450)
    text = report_hmc(root, tmp_path / "out.md")
    row = next(ln for ln in text.splitlines() if ln.startswith("| cellcycle_FUN | node_imbalance"))
    assert "| 2.50x |" in row  # 0.045 / 0.018
    check = text.split("## Cross-check against the authors' code")[1].split("##")[0]
    verdicts = [ln for ln in check.splitlines() if "| tailsweep |" in ln]
    assert "**pass**" in verdicts[0] and "**pass**" in verdicts[1]  # within 0.004 and +0 % recall
    assert "**fail**" in verdicts[2] and "outside ±0.005" in verdicts[2] and "outside ±20%" in verdicts[2]
    assert "2.5x the authors' gain" not in text and "its public code gave 2.5x on" not in text


def test_datasets_not_present_are_named_with_the_reason_and_none_there_is_refused(tmp_path):
    """Every dataset asked for absent: a SpecError (exit 2) naming each with what is missing, nothing written."""
    from tailsweep.orchestrator.spec import SpecError

    with pytest.raises(SpecError) as err:
        reproduce_hmc(
            ["enron_others", "derisi_GO"],
            ["mcloss"],
            [0],
            tmp_path / "results",
            tmp_path / "no-data",
            tmp_path / "runs",
            Console(file=io.StringIO(), width=400),
        )
    text = str(err.value)
    assert "none of the 2 dataset(s) asked for is there" in text
    assert "enron_others: " in text and "Enron_corr_test.arff" in text
    assert "derisi_GO: " in text and "derisi_GO.train.arff.gz" in text
    assert list(tmp_path.iterdir()) == []


def test_every_published_dataset_is_known_with_its_protocol():
    from tailsweep.orchestrator._reproduce import HMC_DATASETS, hmc_overrides

    assert len(HMC_DATASETS) == 20  # 8 FUN + 8 GO + 4 others
    assert HMC_DATASETS["cellcycle_GO"] == (1000, 62, 1e-4, 0.413)
    assert HMC_DATASETS["enron_others"] == (1000, 133, 1e-5, 0.756)
    over = hmc_overrides("diatoms_others", [("mcloss", 0)], "t", "r")
    assert "train.lr=1e-05" in over and "train.lr_schedule=constant" in over and "train.epochs=474" in over


def test_friedman_tie_correction_by_hand_and_against_scipy():
    from scipy.stats import rankdata

    from tailsweep.analysis.stats import friedman

    # 3 datasets x 3 schemes; dataset 1 ties schemes b and c. Ranks (1 = best):
    # d0: a 1, b 2, c 3;  d1: a 1, b 2.5, c 2.5;  d2: a 2, b 1, c 3  -> average ranks 4/3, 11/6, 17/6
    ranks = np.array([[1, 2, 3], [1, 2.5, 2.5], [2, 1, 3]])
    n, k = 3, 3
    avg = ranks.mean(0)
    plain = 12 * n / (k * (k + 1)) * (np.sum(avg**2) - k * (k + 1) ** 2 / 4)  # 3.5
    assert plain == pytest.approx(3.5)
    # one tie group of 2 in one row: sum (t^3 - t) = 6; correction 1 - 6 / (3 * 3 * 8) = 11/12
    stat, p = friedman(ranks)
    assert stat == pytest.approx(3.5 / (11 / 12))
    values = [[0.3, 0.2, 0.1], [0.3, 0.2, 0.2], [0.2, 0.3, 0.1]]  # the same ranking on values
    assert np.array_equal(np.array([rankdata(-np.array(r)) for r in values]), ranks)
    expected = friedmanchisquare(*np.array(values).T)
    assert stat == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
