"""Bad input never gets past the door (issue 19): one message that says what is wrong and where, exit code 2
(1 where a command's documented result is "the table has errors"), no traceback, nothing left behind.

Every case runs the real CLI in-process (Click's runner) and starts no Ray.
"""

from __future__ import annotations

import gzip
import shutil
import socket

import pytest
import yaml
from click.testing import CliRunner

from tailsweep.orchestrator.cli import main
from tests.conftest import make_features_table, png_bytes


def _run(args, tmp_path):
    result = CliRunner().invoke(main, [str(a) for a in args])
    out = " ".join((result.output or "").split())  # rich may wrap long lines
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"traceback instead of a message: {result.exception!r}\n{result.output}"
    assert "Traceback" not in out
    return result.exit_code, out


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    return make_features_table(tmp_path_factory.mktemp("flat") / "t")


# --- the sweep spec and --set ---------------------------------------------------------------------------------
SPEC_CASES = [
    # (id, --set values, substrings the message must hold)
    (
        "beta-1",
        ["schemes=[{name: effective_number, params: {beta: 1}}]"],
        ["schemes.0", "'beta' must be in [0, 1), got 1"],
    ),
    ("gamma-negative", ["schemes=[{name: focal, params: {gamma: -3}}]"], ["'gamma' must be >= 0, got -3"]),
    (
        "max-weight-negative",
        ["schemes=[{name: inverse_frequency, params: {max_weight: -2}}]"],
        ["'max_weight' must be > 0, got -2"],
    ),
    (
        "search-beta-above-1",
        ["schemes=[{name: effective_number, search: {beta: [0.5, 1.5]}}]"],
        ["'beta' search range end high must be in [0, 1), got 1.5"],
    ),
    ("search-low-above-high", ["schemes=[{name: focal, search: {gamma: [3, 1]}}]"], ["low < high, got [3.0, 1.0]"]),
    ("search-a-choice", ["schemes=[{name: node_imbalance, search: [schedule]}]"], ["'schedule' is a choice"]),
    (
        "search-a-choice-with-values",
        ["schemes=[{name: node_imbalance, search: {schedule: [linear, exponential]}}]"],
        ["'schedule' is a choice (none, linear, exponential, alternate), not a number range", "one scheme entry per"],
    ),
    (
        "search-values-not-numbers",
        ["schemes=[{name: focal, search: {gamma: [a, b]}}]"],
        ["search for 'gamma' must list numbers, [low, high]"],
    ),
    ("search-unknown", ["schemes=[{name: focal, search: [beta]}]"], ["cannot search 'beta'"]),
    ("focal-alpha-2", ["schemes=[{name: focal, params: {alpha: 2}}]"], ["'alpha' must be in [0, 1], got 2"]),
    ("clip-1", ["schemes=[{name: asymmetric, params: {clip: 1.0}}]"], ["'clip' must be in [0, 1), got 1"]),
    ("tau-negative", ["schemes=[{name: logit_adjusted, params: {tau: -1}}]"], ["'tau' must be >= 0"]),
    ("lam-zero", ["schemes=[{name: distribution_balanced, params: {lam: 0}}]"], ["'lam' must be > 0"]),
    (
        "heads-fraction",
        ["schemes=[{name: node_imbalance_focal, params: {heads: 2.5}}]"],
        ["'heads' must be a whole number >= 1, got 2.5"],
    ),
    (
        "gmu-one-head",
        ["schemes=[{name: node_imbalance_focal, params: {heads: 1, uncertainty: gated_margin}}]"],
        ["heads = 1 has none"],
    ),
    (
        "weight-targets",
        ["schemes=[{name: node_imbalance, params: {weight_targets: both}}]"],
        ["'weight_targets' must be one of negatives, positives"],
    ),
    (
        "reduction",
        ["schemes=[{name: node_imbalance_focal, params: {reduction: max}}]"],
        ["'reduction' must be one of sum, mean"],
    ),
    (
        "schedule-power-zero",
        ["schemes=[{name: node_imbalance, params: {schedule: exponential, schedule_power: 0}}]"],
        ["'schedule_power' must be > 0, got 0"],
    ),
    (
        "db-bias",
        ["schemes=[{name: distribution_balanced, params: {bias: sideways}}]"],
        ["'bias' must be one of code, paper"],
    ),
    ("param-unknown", ["schemes=[{name: focal, params: {beta: 0.5}}]"], ["has no parameter 'beta'"]),
    ("scheme-unknown", ["schemes=[nope]"], ["schemes.0.name", "unknown scheme 'nope'"]),
    (
        "duplicate-after-defaults",
        ["schemes=[focal, {name: focal, params: {gamma: 2}}]"],
        ["schemes.1: scheme 'focal' is listed twice", "defaults filled in"],
    ),
    ("seeds-duplicate", ["seeds=[0, 0]"], ["seeds", "distinct"]),
    ("epochs-negative", ["train.epochs=-1"], ["train.epochs = -1", "greater than 0"]),
    ("unknown-key", ["train.epoch=3"], ["train.epoch: unknown key"]),
    ("lr-schedule", ["train.lr_schedule=step"], ["train.lr_schedule", "'cosine', 'linear' or 'constant'"]),
    ("warmup-negative", ["train.warmup_epochs=-1"], ["train.warmup_epochs = -1"]),
    ("metric-unknown", ["search.metric=val/accuracy"], ["search.metric", "unknown metric"]),
    ("lr-range", ["search.lr=[0.1, 0.01]"], ["search.lr", "need 0 < low < high"]),
    ("wd-range", ["search.weight_decay=[0, 0.01]"], ["search.weight_decay", "need 0 < low < high"]),
    ("algorithm-unknown", ["search.algorithm=bayes"], ["search.algorithm", "'random', 'tpe' or 'grid'"]),
    ("tpe-nothing", ["search.algorithm=tpe"], ["search.algorithm tpe: nothing to search"]),
    (
        "tpe-asha",
        ["search.algorithm=tpe", "search.lr=[0.001, 0.01]", "scheduler.name=asha"],
        ["scheduler asha with search.algorithm tpe", "use scheduler fifo"],
    ),
    (
        "grid-of-ranges",
        ["search.algorithm=grid", "schemes=[{name: effective_number, search: [beta]}]"],
        ["schemes.0 (effective_number): search.algorithm grid runs listed values", "beta: [v1, v2, v3]"],
    ),
    (
        "range-of-three",
        ["schemes=[{name: focal, search: {gamma: [1, 2, 3]}}]"],
        ["search for 'gamma' lists 3 value(s); a range is [low, high]", "search.algorithm: grid"],
    ),
    (
        "grid-value-out-of-domain",
        ["search.algorithm=grid", "schemes=[{name: focal, search: {gamma: [1, -2, 3]}}]"],
        ["parameter 'gamma' value -2 must be >= 0"],
    ),
    (
        "metrics-one",
        ["search.algorithm=tpe", "search.lr=[0.001, 0.01]", "search.metrics=[val/macro_ap]"],
        ["search.metrics", "needs two or more metrics, got 1", "use search.metric"],
    ),
    (
        "metrics-unknown",
        ["search.algorithm=tpe", "search.lr=[0.001, 0.01]", "search.metrics=[val/macro_ap, val/recall_rare]"],
        ["search.metrics", "unknown metric(s) ['val/recall_rare']"],
    ),
    (
        "metrics-and-metric",
        [
            "search.algorithm=tpe",
            "search.lr=[0.001, 0.01]",
            "search.metric=val/micro_auprc",
            "search.metrics=[val/macro_ap, val/recall_few]",
        ],
        ["search.metric = 'val/micro_auprc' and search.metrics are both set", "remove search.metric"],
    ),  # fmt: skip
    (
        "metrics-and-mode",
        [
            "search.algorithm=tpe",
            "search.lr=[0.001, 0.01]",
            "search.mode=min",
            "search.metrics=[val/macro_ap, val/recall_few]",
        ],
        ["search.mode = 'min' and search.metrics are both set", "give the modes as search.modes"],
    ),  # fmt: skip
    (
        "metrics-modes-length",
        [
            "search.algorithm=tpe",
            "search.lr=[0.001, 0.01]",
            "search.metrics=[val/macro_ap, val/recall_few]",
            "search.modes=[max]",
        ],
        ["search.modes must list one mode per search.metrics entry (2)"],
    ),  # fmt: skip
    (
        "metrics-random",
        ["search.metrics=[val/macro_ap, val/recall_few]"],
        ["search.metrics (a multi-objective search) needs search.algorithm: tpe, got random"],
    ),
    ("thresholds-unknown", ["eval.thresholds=best"], ["eval.thresholds", "'fixed' or 'per_label'"]),
    ("prediction-rows-negative", ["eval.prediction_rows=-1"], ["eval.prediction_rows = -1"]),
    ("backbone-unknown", ["model.backbone=resnet9000"], ["model.backbone", "resnet9000"]),
    ("set-no-key", ["=5"], ["--set '=5': no key before '='"]),
    ("set-no-equals", ["train.epochs"], ["--set 'train.epochs': expected key=value"]),
    ("set-bad-yaml", ["schemes=[focal"], ["--set schemes: value '[focal' is not valid YAML"]),
    ("set-into-a-value", ["train.epochs.x=1"], ['train.epochs = {"x": 1}: Input should be a valid integer']),
    (
        "resources-unplaceable",
        ["resources.workers_per_trial=8", "resources.use_gpu=true"],
        ["demo sweep: 2 problem(s)", "8 CPUs but the cluster has", "needs 8 GPUs"],
    ),
    (
        "decode-gpu-without-gpus",
        ["train.decode=gpu", "resources.use_gpu=false"],
        ["train.decode = 'gpu'", "resources.use_gpu is false", "train.decode: cpu"],
    ),
    ("decode-unknown", ["train.decode=nvjpeg"], ["train.decode", "'cpu', 'gpu' or 'auto'"]),
    ("gpus-per-worker-0", ["resources.gpus_per_worker=0"], ["resources.gpus_per_worker = 0", "greater than 0"]),
    ("gpus-per-worker-negative", ["resources.gpus_per_worker=-1"], ["resources.gpus_per_worker = -1"]),
    (
        "gpus-per-worker-1.5",
        ["resources.gpus_per_worker=1.5", "resources.workers_per_trial=2"],
        ["resources.gpus_per_worker = 1.5", "whole GPUs", "use 1, 2, ... or a fraction below 1"],
    ),
    (
        "ddp-workers-sharing-a-gpu",
        ["resources.gpus_per_worker=0.5", "resources.workers_per_trial=2", "resources.use_gpu=true"],
        ["resources.gpus_per_worker = 0.5 with resources.workers_per_trial = 2", "NCCL cannot run two ranks"],
    ),
    (
        "tracking-uri-unknown-scheme",
        ["tracking.uri=htp://127.0.0.1:5000"],
        ["tracking.uri = 'htp://127.0.0.1:5000': unknown scheme 'htp://'", "http(s)://HOST:PORT"],
    ),
    (
        "tracking-uri-port-out-of-range",
        ["tracking.uri=http://127.0.0.1:99999"],
        ["tracking.uri = 'http://127.0.0.1:99999': port 99999 is out of range; a TCP port is 1-65535"],
    ),
    (
        "tracking-server-closed",
        ["tracking.uri=http://127.0.0.1:9"],
        ["tracking.uri = 'http://127.0.0.1:9': the MLflow server does not answer", "launch mlflow-server"],
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_values_are_refused_before_anything_starts(tmp_path, overrides, expected):
    runs = tmp_path / "runs"
    args = ["sweep", "--dry-run", "--set", f"tracking.dir={runs}"]
    for o in overrides:
        args += ["--set", o]
    code, out = _run(args, tmp_path)
    assert code == 2, out
    for text in expected:
        assert text in out, out
    assert not runs.exists()


@pytest.mark.parametrize("case", ["resources-unplaceable", "tracking-server-closed", "tracking-uri-unknown-scheme"])
def test_a_real_run_checks_what_a_dry_run_checks_before_writing_anything(tmp_path, case):
    """Without --dry-run: the same refusal, exit 2, and no sweep folder, store, demo data or Ray left behind."""
    runs = tmp_path / "runs"
    (_, overrides, expected) = next(c for c in SPEC_CASES if c[0] == case)
    args = ["sweep", "--set", f"tracking.dir={runs}"]
    for o in overrides:
        args += ["--set", o]
    code, out = _run(args, tmp_path)
    assert code == 2, out
    for text in expected:
        assert text in out, out
    assert not runs.exists() and "Traceback" not in out  # no spec.yaml, no store (no FAILED parent run, no "latest")
    import ray

    assert not ray.is_initialized()  # Ray was never started
    code, out = _run(["report", "latest", "--dir", runs], tmp_path)  # nothing for `report latest` to find
    assert code == 2 and "no MLflow store at" in out and not runs.exists()


def test_spec_file_problems_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    code, out = _run(["sweep", missing, "--dry-run"], tmp_path)
    assert code == 2 and f"{missing}: file not found" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("schemes: [focal\n")
    code, out = _run(["sweep", bad, "--dry-run"], tmp_path)
    assert code == 2 and str(bad) in out and "not valid YAML" in out and "line" in out
    listy = tmp_path / "list.yaml"
    listy.write_text("- focal\n")
    code, out = _run(["sweep", listy, "--dry-run"], tmp_path)
    assert code == 2 and "top level must be a mapping" in out


def test_schema_and_data_problems_are_reported_together(tmp_path, flat):
    broken = tmp_path / "broken"
    shutil.copytree(flat.root, broken)
    (broken / "train.parquet").write_bytes(b"garbage")
    code, out = _run(
        [
            "sweep",
            "--dry-run",
            "--set",
            f"data.path={broken}",
            "--set",
            "train.epochs=-1",
            "--set",
            f"tracking.dir={tmp_path / 'runs'}",
        ],
        tmp_path,
    )
    assert code == 2 and "train.epochs = -1" in out and "train.parquet: not readable as Parquet" in out


def test_a_hierarchical_scheme_on_a_flat_table_names_the_table(tmp_path):
    import numpy as np
    import pyarrow as pa

    from tailsweep.datasets import Manifest, write_table

    def split(n):
        x = np.ones((n, 2), np.float32)
        return pa.table(
            {
                "id": [f"r{i}" for i in range(n)],
                "labels": [["a"] if i % 2 else ["b"] for i in range(n)],
                "features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 2),
            }
        )

    table = write_table(
        tmp_path / "flat",
        Manifest(name="flat", input="features"),
        [{"label": "a", "parents": []}, {"label": "b", "parents": []}],
        {"train": split(8), "val": split(4), "test": split(4)},
    )
    code, out = _run(
        [
            "sweep",
            "--dry-run",
            "--set",
            f"data.path={table.root}",
            "--set",
            "model.backbone=mlp",
            "--set",
            "schemes=[mcloss]",
            "--set",
            f"tracking.dir={tmp_path / 'runs'}",
        ],
        tmp_path,
    )
    assert code == 2 and "'mcloss' needs a label hierarchy" in out
    assert not (tmp_path / "runs").exists()


def test_missing_data_path_is_named(tmp_path):
    code, out = _run(
        [
            "sweep",
            "--dry-run",
            "--set",
            f"data.path={tmp_path / 'nowhere'}",
            "--set",
            "model.backbone=mlp",
            "--set",
            f"tracking.dir={tmp_path / 'runs'}",
        ],
        tmp_path,
    )
    assert code == 2 and str(tmp_path / "nowhere") in out


def test_resume_without_a_sweep_says_so(tmp_path):
    code, out = _run(["sweep", "--resume", "latest", "--set", f"tracking.dir={tmp_path / 'runs'}"], tmp_path)
    assert code == 2 and "no sweeps to resume under" in out and str(tmp_path / "runs") in out


# --- label tables -----------------------------------------------------------------------------------------------
def test_validate_text_keeps_row_and_column_locations(tmp_path, flat):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = tmp_path / "t"
    shutil.copytree(flat.root, t)
    tbl = pq.read_table(t / "train.parquet")
    ids = tbl.column("id").to_pylist()
    ids[3] = ids[2]  # a duplicate id on row 3
    pq.write_table(tbl.set_column(0, "id", pa.array(ids)), t / "train.parquet")
    code, out = _run(["data", "validate", t], tmp_path)
    assert code == 1 and "train.parquet [id ['r2']]: 1 duplicate id(s)" in out, out


@pytest.mark.parametrize("what", ["parquet", "manifest"])
def test_corrupt_files_are_named_not_a_traceback(tmp_path, flat, what):
    t = tmp_path / "t"
    shutil.copytree(flat.root, t)
    target = t / ("train.parquet" if what == "parquet" else "manifest.json")
    target.write_bytes(b"\x00\x01 not what it should be")
    code, out = _run(["data", "validate", t], tmp_path)
    assert code == 1 and target.name in out
    code, out = _run(["data", "stats", t], tmp_path)
    assert code == 2 and target.name in out


def test_image_path_table_with_non_images_fails_validation(tmp_path):
    import pyarrow as pa

    from tailsweep.datasets import Manifest, write_table

    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.png").write_bytes(png_bytes())
    (tmp_path / "files" / "b.png").write_text("this is not an image")
    root = tmp_path / "t"

    def split(names):
        return pa.table(
            {
                "id": [f"{n}{i}" for i, n in enumerate(names)],
                "labels": [["x"]] * len(names),
                "image_path": [str(tmp_path / "files" / n) for n in names],
            }
        )

    write_table(
        root,
        Manifest(name="p", input="image_path"),
        [{"label": "x", "parents": []}],
        {"train": split(["a.png", "b.png"]), "val": split(["a.png"]), "test": split(["a.png"])},
    )
    code, out = _run(["data", "validate", root], tmp_path)
    assert code == 1 and "train.parquet" in out and "not a decodable image" in out and "[row 1]" in out


def test_stats_of_a_missing_table(tmp_path):
    code, out = _run(["data", "stats", tmp_path / "nope"], tmp_path)
    assert code == 2 and str(tmp_path / "nope") in out


# --- importers --------------------------------------------------------------------------------------------------
HEAD = "@RELATION t\n@ATTRIBUTE x numeric\n@ATTRIBUTE class hierarchical 01,01/01,02\n@DATA\n"


def _arff(folder, rows, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        text = HEAD + rows
        if gz:
            with gzip.open(folder / f"toy_FUN.{split}.arff.gz", "wt") as f:
                f.write(text)
        else:
            (folder / f"toy_FUN.{split}.arff").write_text(text)


def test_import_hmc_truncated_gzip_names_the_file(tmp_path):
    _arff(tmp_path / "src" / "toy_FUN", "".join(f"{i * 7919 % 10007},01\n" for i in range(3000)), gz=True)
    gz = tmp_path / "src" / "toy_FUN" / "toy_FUN.train.arff.gz"
    gz.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) // 2])
    code, out = _run(["data", "import-hmc", "toy_FUN", tmp_path / "out", "--data-dir", tmp_path / "src"], tmp_path)
    assert code == 2 and str(gz) in out and "truncated" in out and "Aborted" not in out
    assert not (tmp_path / "out").exists()


def test_import_hmc_unknown_labels_name_file_and_line(tmp_path):
    _arff(tmp_path / "src" / "toy_FUN", "1,01/01\n2,03@01\n")
    code, out = _run(["data", "import-hmc", "toy_FUN", tmp_path / "out", "--data-dir", tmp_path / "src"], tmp_path)
    assert code == 2 and "toy_FUN.train.arff:6: '03'" in out and "not in the header's hierarchy" in out
    assert not (tmp_path / "out").exists()


def test_import_hmc_bad_row_names_file_and_line(tmp_path):
    _arff(tmp_path / "src" / "toy_FUN", "1,01\n1,2,01\n")
    code, out = _run(["data", "import-hmc", "toy_FUN", tmp_path / "out", "--data-dir", tmp_path / "src"], tmp_path)
    assert code == 2 and "toy_FUN.train.arff:6: 3 fields, expected 2" in out
    assert not (tmp_path / "out").exists()


def test_import_hmc_non_numeric_value_names_file_line_and_fix(tmp_path):
    _arff(tmp_path / "src" / "toy_FUN", "1,01\n% a comment\n2.5e3,01/01\nabc,02\n")
    code, out = _run(["data", "import-hmc", "toy_FUN", tmp_path / "out", "--data-dir", tmp_path / "src"], tmp_path)
    assert code == 2 and "toy_FUN.train.arff:8: attribute 'x' is numeric" in out and "'abc'" in out
    assert "or '?' for a missing value" in out and "Traceback" not in out
    assert not (tmp_path / "out").exists()


def test_import_hmc_missing_dataset_names_the_file(tmp_path):
    code, out = _run(["data", "import-hmc", "nope_FUN", tmp_path / "out", "--data-dir", tmp_path], tmp_path)
    assert code == 2 and "nope_FUN.train.arff.gz" in out
    assert not (tmp_path / "out").exists()


def test_import_hmc_others_set_without_test_file(tmp_path):
    (tmp_path / "src" / "enron_others").mkdir(parents=True)
    (tmp_path / "src" / "enron_others" / "Enron_corr_trainvalid.arff").write_text(HEAD + "1,01\n")
    code, out = _run(["data", "import-hmc", "enron_others", tmp_path / "out", "--data-dir", tmp_path / "src"], tmp_path)
    assert code == 2 and "Enron_corr_test.arff" in out
    assert not (tmp_path / "out").exists()


def _images(tmp_path, labels):
    (tmp_path / "imgs").mkdir()
    rows = ["image,label"]
    for i, label in enumerate(labels):
        (tmp_path / "imgs" / f"i{i}.png").write_bytes(png_bytes())
        rows.append(f"i{i},{label}")
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")


def test_import_images_misspelt_taxonomy_names_rows_and_lines(tmp_path):
    _images(tmp_path, ["T-Shirt", "Shirt", "T-Shirt", "Pants"] * 5)
    tax = tmp_path / "tax.yaml"
    tax.write_text("upper: [TShirt, Shirt]\nlower: [Pants]\n")
    code, out = _run(
        [
            "data",
            "import-images",
            tmp_path / "rows.csv",
            tmp_path / "imgs",
            tmp_path / "out",
            "--taxonomy",
            tax,
            "--image-col",
            "image",
            "--labels-col",
            "label",
            "--ext",
            ".png",
        ],
        tmp_path,
    )
    assert code == 2 and "'T-Shirt' (rows.csv column 'label', row(s) 2, 4" in out, out
    assert "did you mean 'TShirt' at tax.yaml:1" in out
    assert not (tmp_path / "out").exists()


def test_import_images_missing_column_and_image(tmp_path):
    _images(tmp_path, ["a", "b"] * 4)
    code, out = _run(
        [
            "data",
            "import-images",
            tmp_path / "rows.csv",
            tmp_path / "imgs",
            tmp_path / "out",
            "--image-col",
            "file",
            "--labels-col",
            "label",
            "--ext",
            ".png",
        ],
        tmp_path,
    )
    assert code == 2 and "['file'] not found" in out
    (tmp_path / "imgs" / "i3.png").unlink()
    code, out = _run(
        [
            "data",
            "import-images",
            tmp_path / "rows.csv",
            tmp_path / "imgs",
            tmp_path / "out",
            "--image-col",
            "image",
            "--labels-col",
            "label",
            "--ext",
            ".png",
        ],
        tmp_path,
    )
    assert code == 2 and "i3.png (row 5): file not found" in out and "--skip-bad" in out
    assert not (tmp_path / "out").exists()


# --- report, ui, reproduce, cluster ----------------------------------------------------------------------------
def test_ui_on_a_busy_port_fails(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code, out = _run(["ui", "--dir", tmp_path, "--port", port], tmp_path)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in out and "--port" in out


def test_ui_and_report_without_a_store(tmp_path):
    code, out = _run(["ui", "--dir", tmp_path / "runs", "--port", 0], tmp_path)
    assert code == 2 and "no MLflow store at" in out
    code, out = _run(["report", "--dir", tmp_path / "runs"], tmp_path)
    assert code == 2 and "no MLflow store at" in out
    assert not (tmp_path / "runs").exists()


def test_reproduce_unknown_dataset(tmp_path):
    code, out = _run(["reproduce", "hmc", "--datasets", "nope_FUN", "--results", tmp_path / "r"], tmp_path)
    assert code == 2 and "--datasets: unknown ['nope_FUN']" in out
    assert not (tmp_path / "r").exists()


def test_cluster_file_missing_or_malformed(tmp_path):
    code, out = _run(["sweep", "--dry-run", "--cluster", tmp_path / "nope.yaml"], tmp_path)
    assert code == 2 and "nope.yaml" in out
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump({"cluster_name": "x", "provider": {"type": "local"}, "max_workers": "many"}))
    code, out = _run(["sweep", "--dry-run", "--cluster", bad], tmp_path)
    assert code == 2 and "c.yaml" in out


def _autoscaling_yaml(tmp_path, edit) -> str:
    """The shipped cluster.yaml (AWS, GPU node types at min_workers 0), edited; its head is never asked."""
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster.yaml").read_text())
    edit(config)
    path = tmp_path / "gpu-cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _no_gpu_types(c):
    for name in ("worker.gpu.1x", "worker.gpu.4x"):
        c["available_node_types"][name]["resources"] = {"CPU": 4}


def _gpu_types_at_zero(c):
    for name in ("worker.gpu.1x", "worker.gpu.4x"):
        c["available_node_types"][name]["max_workers"] = 0


AUTOSCALING_CASES = [
    # (id, edit of cluster.yaml, --set values, substrings the message must hold)
    (
        "use-gpu-without-gpu-node-type",
        _no_gpu_types,
        ["resources.use_gpu=true"],
        ["a worker needs 1 CPU and 1 GPU", "no node type of", "worker.gpu.1x (CPU 4, GPU 0)", "resources.use_gpu"],
    ),
    (
        "gpu-node-type-max-workers-0",
        _gpu_types_at_zero,
        ["resources.use_gpu=true"],
        ["available_node_types.worker.gpu.1x", "max_workers = 0", "raise its max_workers"],
    ),
    (
        "node-type-without-resources",
        lambda c: c["available_node_types"]["worker.gpu.4x"].update(resources={}),
        [],
        ["available_node_types.worker.gpu.4x.resources: declare the node's CPU (and GPU) count"],
    ),
    (
        "max-workers-lots",
        lambda c: c["available_node_types"]["worker.gpu.1x"].update(max_workers="lots"),
        [],
        ["available_node_types.worker.gpu.1x.max_workers = 'lots'", "a whole number of nodes (0 or more) is needed"],
    ),
]


@pytest.mark.parametrize(
    ("edit", "overrides", "expected"), [c[1:] for c in AUTOSCALING_CASES], ids=[c[0] for c in AUTOSCALING_CASES]
)
def test_an_autoscaling_cluster_that_cannot_hold_the_sweep_is_refused_from_its_yaml(
    tmp_path, flat, edit, overrides, expected
):
    """The node types alone refuse these (exit 2, naming the key or node type): the head is never asked (the
    --address given answers nothing) and nothing is written."""
    runs = tmp_path / "runs"
    args = ["sweep", "--dry-run", "--cluster", _autoscaling_yaml(tmp_path, edit), "--address", "http://127.0.0.1:9"]
    for o in [f"data.path={flat}", f"tracking.dir={runs}", *overrides]:
        args += ["--set", o]
    code, out = _run(args, tmp_path)
    assert code == 2, out
    for text in expected:
        assert text in out, out
    assert "cannot reach" not in out and not runs.exists()


def test_import_images_binary_csv_is_named(tmp_path):
    _images(tmp_path, ["a", "b"])
    (tmp_path / "rows.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary")
    code, out = _run(
        [
            "data",
            "import-images",
            tmp_path / "rows.csv",
            tmp_path / "imgs",
            tmp_path / "out",
            "--image-col",
            "image",
            "--labels-col",
            "label",
        ],
        tmp_path,
    )
    assert code == 2 and str(tmp_path / "rows.csv") in out and "UTF-8" in out
    assert not (tmp_path / "out").exists()


def test_a_missing_ray_validator_is_reported_as_the_installation(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_validator(name, *args, **kwargs):
        if name == "ray.autoscaler._private.util":
            raise ImportError("No module named 'jsonschema'")
        return real_import(name, *args, **kwargs)

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"cluster_name": "x", "provider": {"type": "local", "head_ip": "127.0.0.1"}}))
    monkeypatch.setattr(builtins, "__import__", no_validator)
    code, out = _run(["sweep", "--dry-run", "--cluster", cfg], tmp_path)
    assert code == 2 and "an installation problem, not your config" in out and "jsonschema" in out


def test_ctrl_c_is_recorded_and_handed_to_tune_as_its_graceful_stop():
    """Ctrl-C during a sweep (the whole path, exit 130 and the --resume command, is run for real in
    tests/integration/test_resume.py): recorded, then sent to Tune as SIGUSR1, its documented stop signal."""
    import os
    import signal

    from tailsweep.orchestrator._sweep import _Interrupt

    got = []
    before_int = signal.getsignal(signal.SIGINT)  # default, or SIG_IGN under nohup / a background job
    before = signal.signal(signal.SIGUSR1, lambda *a: got.append("tune stops in order"))  # as Tune listens
    try:
        with _Interrupt() as interrupt:
            assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # Tune leaves SIGINT to us
            os.kill(os.getpid(), signal.SIGINT)
            assert interrupt.seen and got == ["tune stops in order"]
            # a second Ctrl-C interrupts at once -- also once Tune's stop handler has put ours back
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
            signal.signal(signal.SIGINT, interrupt._handle)
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
        assert signal.getsignal(signal.SIGINT) == before_int  # restored
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_a_second_local_sweep_on_the_same_tracking_dir_is_refused(tmp_path, flat):
    from tailsweep.orchestrator._sweep import LocalRayClaim

    runs = tmp_path / "runs"
    first = LocalRayClaim.take(runs, "first-sweep")  # what a running sweep holds while its local Ray lives
    try:
        code, out = _run(
            [
                "sweep",
                "--set",
                f"data.path={flat.root}",
                "--set",
                "model.backbone=mlp",
                "--set",
                f"tracking.dir={runs}",
                "--set",
                "schemes=[unweighted]",
            ],
            tmp_path,
        )
        assert code == 2 and "sweep first-sweep (pid" in out and "is running with its own local Ray" in out
        assert "another tracking.dir" in out
        assert not (runs / "sweeps").exists() and not (runs / "mlflow.db").exists()  # nothing written
    finally:
        first.release()
    again = LocalRayClaim.take(runs, "next")  # released: the next sweep may start its Ray
    again.release()


def test_import_hmc_unknown_preprocess_is_refused(tmp_path):
    _arff(tmp_path / "src" / "toy_FUN", "1,01\n")
    code, out = _run(
        ["data", "import-hmc", "toy_FUN", tmp_path / "out", "--data-dir", tmp_path / "src", "--preprocess", "median"],
        tmp_path,
    )
    assert code == 2 and "--preprocess" in out and "'chmcnn', 'trainval', 'impute'" in out
    assert not (tmp_path / "out").exists()


# --- second round (issue 31): every file the user hands over, read through tailsweep/inputs.py -------------------
def _sweep_dry(tmp_path, *sets):
    args = ["sweep", "--dry-run", "--set", "model.backbone=mlp", "--set", f"tracking.dir={tmp_path / 'runs'}"]
    for s in sets:
        args += ["--set", s]
    return _run(args, tmp_path)


@pytest.mark.parametrize(
    ("target", "content", "expected"),
    [
        ("labels.parquet", b"garbage", "labels.parquet: not readable as Parquet"),
        ("manifest.json", bytes(range(128, 256)), "manifest.json: not UTF-8 text"),
        ("manifest.json", b'{"name": "x",\n "input": }', "manifest.json: not valid JSON at line 2, column 11"),
    ],
    ids=["labels-parquet", "binary-manifest", "manifest-syntax"],
)
def test_a_corrupt_table_file_is_named_by_every_command(tmp_path, flat, target, content, expected):
    t = tmp_path / "t"
    shutil.copytree(flat.root, t)
    (t / target).write_bytes(content)
    code, out = _run(["data", "validate", t], tmp_path)
    assert code == 1 and expected in out, out
    code, out = _run(["data", "stats", t], tmp_path)
    assert code == 2 and expected in out, out
    code, out = _sweep_dry(tmp_path, f"data.path={t}")
    assert code == 2 and expected in out and str(t) in out, out
    code, out = _run(["data", "longtail", t, tmp_path / "lt"], tmp_path)
    assert code == 2 and expected in out, out
    assert not (tmp_path / "runs").exists() and not (tmp_path / "lt").exists()


def test_a_yaml_file_given_as_a_table_is_not_told_to_make_a_demo_table(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("schemes: [focal]\n")
    code, out = _sweep_dry(tmp_path, f"data.path={spec}")
    assert code == 2 and f"{spec}: a file, not a label table" in out and "launch sweep FILE.yaml" in out
    assert "data synth" not in out


def test_binary_spec_and_cluster_files_are_named(tmp_path):
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    code, out = _run(["sweep", blob, "--dry-run"], tmp_path)
    assert code == 2 and f"{blob}: not UTF-8 text" in out
    code, out = _run(["sweep", "--dry-run", "--cluster", blob], tmp_path)
    assert code == 2 and f"{blob}: not UTF-8 text" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_name: x\nprovider: {type: local\n")
    code, out = _run(["sweep", "--dry-run", "--cluster", bad], tmp_path)
    assert code == 2 and f"{bad}: not valid YAML at line 3" in out


# --- the MLflow store: a sweep writes one, report and ui only read one ------------------------------------------
def _files(root):
    import hashlib

    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "real-run"])
def test_a_tracking_dir_that_is_a_file_is_refused_before_anything_starts(tmp_path, flat, dry):
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the runs folder should be")
    for where in (blocker, blocker / "sub"):
        args = ["sweep", *(["--dry-run"] if dry else []), "--set", f"data.path={flat.root}"]
        args += ["--set", "model.backbone=mlp", "--set", f"tracking.dir={where}"]
        code, out = _run(args, tmp_path)
        assert code == 2 and f"tracking.dir = '{where}': {blocker} is a file, not a folder" in out, out
    assert blocker.read_text() == "a file where the runs folder should be"


def test_a_read_only_tracking_dir_is_refused(tmp_path, flat, monkeypatch):
    """(Tests run as root here, whom permissions do not stop: the check's answer is forced for the folder.)"""
    import os

    import tailsweep.inputs as inputs

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(inputs.os, "access", lambda p, mode: False if str(p) == str(ro) else real(p, mode))
    code, out = _sweep_dry(tmp_path, f"data.path={flat.root}", f"tracking.dir={ro / 'runs'}")
    assert code == 2 and f"tracking.dir = '{ro / 'runs'}': {ro} is not writable here" in out, out
    assert list(ro.iterdir()) == []


def test_an_mlflow_db_that_is_not_a_database_is_refused_by_every_command(tmp_path, flat):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "mlflow.db").write_text("not a database")
    code, out = _sweep_dry(tmp_path, f"data.path={flat.root}")
    assert code == 2 and f"{runs / 'mlflow.db'}: not a SQLite database, so not an MLflow store" in out, out
    for args in (["report", "--dir", runs], ["ui", "--dir", runs, "--port", 0]):
        code, out = _run(args, tmp_path)
        assert code == 2 and f"{runs / 'mlflow.db'}: not a SQLite database, not an MLflow store" in out, out
    assert (runs / "mlflow.db").read_text() == "not a database" and len(list(runs.iterdir())) == 1


def test_report_and_ui_never_create_a_store(tmp_path):
    new = tmp_path / "new" / "x.db"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "mlflow.db").touch()
    cases = [
        (["report", "--uri", f"sqlite:///{new}"], f"no MLflow store at {new}"),
        (["ui", "--uri", f"sqlite:///{new}", "--port", 0], f"no MLflow store at {new}"),
        (["report", "--dir", empty], f"{empty / 'mlflow.db'}: an empty file, not an MLflow store"),
        (["ui", "--dir", empty, "--port", 0], f"{empty / 'mlflow.db'}: an empty file, not an MLflow store"),
        (["report", "--uri", tmp_path / "nofs"], f"no MLflow file store at {tmp_path / 'nofs'}"),
        (["report", "--uri", "htp://127.0.0.1:5000"], "--uri 'htp://127.0.0.1:5000': unknown scheme 'htp://'"),
        (["ui", "--uri", "http://127.0.0.1:99999", "--port", 0], "port 99999 is out of range"),
    ]
    for args, expected in cases:
        code, out = _run(args, tmp_path)
        assert code == 2 and expected in out, (args, out)
    assert not (tmp_path / "new").exists() and not (tmp_path / "nofs").exists()
    assert (empty / "mlflow.db").stat().st_size == 0


def test_the_mlflow_schemes_are_mlflows():
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    from tailsweep.orchestrator._store import MLFLOW_SCHEMES

    assert sorted(MLFLOW_SCHEMES) == sorted(_tracking_store_registry._registry)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sweep's store as MLflow holds it (parent run, four finished child runs), made with MLflow's client."""
    from mlflow.tracking import MlflowClient

    from tailsweep.analysis.tags import KIND_TAG, PARENT_TAG, SWEEP_TAG

    root = tmp_path_factory.mktemp("store") / "runs"
    root.mkdir()
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.create_experiment("tailsweep", artifact_location=str(root / "mlartifacts"))
    parent = client.create_run(exp, run_name="demo-1", tags={SWEEP_TAG: "demo-1", KIND_TAG: "sweep"})
    for scheme in ("unweighted", "focal"):
        for seed in (0, 1):
            run = client.create_run(
                exp, run_name=f"{scheme} seed={seed}", tags={SWEEP_TAG: "demo-1", PARENT_TAG: parent.info.run_id}
            )
            client.log_param(run.info.run_id, "scheme", scheme)
            client.log_param(run.info.run_id, "seed", seed)
            for key in ("test/macro_ap", "test/macro_f1", "val/macro_ap"):
                client.log_metric(run.info.run_id, key, 0.5 + 0.1 * seed + 0.05 * (scheme == "focal"))
            client.set_terminated(run.info.run_id, "FINISHED")
    client.set_terminated(parent.info.run_id, "FINISHED")
    return root


def test_a_report_on_a_copied_store_writes_only_into_the_copy(tmp_path, store):
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    before = _files(store)
    code, out = _run(["report", "--dir", copy], tmp_path)
    assert code == 0, out
    assert (copy / "sweeps" / "demo-1" / "report" / "report.md").is_file()
    assert "not logged to MLflow" in out and "outside this store's folder" in out
    assert _files(store) == before  # the original store and its artifacts are untouched


def test_an_unknown_baseline_is_refused_with_the_known_settings(tmp_path, store):
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    code, out = _run(["report", "--dir", copy, "--baseline", "focl"], tmp_path)
    assert code == 2 and "--baseline 'focl': sweep demo-1 has no such setting; its settings: focal, unweighted" in out
    assert not (copy / "sweeps").exists()


# --- command-line options get the spec keys' checks -------------------------------------------------------------
def test_cli_numbers_are_checked_like_spec_keys(tmp_path, flat):
    cases = [
        (["data", "synth", tmp_path / "s", "--n-train", 0, "--image-size", 4], ["--n-train 0", "--image-size 4"]),
        (["data", "longtail", flat.root, tmp_path / "lt", "--imbalance", "nan"], ["--imbalance must be a finite"]),
        (["data", "longtail", flat.root, tmp_path / "lt", "--imbalance", "inf"], ["--imbalance must be a finite"]),
        (
            ["data", "longtail", flat.root, tmp_path / "lt", "--imbalance", "1e12"],
            ["--imbalance 1e+12 cannot be reached", "most frequent label has 54 training positives", "--imbalance 54"],
        ),
        (["reproduce", "hmc", "--seeds", "0,x", "--results", tmp_path / "r"], ["--seeds '0,x': 'x' is not a whole"]),
        (["reproduce", "hmc", "--seeds", ",", "--results", tmp_path / "r"], ["--seeds ',': no values"]),
        (["ui", "--port", 99999], ["'--port': 99999 is not in the range 0<=x<=65535"]),
        (["mlflow-server", "--port", 99999, "--dir", tmp_path / "srv"], ["'--port': 99999 is not in the range"]),
    ]
    for args, expected in cases:
        code, out = _run(args, tmp_path)
        assert code == 2 and all(e in out for e in expected), (args, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_bad_address_port_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"cluster_name": "x", "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": ["127.0.0.2"]}}
        )
    )
    code, out = _run(["sweep", "--dry-run", "--cluster", cfg, "--address", "host:notaport"], tmp_path)
    assert code == 2 and "--address 'http://host:notaport': port 'notaport' is not a number" in out, out
    code, out = _run(["sweep", "--dry-run", "--cluster", cfg, "--address", "http://127.0.0.1:99999"], tmp_path)
    assert code == 2 and "port 99999 is out of range" in out and "refused" not in out, out


def test_reproduce_hmc_with_no_dataset_there_exits_2(tmp_path):
    args = ["reproduce", "hmc", "--datasets", "cellcycle_FUN", "--data-dir", tmp_path / "nodata"]
    code, out = _run([*args, "--results", tmp_path / "r", "--runs-dir", tmp_path / "runs"], tmp_path)
    assert code == 2 and "none of the 1 dataset(s) asked for is there" in out and "cellcycle_FUN.train.arff" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- data with nothing to learn, and the table's warnings in the sweep --------------------------------------------
def _features_table(root, train_labels):
    import numpy as np
    import pyarrow as pa

    from tailsweep.datasets import Manifest, write_table

    def split(labels):
        x = np.ones((len(labels), 2), np.float32)
        return pa.table(
            {
                "id": [f"r{i}" for i in range(len(labels))],
                "labels": pa.array(labels, pa.list_(pa.string())),
                "features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 2),
            }
        )

    labels = [{"label": "a", "parents": []}, {"label": "b", "parents": []}]
    splits = {"train": split(train_labels), "val": split([["a"], ["b"]]), "test": split([["a"], ["b"]])}
    return write_table(root, Manifest(name=root.name, input="features"), labels, splits).root


def test_a_table_with_nothing_to_learn_is_refused_by_validate_and_the_sweep(tmp_path):
    table = _features_table(tmp_path / "none", [[]] * 8)
    expected = "train.parquet [column 'labels']: none of the 8 training rows has a label: there is nothing to learn"
    code, out = _run(["data", "validate", table], tmp_path)
    assert code == 1 and expected in out, out
    for dry in (["--dry-run"], []):
        args = ["sweep", *dry, "--set", f"data.path={table}", "--set", "model.backbone=mlp"]
        code, out = _run([*args, "--set", f"tracking.dir={tmp_path / 'runs'}"], tmp_path)
        assert code == 2 and expected in out, out
    assert not (tmp_path / "runs").exists()


def test_the_sweep_prints_the_tables_warnings(tmp_path):
    table = _features_table(tmp_path / "some", [["a"], [], ["a"], []])
    code, out = _sweep_dry(tmp_path, f"data.path={table}", "schemes=[unweighted]")
    assert code == 0, out
    assert "train.parquet [rows 1, 3]: 2 of 4 training rows have no label" in out
    assert "train.parquet [labels 'b']: 1 label(s) have no training positives" in out


def test_taxonomy_entries_matching_no_csv_label_are_reported(tmp_path):
    _images(tmp_path, ["T-Shirt", "Shirt", "T-Shirt", "Pants"] * 5)
    tax = tmp_path / "tax.yaml"
    tax.write_text("upper: [T-Shirt, Shirt, Blouse]\nlower: [Pants]\nshoes: [Boot]\n")
    args = ["data", "import-images", tmp_path / "rows.csv", tmp_path / "imgs", tmp_path / "out", "--taxonomy", tax]
    code, out = _run([*args, "--labels-col", "label", "--ext", ".png"], tmp_path)
    assert code == 0, out
    assert "3 taxonomy entries match no CSV label and are not in the table" in out
    assert "'Blouse' (tax.yaml:1), 'shoes' (tax.yaml:3), 'Boot' (tax.yaml:3)" in out


def test_a_choice_under_search_is_not_told_to_give_a_range(tmp_path):
    for search in ("[schedule]", "{schedule: [linear, exponential]}"):
        code, out = _sweep_dry(tmp_path, f"schemes=[{{name: node_imbalance, search: {search}}}]")
        assert code == 2 and "is a choice" in out and "[low, high]" not in out and "no default range" not in out, out


# --- hints that work as printed -------------------------------------------------------------------------------
def test_a_cluster_yaml_with_a_non_numeric_worker_count_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    base = {"cluster_name": "x", "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": ["127.0.0.2"]}}
    for value, shown in (("lots", "'lots'"), (-1, "-1"), (1.5, "1.5")):
        cfg.write_text(yaml.safe_dump({**base, "max_workers": value}))
        code, out = _run(["sweep", "--dry-run", "--cluster", cfg], tmp_path)
        assert code == 2 and f"{cfg}: max_workers = {shown}: a whole number of nodes (0 or more) is needed" in out, out
        assert "not supported between" not in out


def test_the_resume_command_keeps_tracking_dir_and_is_shell_quoted(tmp_path):
    import shlex

    from tailsweep.orchestrator._launch import SweepRequest

    runs = tmp_path / "my runs"
    request = SweepRequest(str(tmp_path / "my spec.yaml"), (f"tracking.dir={runs}", "train.epochs=1"))
    again = request.command(resume="demo-1")
    assert shlex.split(again) == [
        "launch",
        "sweep",
        str(tmp_path / "my spec.yaml"),
        "--set",
        f"tracking.dir={runs}",  # where the sweep is: kept
        "--resume",
        "demo-1",
    ]  # train.epochs=1 is the stored spec's already (a resume refuses to change it)


def test_paths_with_a_space_are_printed_shell_quoted(tmp_path, flat):
    import shlex

    from tailsweep.orchestrator._sweep import LocalRayClaim

    runs = tmp_path / "my runs"
    first = LocalRayClaim.take(runs, "first-sweep")
    try:
        args = ["sweep", "--set", f"data.path={flat.root}", "--set", "model.backbone=mlp"]
        code, out = _run([*args, "--set", f"tracking.dir={runs}", "--set", "schemes=[unweighted]"], tmp_path)
        assert code == 2 and f"`launch ui --dir {shlex.quote(str(runs))}`" in out, out
    finally:
        first.release()
    missing = tmp_path / "no table"
    code, out = _sweep_dry(tmp_path, f"data.path={missing}")
    assert code == 2 and f"`launch data synth {shlex.quote(str(missing))}`" in out, out
