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
    ("beta-1", ["schemes=[{name: effective_number, params: {beta: 1}}]"],
     ["schemes.0", "'beta' must be in [0, 1), got 1"]),
    ("gamma-negative", ["schemes=[{name: focal, params: {gamma: -3}}]"], ["'gamma' must be >= 0, got -3"]),
    ("max-weight-negative", ["schemes=[{name: inverse_frequency, params: {max_weight: -2}}]"],
     ["'max_weight' must be > 0, got -2"]),
    ("search-beta-above-1", ["schemes=[{name: effective_number, search: {beta: [0.5, 1.5]}}]"],
     ["'beta' search range end high must be in [0, 1), got 1.5"]),
    ("search-low-above-high", ["schemes=[{name: focal, search: {gamma: [3, 1]}}]"], ["low < high, got [3.0, 1.0]"]),
    ("search-a-choice", ["schemes=[{name: node_imbalance, search: [schedule]}]"], ["'schedule' is a choice"]),
    ("search-unknown", ["schemes=[{name: focal, search: [beta]}]"], ["cannot search 'beta'"]),
    ("focal-alpha-2", ["schemes=[{name: focal, params: {alpha: 2}}]"], ["'alpha' must be in [0, 1], got 2"]),
    ("clip-1", ["schemes=[{name: asymmetric, params: {clip: 1.0}}]"], ["'clip' must be in [0, 1), got 1"]),
    ("tau-negative", ["schemes=[{name: logit_adjusted, params: {tau: -1}}]"], ["'tau' must be >= 0"]),
    ("lam-zero", ["schemes=[{name: distribution_balanced, params: {lam: 0}}]"], ["'lam' must be > 0"]),
    ("heads-fraction", ["schemes=[{name: node_imbalance_focal, params: {heads: 2.5}}]"],
     ["'heads' must be a whole number >= 1, got 2.5"]),
    ("gmu-one-head", ["schemes=[{name: node_imbalance_focal, params: {heads: 1, uncertainty: gated_margin}}]"],
     ["heads = 1 has none"]),
    ("weight-targets", ["schemes=[{name: node_imbalance, params: {weight_targets: both}}]"],
     ["'weight_targets' must be one of negatives, positives"]),
    ("reduction", ["schemes=[{name: node_imbalance_focal, params: {reduction: max}}]"],
     ["'reduction' must be one of sum, mean"]),
    ("schedule-power-zero", ["schemes=[{name: node_imbalance, params: {schedule: exponential, schedule_power: 0}}]"],
     ["'schedule_power' must be > 0, got 0"]),
    ("db-bias", ["schemes=[{name: distribution_balanced, params: {bias: sideways}}]"],
     ["'bias' must be one of code, paper"]),
    ("param-unknown", ["schemes=[{name: focal, params: {beta: 0.5}}]"], ["has no parameter 'beta'"]),
    ("scheme-unknown", ["schemes=[nope]"], ["schemes.0.name", "unknown scheme 'nope'"]),
    ("duplicate-after-defaults", ["schemes=[focal, {name: focal, params: {gamma: 2}}]"],
     ["schemes.1: scheme 'focal' is listed twice", "defaults filled in"]),
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
    ("tpe-asha", ["search.algorithm=tpe", "search.lr=[0.001, 0.01]", "scheduler.name=asha"],
     ["scheduler asha with search.algorithm tpe", "use scheduler fifo"]),
    ("grid-of-ranges", ["search.algorithm=grid", "schemes=[{name: effective_number, search: [beta]}]"],
     ["schemes.0 (effective_number): search.algorithm grid runs listed values", "beta: [v1, v2, v3]"]),
    ("range-of-three", ["schemes=[{name: focal, search: {gamma: [1, 2, 3]}}]"],
     ["search for 'gamma' lists 3 value(s); a range is [low, high]", "search.algorithm: grid"]),
    ("grid-value-out-of-domain", ["search.algorithm=grid", "schemes=[{name: focal, search: {gamma: [1, -2, 3]}}]"],
     ["parameter 'gamma' value -2 must be >= 0"]),
    ("thresholds-unknown", ["eval.thresholds=best"], ["eval.thresholds", "'fixed' or 'per_label'"]),
    ("prediction-rows-negative", ["eval.prediction_rows=-1"], ["eval.prediction_rows = -1"]),
    ("backbone-unknown", ["model.backbone=resnet9000"], ["model.backbone", "resnet9000"]),
    ("set-no-key", ["=5"], ["--set '=5': no key before '='"]),
    ("set-no-equals", ["train.epochs"], ["--set 'train.epochs': expected key=value"]),
    ("set-bad-yaml", ["schemes=[focal"], ["--set schemes: value '[focal' is not valid YAML"]),
    ("set-into-a-value", ["train.epochs.x=1"], ['train.epochs = {"x": 1}: Input should be a valid integer']),
    ("resources-unplaceable", ["resources.workers_per_trial=8", "resources.use_gpu=true"],
     ["resource plan", "8 CPUs but the cluster has", "needs 8 GPUs"]),
    ("tracking-server-closed", ["tracking.uri=http://127.0.0.1:9"],
     ["tracking.uri = 'http://127.0.0.1:9': the MLflow server does not answer", "launch mlflow-server"]),
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
    code, out = _run(["sweep", "--dry-run", "--set", f"data.path={broken}", "--set", "train.epochs=-1",
                      "--set", f"tracking.dir={tmp_path / 'runs'}"], tmp_path)
    assert code == 2 and "train.epochs = -1" in out and "train.parquet: not readable as Parquet" in out


def test_a_hierarchical_scheme_on_a_flat_table_names_the_table(tmp_path):
    import numpy as np
    import pyarrow as pa

    from tailsweep.datasets import Manifest, write_table

    def split(n):
        x = np.ones((n, 2), np.float32)
        return pa.table({"id": [f"r{i}" for i in range(n)], "labels": [["a"] if i % 2 else ["b"] for i in range(n)],
                         "features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 2)})

    table = write_table(tmp_path / "flat", Manifest(name="flat", input="features"),
                        [{"label": "a", "parents": []}, {"label": "b", "parents": []}],
                        {"train": split(8), "val": split(4), "test": split(4)})
    code, out = _run(["sweep", "--dry-run", "--set", f"data.path={table.root}", "--set", "model.backbone=mlp",
                      "--set", "schemes=[mcloss]", "--set", f"tracking.dir={tmp_path / 'runs'}"], tmp_path)
    assert code == 2 and "'mcloss' needs a label hierarchy" in out
    assert not (tmp_path / "runs").exists()


def test_missing_data_path_is_named(tmp_path):
    code, out = _run(["sweep", "--dry-run", "--set", f"data.path={tmp_path / 'nowhere'}", "--set",
                      "model.backbone=mlp", "--set", f"tracking.dir={tmp_path / 'runs'}"], tmp_path)
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
        return pa.table({"id": [f"{n}{i}" for i, n in enumerate(names)], "labels": [["x"]] * len(names),
                         "image_path": [str(tmp_path / "files" / n) for n in names]})

    write_table(root, Manifest(name="p", input="image_path"), [{"label": "x", "parents": []}],
                {"train": split(["a.png", "b.png"]), "val": split(["a.png"]), "test": split(["a.png"])})
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


def test_import_hmc_missing_dataset_names_the_file(tmp_path):
    code, out = _run(["data", "import-hmc", "nope_FUN", tmp_path / "out", "--data-dir", tmp_path], tmp_path)
    assert code == 2 and "nope_FUN.train.arff.gz" in out
    assert not (tmp_path / "out").exists()


def test_import_hmc_others_set_without_test_file(tmp_path):
    (tmp_path / "src" / "enron_others").mkdir(parents=True)
    (tmp_path / "src" / "enron_others" / "Enron_corr_trainvalid.arff").write_text(HEAD + "1,01\n")
    code, out = _run(["data", "import-hmc", "enron_others", tmp_path / "out", "--data-dir", tmp_path / "src"],
                     tmp_path)
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
    code, out = _run(["data", "import-images", tmp_path / "rows.csv", tmp_path / "imgs", tmp_path / "out",
                      "--taxonomy", tax, "--image-col", "image", "--labels-col", "label", "--ext", ".png"], tmp_path)
    assert code == 2 and "'T-Shirt' (rows.csv column 'label', row(s) 2, 4" in out, out
    assert "did you mean 'TShirt' at tax.yaml:1" in out
    assert not (tmp_path / "out").exists()


def test_import_images_missing_column_and_image(tmp_path):
    _images(tmp_path, ["a", "b"] * 4)
    code, out = _run(["data", "import-images", tmp_path / "rows.csv", tmp_path / "imgs", tmp_path / "out",
                      "--image-col", "file", "--labels-col", "label", "--ext", ".png"], tmp_path)
    assert code == 2 and "['file'] not found" in out
    (tmp_path / "imgs" / "i3.png").unlink()
    code, out = _run(["data", "import-images", tmp_path / "rows.csv", tmp_path / "imgs", tmp_path / "out",
                      "--image-col", "image", "--labels-col", "label", "--ext", ".png"], tmp_path)
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


def test_import_images_binary_csv_is_named(tmp_path):
    _images(tmp_path, ["a", "b"])
    (tmp_path / "rows.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary")
    code, out = _run(["data", "import-images", tmp_path / "rows.csv", tmp_path / "imgs", tmp_path / "out",
                      "--image-col", "image", "--labels-col", "label"], tmp_path)
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
        code, out = _run(["sweep", "--set", f"data.path={flat.root}", "--set", "model.backbone=mlp",
                          "--set", f"tracking.dir={runs}", "--set", "schemes=[unweighted]"], tmp_path)
        assert code == 2 and "sweep first-sweep (pid" in out and "is running with its own local Ray" in out
        assert "another tracking.dir" in out
        assert not (runs / "sweeps").exists() and not (runs / "mlflow.db").exists()  # nothing written
    finally:
        first.release()
    again = LocalRayClaim.take(runs, "next")  # released: the next sweep may start its Ray
    again.release()


def test_import_hmc_unknown_preprocess_is_refused(tmp_path):
    _arff(tmp_path / "src" / "toy_FUN", "1,01\n")
    code, out = _run(["data", "import-hmc", "toy_FUN", tmp_path / "out", "--data-dir", tmp_path / "src",
                      "--preprocess", "median"], tmp_path)
    assert code == 2 and "--preprocess" in out and "'chmcnn', 'trainval', 'impute'" in out
    assert not (tmp_path / "out").exists()
