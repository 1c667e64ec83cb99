"""The ``launch`` command line: a thin Click group over plain functions."""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console

from .spec import SpecError

console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, soft_wrap=True)  # errors keep paths and values on one line


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape  # messages quote paths and YAML like [/mnt/shared]: never markup

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    sys.exit(code)


class _Group(click.Group):
    """Every command's user errors (:class:`tailsweep.inputs.InputError`, raised by whatever read the file or value)
    end as one message and exit code 2, never a traceback."""

    def invoke(self, ctx):
        from ..inputs import InputError

        try:
            return super().invoke(ctx)
        except InputError as exc:
            _fail(str(exc))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tailsweep")
def main() -> None:
    """tailsweep: find the loss-weighting scheme that works best on your long-tailed labels.

    \b
    Quick start:  launch sweep            (demo sweep on generated data, local Ray, SQLite MLflow)
                  launch ui               (browse the results in MLflow)
    """


@main.command()
@click.argument("spec_file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec value (YAML syntax), e.g. --set train.epochs=5 --set 'schemes=[focal]'.",
)
@click.option("--show-spec", is_flag=True, help="Print the resolved spec (every key with its value) and exit.")
@click.option("--dry-run", is_flag=True, help="Validate spec and data, print the trial plan, start nothing.")
@click.option("--verbose", "-v", is_flag=True, help="Show Ray's own logs and Tune's progress output.")
@click.option(
    "--cluster",
    "cluster_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Run on the Ray cluster of this cluster-launcher YAML (cluster.yaml, cluster-local.yaml): "
    "checked, then submitted as a Ray Job with its logs streamed here; Ctrl-C detaches.",
)
@click.option(
    "--address",
    default=None,
    metavar="http://HOST:8265",
    help="With --cluster: the head's dashboard (Jobs API), instead of the one the YAML names.",
)
@click.option(
    "--shared-dir",
    "shared_dirs",
    multiple=True,
    metavar="PATH",
    help="With --cluster: a path every node mounts at the same place (besides the YAML's "
    "metadata.tailsweep.shared_paths); tracking.dir and data.path must be under one on a multi-node cluster.",
)
@click.option(
    "--detach", is_flag=True, help="With --cluster: submit and return (follow with `launch logs JOB --follow`)."
)
@click.option(
    "--resume",
    "resume",
    default=None,
    metavar="SWEEP",
    help="Finish an interrupted sweep (a sweep id, a unique prefix, or 'latest') under the spec's "
    "tracking.dir, with the spec it started with: finished trials are kept, unfinished ones resume "
    "from their last checkpoint in the same MLflow runs.",
)
def sweep(spec_file, overrides, show_spec, dry_run, verbose, cluster_file, address, shared_dirs, detach, resume):
    """Run a sweep from SPEC_FILE (YAML), or the built-in demo sweep when omitted.

    Every problem with the spec or the data is reported at once, before Ray starts.
    Results: an MLflow parent run per sweep with one child run per trial (open with `launch ui`),
    <tracking.dir>/sweeps/<sweep id>/summary.md (the end-of-sweep table) and report/report.md (the report).
    Every key: --show-spec. A multi-objective search: --set search.algorithm=tpe
    --set 'search.metrics=[val/macro_ap, val/recall_few]' (search.modes: one per metric, default max; the first
    metric selects checkpoints; docs/architecture.md).
    """
    from ._launch import SweepError, SweepRequest
    from ._launch import sweep as launch_sweep

    request = SweepRequest(spec_file, tuple(overrides), resume, dry_run, verbose)
    try:
        if show_spec:
            from ._launch import load
            from .spec import spec_to_yaml

            spec, _ = load(request, Console(file=io.StringIO()))
            click.echo(spec_to_yaml(spec.resolved()), nl=False)
            return
        if cluster_file:  # (with --resume, the job's driver finds the sweep on the cluster's shared storage)
            from .spec import load_spec

            spec = load_spec(spec_file, overrides)
            _sweep_on_cluster(
                spec, request.source, cluster_file, address, shared_dirs, dry_run, detach, verbose, resume
            )
            return
        result = launch_sweep(request, console)
    except (SpecError, SweepError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        again = request.command(resume="latest")
        _fail(f"interrupted; runs left unfinished are marked KILLED in MLflow; finish them with `{again}`", 130)
    if result is None:  # a dry run
        return
    _print_outcome(request, result)


def _print_outcome(request, result) -> None:
    """The sweep's end: where the report is, how to browse it; exit 130 if interrupted, 1 if a trial failed."""
    report = result.report_dir / "report" / "report.md"
    console.print(
        f"\nReport: {report if report.is_file() else result.report_dir}\n"
        f"Browse: launch ui --dir {shlex.quote(str(result.report_dir.parent.parent))}",
        highlight=False,
    )
    if result.interrupted:
        again = request.command(resume=result.sweep_id)
        _fail(f"interrupted; runs left unfinished are marked KILLED in MLflow; finish the sweep with `{again}`", 130)
    if failed := sum(r["status"] == "ERROR" for r in result.rows):
        _fail(
            f"{failed} trial(s) failed; their errors are in MLflow (tag 'error') and under the Ray results directory",
            1,
        )


def _sweep_on_cluster(spec, source, cluster_file, address, shared_dirs, dry_run, detach, verbose, resume=None):
    from ._cluster import (
        ClusterError,
        dry_run_lines,
        failed_job_exit_code,
        follow,
        load_cluster,
        prepare,
        reattach_hint,
        submit,
    )

    try:
        cluster = load_cluster(cluster_file, address, tuple(shared_dirs))
        head, nodes = prepare(spec, source, cluster)
        console.print(
            f"cluster {cluster.address}: {len(nodes)} node(s); token auth "
            f"{'on (token from ' + head.token_source + ')' if head.auth_mode == 'token' else 'off'}; "
            f"MLflow {spec.tracking_uri}",
            highlight=False,
            markup=False,
        )
        if dry_run:
            for line in dry_run_lines(spec, nodes, cluster):
                console.print(line, highlight=False)
            return
        job_id = submit(head, spec, verbose, resume=resume)
    except (ClusterError, SpecError) as exc:
        _fail(str(exc))
    console.print(f"submitted job [bold]{job_id}[/]", highlight=False)
    if detach:
        console.print(reattach_hint(job_id, cluster, address is not None), highlight=False, markup=False)
        return
    try:
        status = follow(head, job_id)
    except KeyboardInterrupt:
        console.print("\n" + reattach_hint(job_id, cluster, address is not None), highlight=False, markup=False)
        sys.stdout.flush()
        # Exit now: the log-stream thread may be mid-write, and an interpreter shutdown would wait on it.
        os._exit(130)
    if status != "SUCCEEDED":
        _fail(
            f"job {job_id} ended {status}; its log: {shlex.join(['launch', 'logs', job_id, '--cluster', str(cluster_file)])}",
            failed_job_exit_code(head, job_id) if status == "FAILED" else 1,
        )
    console.print(f"job {job_id} SUCCEEDED", highlight=False)


def _cluster_options(f):
    f = click.option(
        "--address",
        default=None,
        metavar="http://HOST:8265",
        help="The head's dashboard (Jobs API), instead of the one the YAML names.",
    )(f)
    return click.option(
        "--cluster",
        "cluster_file",
        required=True,
        type=click.Path(dir_okay=False),
        help="The cluster-launcher YAML the job was submitted with.",
    )(f)


def _head(cluster_file, address):
    from ._cluster import ClusterError, connect, load_cluster

    try:
        return connect(load_cluster(cluster_file, address))
    except ClusterError as exc:
        _fail(str(exc))


def _job_call(fn, job_id):
    try:
        return fn(job_id)
    except RuntimeError as exc:  # the SDK's "Request failed with status code 404: ..."
        if "404" in str(exc) or "does not exist" in str(exc):
            _fail(f"no job {job_id} on this cluster (`ray job list --address ...` lists them)")
        raise


@main.command()
@click.argument("job_id")
@_cluster_options
def status(job_id, cluster_file, address):
    """State of a sweep submitted with `launch sweep --cluster` (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    import datetime

    head = _head(cluster_file, address)
    info = _job_call(head.client.get_job_info, job_id)
    stamp = lambda ms: datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"  # noqa: E731
    console.print(
        f"job {job_id}: [bold]{info.status.value}[/]  started {stamp(info.start_time)}  ended {stamp(info.end_time)}",
        highlight=False,
    )
    if info.message:
        console.print(f"  {info.message}", highlight=False, markup=False)


@main.command()
@click.argument("job_id")
@_cluster_options
@click.option(
    "--follow", "-f", is_flag=True, help="Keep streaming until the job ends (Ctrl-C stops following, not the job)."
)
def logs(job_id, cluster_file, address, follow):
    """The driver log of a sweep submitted with `launch sweep --cluster`."""
    from ._cluster import follow as follow_job

    head = _head(cluster_file, address)
    if not follow:
        click.echo(_job_call(head.client.get_job_logs, job_id), nl=False)
        return
    _job_call(head.client.get_job_status, job_id)  # a clear message for an unknown id
    try:
        final = follow_job(head, job_id)
    except KeyboardInterrupt:
        sys.exit(130)
    console.print(f"job {job_id} {final}", highlight=False)


@main.command()
@click.argument("job_id")
@_cluster_options
@click.option("--wait", default=240, show_default=True, help="Seconds to wait for the job to end.")
def stop(job_id, cluster_file, address, wait):
    """Stop a sweep submitted with `launch sweep --cluster`: interrupted like Ctrl-C, its unfinished runs end KILLED."""
    import time

    head = _head(cluster_file, address)
    _job_call(head.client.stop_job, job_id)
    deadline = time.time() + wait
    while (state := head.client.get_job_status(job_id).value) not in (
        "STOPPED",
        "SUCCEEDED",
        "FAILED",
    ) and time.time() < deadline:
        time.sleep(1)
    console.print(f"job {job_id}: {state}", highlight=False)


@main.command("mlflow-server")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Bind address; 0.0.0.0 lets cluster nodes reach it. Beyond loopback the server requires a user name "
    "and password (MLflow's basic auth): the admin's are created on the first start, in a file under --dir.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True)
@click.option(
    "--dir",
    "store_dir",
    default="tailsweep-runs/mlflow-server",
    show_default=True,
    help="SQLite store (mlflow.db), artifacts (artifacts/) and, with authentication, the users and their "
    "credentials files (mode 0600).",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Require a user name and password on a loopback address too (e.g. behind a TLS reverse proxy on "
    "this machine). On by default beyond loopback, and for a --dir served with authentication before.",
)
@click.option(
    "--sweeps-user",
    is_flag=True,
    help="Also create user 'sweeps' (EDIT on every experiment, not an admin); its credentials go to "
    "DIR/sweeps-credentials. Implies --auth.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve without authentication even beyond loopback: anyone who reaches the port can read, change and "
    "delete every run.",
)
def mlflow_server(host, port, store_dir, auth, sweeps_user, insecure_no_auth):
    """Run an MLflow tracking server (SQLite + proxied artifacts under --dir) for sweeps on a cluster:
    pass its address as --set tracking.uri=http://HOST:PORT, and its credentials as MLflow clients take
    them (~/.mlflow/credentials, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)."""
    from ._server import ServerError, plan_mlflow_server, run_mlflow_server

    try:
        plan = plan_mlflow_server(host, port, store_dir, auth, insecure_no_auth, sweeps_user)
    except ServerError as exc:
        _fail(f"launch mlflow-server: {exc}")
    console.print(
        f"MLflow tracking server: {plan.url}  (store {plan.store}; "
        f"{'basic auth on' if plan.auth else 'no authentication'}; Ctrl-C to stop)",
        highlight=False,
        markup=False,
    )
    for warning in plan.warnings(host):
        err_console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False)
    if plan.auth is not None:
        console.print(
            f"admin credentials: {plan.auth.admin} ({'created now; ' if plan.admin_created else ''}mode 0600). "
            "Clients read them from ~/.mlflow/credentials (same format) or from MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD",
            highlight=False,
            markup=False,
        )
    sys.stdout.flush()
    try:
        code = run_mlflow_server(plan, lambda line: console.print(line, highlight=False, markup=False))
    except ServerError as exc:
        _fail(f"launch mlflow-server: {exc}")
    sys.exit(code)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def schemes(as_json):
    """List the weighting schemes: parameters, defaults, domains, search ranges, paper. Formulas, sources and
    where the authors' code differs from the paper: docs/methods.md."""
    from ..losses import METHODS_DOC, SCHEMES

    if as_json:
        out = {
            n: {
                "summary": s.summary,
                "paper": s.paper,
                "params": {
                    k: {
                        "default": p.default,
                        "domain": None if p.choices else p.domain() + (" or null" if p.nullable else ""),
                        "range": [p.low, p.high] if p.searchable else None,
                        "scale": p.scale,
                        "choices": list(p.choices) or None,
                        "doc": p.doc,
                    }
                    for k, p in s.params.items()
                },
                "needs_hierarchy": s.needs_hierarchy,
                "needs_ensemble": s.needs_ensemble,
                "methods": f"{METHODS_DOC}#{n}",
            }
            for n, s in SCHEMES.items()
        }
        click.echo(json.dumps(out, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Weighting schemes")
    for col in ("scheme", "parameters (default, search range)", "what it does", "paper"):
        table.add_column(col)
    for name, s in SCHEMES.items():
        params = (
            "\n".join(
                f"{k}={p.default}"
                + (f" [{p.low}, {p.high}]{' ' + p.scale if p.scale != 'linear' else ''}" if p.searchable else "")
                + (f" ({'|'.join(p.choices)})" if p.choices else "")
                for k, p in s.params.items()
            )
            or "-"
        )
        table.add_row(name, escape(params), escape(s.summary), escape(s.paper))  # "[omega, ...]" is not markup
    console.print(table)
    console.print(f"Formulas, sources and where the authors' code differs from the paper: {METHODS_DOC}")


@main.command()
@click.argument("sweep", default="latest")
@click.option("--dir", "runs_dir", default="tailsweep-runs", show_default=True, help="The sweeps' tracking.dir.")
@click.option("--uri", default=None, help="MLflow tracking URI (default: the SQLite store under --dir).")
@click.option("--experiment", default=None, help="MLflow experiment (default: search all).")
@click.option(
    "--out",
    default=None,
    help="A folder, or a .md file (its PNGs/HTML go in a sibling folder); default <dir>/sweeps/<sweep id>/report/.",
)
@click.option(
    "--baseline",
    default=None,
    help="Setting the paired tests and the bootstrap compare against "
    "(default: unweighted; mcloss when the sweep has it).",
)
@click.option("--title", default=None, help="Report title.")
def report(sweep, runs_dir, uri, experiment, out, baseline, title):
    """Write the comparison report of SWEEP (an id, a unique prefix, or 'latest') from MLflow: a verdict first
    (also the parent run's description), the mean and the seeds' range per setting, the paired bootstrap over test
    rows, frequency buckets, recall per hierarchy depth, paired Wilcoxon tests over seeds, the per-label view,
    both threshold rules, post-hoc logit adjustment of each setting (no retraining), the Pareto front of a
    multi-objective search, plots; Markdown + PNG + HTML, logged to the sweep's parent run. Prints the report's
    path."""
    from ..analysis.report import ReportError, write_report
    from ._store import store_to_read

    root = Path(runs_dir).expanduser().resolve()
    uri = store_to_read(uri, root)  # an existing store (MLflow would create one), its server answering
    try:
        from mlflow.tracking import MlflowClient

        from ..analysis.report import find_sweep
        from ._store import foreign_artifacts

        client = MlflowClient(uri)
        sweep_id, parent = find_sweep(client, [e.experiment_id for e in client.search_experiments()], sweep)
        out = root / "sweeps" / sweep_id / "report" if out is None else out
        foreign = foreign_artifacts(uri, parent.info.artifact_uri)  # a copied store: its runs point at the original
        md, data = write_report(uri, sweep, Path(out), experiment, baseline, title, log_to_mlflow=foreign is None)
    except ReportError as exc:
        _fail(str(exc))
    if foreign is not None:
        console.print(f"not logged to MLflow: {foreign}", style="yellow", highlight=False, markup=False)
    missing = [t for t in data.trials if not t.complete]
    console.print(data.verdict + "\n", markup=False, highlight=False)
    console.print(
        f"wrote {md} ({len(data.trials) - len(missing)}/{len(data.trials)} trials complete"
        + (f"; missing: {', '.join(f'{t.name} ({t.status})' for t in missing)}" if missing else "")
        + ")"
    )


@main.group()
def reproduce():
    """Reproduce published results (resumable: finished runs are recorded and skipped)."""


_HMC_HELP_DATASETS = (
    "every set with a published C-HMCNN value: the FUN and GO sets and diatoms_others, "
    "enron_others, imclef07a_others, imclef07d_others; those not under --data-dir are skipped, "
    "with the reason"
)


@reproduce.command("hmc")
@click.option(
    "--datasets",
    default="all",
    show_default=True,
    help="Comma-separated dataset names, or all: " + _HMC_HELP_DATASETS + ".",
)
@click.option(
    "--schemes",
    default="mcloss,node_imbalance,nif_margin_m2,nif_gated_margin_m2",
    show_default=True,
    help="Comma-separated variants: mcloss, node_imbalance, nif_margin_m2, nif_gated_margin_m2 "
    "(node_imbalance_focal, 2 heads, as the authors run it), nif_margin_m4, nif_gated_margin_m4, "
    "node_imbalance_positives and nif_margin_m2_mean (the other readings), mcloss_lpros.",
)
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated.")
@click.option("--results", default="docs/results/hmc", show_default=True, help="Per-run result files.")
@click.option("--data-dir", default="../shared/data", show_default=True)
@click.option("--runs-dir", default="tailsweep-runs", show_default=True, help="MLflow store, Ray results, tables.")
@click.option("--report", is_flag=True, help="Only write docs/results-hmc.md from the recorded runs.")
def reproduce_hmc_cmd(datasets, schemes, seeds, results, data_dir, runs_dir, report):
    """C-HMCNN's protocol (constant lr, train on train + valid, last model) on the HMC benchmarks for each scheme
    and seed; then docs/results-hmc.md."""
    from ..inputs import int_list
    from ._reproduce import DEFAULT_DATASETS, HMC_DATASETS, VARIANTS, report_hmc, reproduce_hmc

    names = list(DEFAULT_DATASETS) if datasets == "all" else [d for d in datasets.split(",") if d]
    unknown = [d for d in names if d not in HMC_DATASETS]
    if unknown:
        _fail(f"--datasets: unknown {unknown}; allowed: all, {', '.join(HMC_DATASETS)}")
    variants = [s for s in schemes.split(",") if s]
    unknown = [s for s in variants if s not in VARIANTS]
    if unknown:
        _fail(f"--schemes: unknown {unknown}; allowed: {', '.join(VARIANTS)}")
    results_dir = Path(results)
    if not report:
        try:
            reproduce_hmc(
                names,
                variants,
                int_list(seeds, "--seeds", minimum=0),
                results_dir.resolve(),
                Path(data_dir).resolve(),
                Path(runs_dir).resolve(),
                console,
            )
        except SpecError as exc:
            _fail(str(exc))
    out = (
        results_dir.parent.parent / "results-hmc.md" if results_dir.parent.name == "results" else Path("results-hmc.md")
    )
    report_hmc(results_dir, out)
    console.print(f"wrote {out}")


@main.group()
def data():
    """Create, check and describe label tables."""


@data.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n-train", default=2000, show_default=True)
@click.option("--n-val", default=500, show_default=True)
@click.option("--n-test", default=500, show_default=True)
@click.option("--image-size", default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
def data_synth(out, n_train, n_val, n_test, image_size, seed):
    """Generate the demo table of drawn garments with long-tailed attributes at OUT."""
    from rich.progress import Progress

    from ..datasets import TableError, label_stats, synth_garments
    from .spec import SynthSpec, option_problems

    sizes = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "image_size": image_size, "seed": seed}
    if problems := option_problems(SynthSpec, sizes):  # the checks of the spec's data.synth keys
        _fail("launch data synth: " + "; ".join(problems))

    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("drawing garments", total=n_train + n_val + n_test)
            table = synth_garments(
                out,
                n_train,
                n_val,
                n_test,
                image_size,
                seed,
                progress=lambda done, total: progress.update(task, completed=done),
            )
    except TableError as exc:
        _fail(str(exc))
    stats = label_stats(table)
    few = sum(b == "few" for b in stats.buckets)
    console.print(f"wrote {out}: {stats.num_labels} labels ({few} few-shot), {n_train}/{n_val}/{n_test} rows")


@data.command("import-hmc")
@click.argument("dataset")
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--data-dir",
    default="../shared/data",
    show_default=True,
    help="Folder holding DATASET/DATASET.{train,valid,test}.arff[.gz], or for an others set "
    "(diatoms_others, enron_others, imclef07a_others, imclef07d_others) its train/trainvalid and test "
    "files (e.g. Enron_corr_trainvalid.arff, Enron_corr_test.arff) in DATASET/, others/ or here; "
    "such a set has no validation file: 10% of its training file is carved out as val (seeded).",
)
@click.option(
    "--preprocess",
    type=click.Choice(["chmcnn", "trainval", "impute"]),
    default="chmcnn",
    show_default=True,
    help="chmcnn (C-HMCNN's code): each split mean-imputed with its own column means, then standardised "
    "with a scaler fitted on train+val; trainval: imputer and scaler both fitted on train+val (no "
    "test statistics used); impute: means from train only, no scaling.",
)
@click.option("--download", is_flag=True, help="Fetch the ARFF files from C-HMCNN's public repository first.")
def data_import_hmc(dataset, out, data_dir, preprocess, download):
    """Import an HMC benchmark (e.g. cellcycle_FUN, cellcycle_GO) from its ARFF files into OUT."""
    from ..datasets import TableError, label_stats
    from ..datasets._hmc import download_hmc, import_hmc

    try:
        if download:
            download_hmc(dataset, Path(data_dir))
        table = import_hmc(dataset, out, data_dir, preprocess)
    except (TableError, OSError) as exc:
        _fail(str(exc))
    stats = label_stats(table)
    console.print(
        f"wrote {out}: {table.manifest.extra['hierarchy']} of {stats.num_labels} nodes, depth "
        f"{int(table.depths.max())}, {table.manifest.extra['features']} features, "
        f"{stats.n_train} train rows; {len(stats.zero_labels)} nodes without training positives"
    )


@data.command("import-images")
@click.argument("csv_file", type=click.Path(dir_okay=False))
@click.argument("image_dir", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--image-col", default="image", show_default=True, help="CSV column with the image path (relative to IMAGE_DIR)."
)
@click.option("--ext", default="", help="Appended to every path (e.g. .jpg when the CSV holds bare ids).")
@click.option("--labels-col", default="labels", show_default=True, help="CSV column with labels ('' for none).")
@click.option("--label-sep", default=";", show_default=True, help="Separator of several labels in one cell.")
@click.option(
    "--attribute-cols", default="", help="Comma-separated yes/no columns; a yes makes the column's name a label."
)
@click.option(
    "--group-col", default=None, help="Rows sharing this column's value land in one split (e.g. a contributor id)."
)
@click.option(
    "--taxonomy",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML parent: [children] (nested for deeper levels).",
)
@click.option(
    "--drop-labels", default="", help="Comma-separated labels to remove (rows left without labels are dropped)."
)
@click.option("--splits", "fractions", default="0.7,0.15,0.15", show_default=True, help="train,val,test fractions.")
@click.option("--seed", default=0, show_default=True, help="Seed of the split.")
@click.option("--max-side", type=int, default=None, help="Re-encode images whose shorter side is larger (JPEG q90).")
@click.option(
    "--skip-bad", is_flag=True, help="Leave out rows whose image is missing or unreadable (listed) instead of failing."
)
def data_import_images(
    csv_file,
    image_dir,
    out,
    image_col,
    ext,
    labels_col,
    label_sep,
    attribute_cols,
    group_col,
    taxonomy,
    drop_labels,
    fractions,
    seed,
    max_side,
    skip_bad,
):
    """A CSV of images + their folder (+ a taxonomy) -> a label table at OUT, with seeded, stratified
    (and optionally grouped) train/val/test splits and the image bytes inside Parquet."""
    from rich.progress import Progress

    from ..datasets import TableError, import_images, label_stats, validate_table

    try:
        frac = [float(x) for x in fractions.split(",")]
    except ValueError:
        _fail(f"--splits: expected three numbers like 0.7,0.15,0.15, got {fractions!r}")
    split = lambda v: [x.strip() for x in v.split(",") if x.strip()]  # noqa: E731
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("reading images", total=None)
            table, report = import_images(
                csv_file,
                image_dir,
                out,
                image_col=image_col,
                labels_col=labels_col or None,
                label_sep=label_sep,
                attribute_cols=split(attribute_cols),
                group_col=group_col,
                taxonomy=taxonomy,
                drop_labels=split(drop_labels),
                ext=ext,
                fractions=frac,
                seed=seed,
                max_side=max_side,
                skip_bad=skip_bad,
                progress=lambda i, n: progress.update(task, completed=i, total=n),
            )
    except TableError as exc:
        _fail(str(exc))
    for line in report.skipped:
        console.print(f"[yellow]skipped[/] {line}")
    if report.unused_taxonomy:
        shown = ", ".join(report.unused_taxonomy[:20]) + (" ..." if len(report.unused_taxonomy) > 20 else "")
        console.print(
            f"warning: {len(report.unused_taxonomy)} taxonomy entr{'y' if len(report.unused_taxonomy) == 1 else 'ies'} "
            f"match no CSV label and are not in the table: {shown} (a spelling that differs from the CSV, or "
            "categories without images)",
            style="yellow",
            highlight=False,
            markup=False,
        )
    errors = [p for p in validate_table(table.root) if p.severity == "error"]
    if errors:
        _fail(f"{out}: the written table does not validate:\n" + "\n".join(map(str, errors)))
    stats = label_stats(table)
    console.print(
        f"wrote {out}: {report.rows} images ({', '.join(f'{k} {v}' for k, v in report.split_rows.items())}; "
        f"groups {', '.join(f'{k} {v}' for k, v in report.split_groups.items())}), {stats.num_labels} labels "
        f"(depth {int(table.depths.max())}), {len(report.skipped)} skipped, dropped labels "
        f"{dict(report.dropped_labels) or 'none'}"
    )


@data.command("longtail")
@click.argument("src", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--imbalance", default=100.0, show_default=True, help="n_max / n_min of the exponential profile.")
@click.option("--seed", default=0, show_default=True)
def data_longtail(src, out, imbalance, seed):
    """A long-tailed copy of the table SRC at OUT: its training split subsampled to the standard exponential
    profile (label of rank i keeps n_max * imbalance^(-i/(C-1)) positives); val and test unchanged."""
    from ..datasets import TableError, make_longtail

    try:
        _, summary = make_longtail(src, out, imbalance, seed)
    except TableError as exc:
        _fail(str(exc))
    before, after = summary["train_rows"]
    console.print(
        f"wrote {out}: {after} of {before} training rows kept; achieved imbalance "
        f"{summary['achieved_imbalance']:.1f} (target {imbalance:g}); val and test unchanged"
    )


@data.command("validate")
@click.argument("table_dir", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def data_validate(table_dir, as_json):
    """Check a label table; report every problem with its file and row. Exit 1 on errors."""
    from ..datasets import validate_table

    problems = validate_table(table_dir)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in problems], indent=2))
    else:
        for p in problems:  # markup=False: locations read "[rows 3, 7]", "[column labels]"
            (err_console if p.severity == "error" else console).print(str(p), highlight=False, markup=False)
        console.print(
            f"{table_dir}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)"
            + ("" if errors else " - OK")
        )
    sys.exit(1 if errors else 0)


@data.command("stats")
@click.argument("table_dir", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def data_stats(table_dir, as_json):
    """Per-label training counts, depth and frequency bucket (many > 100, medium 20-100, few < 20)."""
    from rich.table import Table

    from ..datasets import BUCKETS, LabelTable, TableError, label_stats, validate_table

    try:
        table = LabelTable(table_dir)
        stats = label_stats(table)
    except Exception as exc:  # noqa: BLE001 -- a corrupt table: say what is wrong, file by file, not a traceback
        errors = [p for p in validate_table(table_dir) if p.severity == "error"]
        if not errors:
            _fail(str(exc) if isinstance(exc, TableError) else f"{table_dir}: {type(exc).__name__}: {exc}")
        _fail(
            f"{table_dir}: {len(errors)} problem(s) (`launch data validate` lists them all):\n"
            + "\n".join(f"  - {p}" for p in errors[:20])
        )
    if as_json:
        click.echo(json.dumps(stats.to_dict(), indent=1))
        return
    t = Table(title=f"{table.name}: {stats.n_train} training rows, {stats.num_labels} labels")
    for col in ("label", "name", "depth", "train count", "share", "bucket"):
        t.add_column(col)
    for row in sorted(stats.summary(), key=lambda r: -r["train_count"]):
        t.add_row(
            row["label"],
            table.names[row["label"]],
            str(row["depth"]),
            str(row["train_count"]),
            f"{100 * row['train_count'] / max(stats.n_train, 1):.1f}%",
            row["bucket"],
        )
    console.print(t)
    console.print("buckets: " + ", ".join(f"{b} {sum(x == b for x in stats.buckets)}" for b in BUCKETS))
    if stats.zero_labels:
        console.print(f"[yellow]{len(stats.zero_labels)} label(s) have no training positives[/]")


@main.command()
@click.option("--dir", "runs_dir", default="tailsweep-runs", show_default=True, help="The sweep's tracking.dir.")
@click.option("--uri", default=None, help="MLflow tracking URI (default: sqlite store in --dir).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (keep it local unless you mean it).")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True)
@click.option("--experiment", default="tailsweep", show_default=True)
def ui(runs_dir, uri, host, port, experiment):
    """Open the MLflow UI on the sweep's store (runs view, parent runs with their trials folded under)."""
    from ._server import port_problem, run_ui
    from ._store import store_to_read

    root = Path(runs_dir).expanduser().resolve()
    if (why := port_problem(host, port)) is not None:
        _fail(f"launch ui: {why}")
    uri = store_to_read(uri, root)  # an existing store: MLflow's server would create one
    from mlflow.tracking import MlflowClient

    exp = MlflowClient(uri).get_experiment_by_name(experiment)
    path = f"#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning" if exp else ""
    console.print(f"MLflow UI: http://{host}:{port}/{path}  (Ctrl-C to stop)")
    sys.exit(run_ui(uri, host, port))


if __name__ == "__main__":
    main()
