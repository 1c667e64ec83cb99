"""The CLI as a user runs it (a subprocess: its exit code, its output, nothing started)."""

import subprocess
import sys

from tests.conftest import make_features_table


def launch(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "tailsweep.orchestrator.cli", *args], capture_output=True, text=True, timeout=120, **kw
    )


def test_bad_overrides_print_every_problem_and_start_no_ray(tmp_path):
    r = launch(
        "sweep",
        "--set",
        "train.epochs=-1",
        "--set",
        "schemes=[nope]",
        "--set",
        f"tracking.dir={tmp_path / 'runs'}",
        cwd=tmp_path,
    )
    assert r.returncode == 2
    assert "train.epochs = -1" in r.stderr and "unknown scheme 'nope'" in r.stderr
    assert "allowed: unweighted" in r.stderr
    assert not (tmp_path / "runs").exists()  # nothing written: no data, no store, no Ray results


def test_dry_run_lists_the_trials(tmp_path):
    r = launch("sweep", "--dry-run", "--set", f"tracking.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert "8 trials" in r.stdout and "focal γ=2 α=0.25 seed=1" in r.stdout


def test_show_spec_prints_every_section():
    r = launch("sweep", "--show-spec")
    for section in ("data:", "model:", "train:", "schemes:", "search:", "scheduler:", "resources:", "tracking:"):
        assert section in r.stdout


def test_data_validate_exit_codes(tmp_path):
    t = make_features_table(tmp_path / "t")
    ok = launch("data", "validate", str(t.root))
    assert ok.returncode == 0 and "OK" in ok.stdout
    (t.root / "val.parquet").unlink()
    bad = launch("data", "validate", str(t.root))
    assert bad.returncode == 1 and "val.parquet: split 'val' is missing" in bad.stderr


def test_a_sweep_refuses_a_broken_table_before_any_trial(tmp_path):
    t = make_features_table(tmp_path / "t")
    (t.root / "test.parquet").write_bytes(b"garbage")
    r = launch(
        "sweep",
        "--set",
        f"data.path={t.root}",
        "--set",
        "model.backbone=mlp",
        "--set",
        f"tracking.dir={tmp_path / 'runs'}",
    )
    assert r.returncode == 2 and "test.parquet" in r.stderr and "not readable as Parquet" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_data_synth_and_stats(tmp_path):
    r = launch(
        "data",
        "synth",
        str(tmp_path / "d"),
        "--n-train",
        "300",
        "--n-val",
        "20",
        "--n-test",
        "20",
        "--image-size",
        "16",
    )
    assert r.returncode == 0, r.stderr
    s = launch("data", "stats", str(tmp_path / "d"))
    assert s.returncode == 0 and "garment:tshirt" in s.stdout and "buckets: many" in s.stdout


def test_schemes_lists_the_registry():
    r = launch("schemes", "--json")
    import json

    names = json.loads(r.stdout)
    assert {"unweighted", "effective_number", "focal", "asymmetric"} <= set(names)
    assert names["effective_number"]["params"]["beta"]["default"] == 0.999


def test_import_images_refuses_a_broken_csv_with_exit_1(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "items.csv").write_text("path,labels\nmissing.png,Shirt\n")
    r = launch("data", "import-images", str(tmp_path / "items.csv"), str(tmp_path / "imgs"), str(tmp_path / "out"))
    assert r.returncode == 2 and "column(s) ['image'] not found; the header has ['path', 'labels']" in r.stderr
    r = launch(
        "data",
        "import-images",
        str(tmp_path / "items.csv"),
        str(tmp_path / "imgs"),
        str(tmp_path / "out"),
        "--image-col",
        "path",
    )
    assert r.returncode == 2 and "missing.png (row 2): file not found" in r.stderr and "--skip-bad" in r.stderr
    assert not (tmp_path / "out").exists()


def test_resume_refusals_name_the_fix(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"tracking: {{dir: {tmp_path / 'runs'}}}\n")
    r = launch("sweep", str(spec), "--resume", "latest")
    assert r.returncode == 2 and "no sweeps to resume under" in r.stderr and "launch sweep" in r.stderr
    for name in ("demo-20260101-000000", "demo-20260102-000000"):
        (tmp_path / "runs" / "sweeps" / name).mkdir(parents=True)
        (tmp_path / "runs" / "sweeps" / name / "spec.yaml").write_text("name: demo\n")
    r = launch("sweep", str(spec), "--resume", "demo-2026")
    assert r.returncode == 2 and "matches several sweeps" in r.stderr and "demo-20260102-000000" in r.stderr
    r = launch("sweep", str(spec), "--resume", "other")
    assert r.returncode == 2 and "matches no sweep" in r.stderr
    r = launch("sweep", str(spec), "--resume", "latest", "--set", "train.epochs=3", "--set", "schemes=[focal]")
    err = " ".join(r.stderr.split())
    assert r.returncode == 2 and "--set train.epochs: a resumed sweep keeps the settings it started with" in err
    assert "--set schemes:" in err and "resources.*" in err
    # overrides that cannot change the trials are taken (the refusal below is about the missing Tune state)
    r = launch(
        "sweep",
        str(spec),
        "--resume",
        "latest",
        "--set",
        "resources.max_concurrent_trials=1",
        "--set",
        f"tracking.dir={tmp_path / 'runs'}",
    )
    assert r.returncode == 2 and "has no Tune state" in r.stderr
    # found, but Tune never saved a state for it: refused before any trial, with what to do instead
    r = launch("sweep", str(spec), "--resume", "demo-20260102")
    assert r.returncode == 2 and "has no Tune state" in r.stderr and "without --resume" in r.stderr


def test_light_commands_import_no_torch_ray_or_mlflow():
    """`launch --help`, `launch schemes` and the spec check start in well under a second (docs/benchmarks.md,
    benchmarks/startup.py) because they import none of the heavy libraries; this guards that."""
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from tailsweep.orchestrator.cli import main; "
        "r = CliRunner().invoke(main, ['schemes']); assert r.exit_code == 0, r.output; "
        "from tailsweep.orchestrator.spec import load_spec; load_spec(None, ['train.epochs=2']); "
        "print(sorted(m for m in ('torch', 'ray', 'mlflow', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
