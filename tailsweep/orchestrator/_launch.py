"""What ``launch sweep`` does, as one call the CLI makes: load the spec (or the stored spec of a sweep to resume),
validate it once, then print the plan (``--dry-run``) or run it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from rich.console import Console

from ._sweep import SweepError, SweepResult, find_resumable, prepare, resume_override_problems, run_sweep
from .spec import SpecError, SweepSpec, load_spec
from .validate import SweepPlan


@dataclass(frozen=True)
class SweepRequest:
    """``launch sweep``'s arguments, as parsed."""

    spec_file: str | None = None
    overrides: tuple[str, ...] = ()
    resume: str | None = None  # a sweep id, a unique prefix, or "latest"
    dry_run: bool = False
    verbose: bool = False

    @property
    def source(self) -> str:
        return self.spec_file or "demo sweep"

    def command(self, resume: str | None = None) -> str:
        """The command that runs this sweep again (``resume``: finishing that sweep), shell-quoted."""
        kept = [o for o in self.overrides if not (resume and resume_override_problems([o]))]  # what --resume takes
        sets = [a for o in kept for a in ("--set", o)]
        tail = ["--resume", resume] if resume else []
        return shlex.join(["launch", "sweep", *([self.spec_file] if self.spec_file else []), *sets, *tail])


def load(request: SweepRequest, console: Console) -> tuple[SweepSpec, str | None]:
    """The spec to run and, with ``--resume``, the id of the sweep it finishes (whose stored spec it is)."""
    spec = load_spec(request.spec_file, request.overrides)
    if not request.resume:
        return spec, None
    if request.overrides and (problems := resume_override_problems(request.overrides)):
        raise SpecError(problems, "--resume")
    spec, sweep_id = find_resumable(spec.root, request.resume, request.overrides)
    console.print(f"resuming sweep [bold]{sweep_id}[/]", highlight=False)
    return spec, sweep_id


def dry_run_lines(plan: SweepPlan) -> list[str]:
    """What ``--dry-run`` prints: the trials, where they run and what they write."""
    spec, c = plan.spec, plan.cluster
    lines = [
        f"{plan.total} trials, {plan.resources['max_concurrent_trials']} at a time on this machine's "
        f"{c.get('CPU', 0):g} CPU(s) and {c.get('GPU', 0):g} GPU(s); data {spec.data_path}; MLflow {spec.tracking_uri}"
    ]
    lines += [f"  {t.label}" for t in plan.trials]
    if spec.search.algorithm == "tpe":
        from ._search import describe_space

        lines += [f"  {line}" for line in describe_space(spec)]
    return lines


def sweep(request: SweepRequest, console: Console) -> SweepResult | None:
    """``launch sweep`` on this machine's Ray (or the cluster this process runs in): load, validate once, then print
    the plan (dry run: returns None) or run the sweep. Raises SpecError / SweepError for the CLI to report."""
    spec, sweep_id = load(request, console)
    plan = prepare(spec, console, request.verbose, request.source)
    if request.dry_run:
        for warning in plan.warnings:
            console.print(warning, style="yellow", highlight=False, markup=False)  # "[labels 'a']" is no markup
        for line in dry_run_lines(plan):
            console.print(line, highlight=False)
        return None
    return run_sweep(plan, console=console, verbose=request.verbose, sweep_id=sweep_id, resume=sweep_id is not None)


__all__ = ["SpecError", "SweepError", "SweepRequest", "dry_run_lines", "load", "sweep"]
