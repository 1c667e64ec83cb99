"""``search.algorithm: tpe``: one Optuna study per scheme entry, driven through Ray Tune's ``OptunaSearch``.

With ``search.metrics`` (two or more) each study is multi-objective: it learns from the mean over seeds of each
metric at the epoch the first metric picked (``best/<metric>``, reported by the worker), with Optuna's TPE sampler
(multi-objective TPE), or NSGA-II when an entry's budget is ``NSGA2_FROM`` configurations or more
(:func:`sampler_name`). Tune, the checkpoint and the report's "best configuration" follow the first metric.

Each scheme entry is tuned on its own, over its own searched parameters (plus ``lr`` / ``weight_decay`` when the
spec searches them), so schemes stay side by side instead of competing inside one categorical. Every suggested
configuration runs once per seed, and its study learns from the mean of the seeds' selection metric
(``val/best``: the best epoch's value, the checkpoint that is tested). That repeat is done here rather than with
``ray.tune.search.Repeater``: each seed is its own trial with its own MLflow child run, created here when the trial
is suggested (the run id travels in the trial's config, as it does for a planned sweep), and Repeater hands the
repeats one identical config.

The searcher's state is saved with Tune's experiment state (``save``/``restore``), so ``launch sweep --resume``
continues each study where the last saved state left it: finished configurations are not suggested again and the
budget (``num_samples`` configurations per entry) is not exceeded. The studies themselves live in Optuna RDB storage
(SQLite) in the sweep's folder, ``<tracking.dir>/sweeps/<id>/optuna.db``: ``optuna-dashboard sqlite:///...`` opens
them, and ``launch report`` reads their history and parameter importances from it.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

# the study file, and what the studies learn from (the best epoch's selection metric: what the tested checkpoint
# scored on val), named once for the driver and the report
from ..analysis.search import SCORE as SCORE_KEY
from ..analysis.search import STUDY_FILE
from ..config import TrialConfig
from ..losses import SCHEMES
from ._plan import base_params, make_trial, seeds_of, trial_base
from .spec import SweepSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dim:
    """One searched dimension as Optuna sees it: ``name`` in the study, the spec's parameter it sets (``target``:
    a scheme parameter, or ``train.lr`` / ``train.weight_decay``), its bounds and scale. ``log1m`` searches
    ``1 - x`` log-uniformly (Optuna has no such scale: the study's parameter is ``1-<name>``)."""

    name: str
    target: str
    low: float
    high: float
    scale: str  # linear | log | log1m
    integer: bool = False

    def distribution(self):
        import optuna

        if self.scale == "log1m":
            return optuna.distributions.FloatDistribution(1 - self.high, 1 - self.low, log=True)
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.scale == "log")
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.scale == "log")

    def value(self, suggested: float) -> float:
        """The parameter's value from the study's."""
        return float(1 - suggested) if self.scale == "log1m" else (int(suggested) if self.integer else float(suggested))


def scheme_space(spec: SweepSpec, s_index: int) -> list[Dim]:
    """The dimensions scheme entry ``s_index`` is tuned over (empty: nothing to search)."""
    scheme = spec.schemes[s_index]
    info = SCHEMES[scheme.name]
    dims = []
    for k, (lo, hi, scale) in scheme.search_ranges().items():
        dims.append(Dim(f"1-{k}" if scale == "log1m" else k, k, float(lo), float(hi), scale, info.params[k].integer))
    for k in ("lr", "weight_decay"):
        if (r := getattr(spec.search, k)) is not None:
            dims.append(Dim(k, f"train.{k}", float(r[0]), float(r[1]), "log"))
    return dims


def optuna_space(dims: list[Dim]) -> dict:
    """``{study parameter: optuna distribution}`` for ``OptunaSearch(space=...)``."""
    return {d.name: d.distribution() for d in dims}


def configuration(spec: SweepSpec, s_index: int, dims: list[Dim], suggested: dict) -> tuple[dict, float, float | None]:
    """(scheme params, lr, weight_decay) from one suggestion of the entry's study."""
    params = base_params(spec.schemes[s_index])
    lr, wd = spec.train.lr, None
    for d in dims:
        v = d.value(suggested[d.name])
        if d.target == "train.lr":
            lr = v
        elif d.target == "train.weight_decay":
            wd = v
        else:
            params[d.target] = v
    return params, lr, wd


def describe_space(spec: SweepSpec) -> list[str]:
    """One line per searched entry: its budget and dimensions (for ``--dry-run``)."""
    lines = []
    for i, scheme in enumerate(spec.schemes):
        dims = scheme_space(spec, i)
        if not dims:
            continue
        parts = [
            f"{d.name} in [{1 - d.high:g}, {1 - d.low:g}] log"
            if d.scale == "log1m"
            else f"{d.name} in [{d.low:g}, {d.high:g}]{' log' if d.scale == 'log' else ''}"
            for d in dims
        ]
        lines.append(
            f"{scheme.display}: {_how(spec)} over {', '.join(parts)}; {spec.search.num_samples} configurations "
            f"{_start(spec)} x {len(seeds_of(spec, scheme))} seeds"
        )
    return lines


def _how(spec: SweepSpec) -> str:
    if not spec.search.multi_objective:
        return "TPE"
    goals = ", ".join(f"{m} {mode}" for m, mode in spec.search.objectives())
    return f"{'NSGA-II' if sampler_name(spec) == 'nsga2' else 'TPE'} (multi-objective: {goals})"


def _start(spec: SweepSpec) -> str:
    if sampler_name(spec) == "nsga2":
        return f"(generations of {nsga2_population(spec.search.num_samples)}, the first at random)"
    return f"(first {spec.search.startup()} at random)"


def study_name(sweep_id: str, spec: SweepSpec, s_index: int) -> str:
    return f"{sweep_id}/{spec.schemes[s_index].display}"


def study_storage(report_dir: Path) -> str:
    return f"sqlite:///{Path(report_dir).resolve() / STUDY_FILE}"


NSGA2_FROM = 100  # a multi-objective search with at least this many configurations per entry uses NSGA-II


def nsga2_population(num_samples: int) -> int:
    """NSGA-II's population: a tenth of the budget, at least 10 (so the budget is 10 generations or more)."""
    return max(10, num_samples // 10)


def sampler_name(spec: SweepSpec) -> str:
    """tpe, or nsga2 for a multi-objective search of NSGA2_FROM configurations or more per entry: TPE models the
    front from few trials and its cost grows with the trials seen; NSGA-II needs several generations of a
    population to move, which a budget of that size gives."""
    return "nsga2" if spec.search.multi_objective and spec.search.num_samples >= NSGA2_FROM else "tpe"


def sampler(spec: SweepSpec, s_index: int):
    """TPE (multi-objective TPE with search.metrics), or NSGA-II (:func:`sampler_name`), seeded from the spec (each
    entry its own seed, so two entries with the same space draw differently)."""
    import optuna

    seed = spec.search.seed * 1000 + s_index
    if sampler_name(spec) == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=nsga2_population(spec.search.num_samples), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.search.startup())


def study_metrics(spec: SweepSpec) -> tuple[str | list[str], str | list[str]]:
    """(metric, mode) as OptunaSearch takes them: ``val/best`` (the best epoch's selection metric) for one
    objective; ``best/<metric>`` per search.metrics entry (each at the epoch the first picked) for several."""
    if not spec.search.multi_objective:
        return SCORE_KEY, spec.search.mode
    objectives = spec.search.objectives()
    return [f"best/{m}" for m, _ in objectives], [mode for _, mode in objectives]


_OWN = ("spec", "child_run", "base")


class PerSchemeSearch(Searcher):
    """A Tune searcher over every scheme entry of a tpe sweep: one ``OptunaSearch`` per searched entry, each asked
    in turn (round robin) until it has suggested ``num_samples`` configurations; each configuration is handed out
    once per seed; entries with nothing to search run their ``fixed`` trials (once per seed) first.

    ``child_run(trial) -> run_id`` creates (or finds again) the trial's MLflow child run; it is called on the driver.
    ``base``: what every trial shares (``_plan.trial_base``, with the resource plan's per-worker values).
    """

    def __init__(
        self,
        spec: SweepSpec,
        sweep_id: str,
        storage: str,
        child_run,
        fixed: list[TrialConfig],
        base: Mapping[str, Any] | None = None,
    ):
        super().__init__(metric=spec.search.metric, mode=spec.search.mode)
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.child_run = child_run
        self.base = dict(base or trial_base(spec))
        self.budget = spec.search.num_samples
        self.entries = [i for i, s in enumerate(spec.schemes) if spec.searched(s)]
        self.spaces = {i: scheme_space(spec, i) for i in self.entries}
        storage_obj = optuna.storages.RDBStorage(storage)
        self.keys, modes = study_metrics(spec)
        self.studies = {
            i: OptunaSearch(
                optuna_space(self.spaces[i]),
                metric=self.keys,
                mode=modes,
                sampler=sampler(spec, i),
                study_name=study_name(sweep_id, spec, i),
                storage=storage_obj,
            )
            for i in self.entries
        }
        self.queue: list[TrialConfig] = list(fixed)  # trials to hand out before asking a study again
        self.asked = {i: 0 for i in self.entries}
        self.turn = 0
        self.groups: dict[str, dict] = {}  # group key -> {entry, seeds, scores}
        self.trial_group: dict[str, str] = {}  # Tune trial id -> group key

    # --- Tune's side -----------------------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode come from the sweep spec; the space is each entry's own

    def suggest(self, trial_id: str):
        if not self.queue and not self._ask():
            return Searcher.FINISHED
        trial = self.queue.pop(0)
        trial = trial.model_copy(update={"run_id": self.child_run(trial)})
        self.trial_group[trial_id] = trial.group
        return {"trial": trial.model_dump(mode="json")}

    def _ask(self) -> bool:
        """Queue the next configuration of the next entry with budget left (one trial per seed)."""
        open_ = [i for i in self.entries if self.asked[i] < self.budget]
        if not open_:
            return False
        i = open_[self.turn % len(open_)]
        self.turn += 1
        draw = self.asked[i]
        self.asked[i] += 1
        key = f"{i}:{draw}"
        suggested = self.studies[i].suggest(key)
        params, lr, wd = configuration(self.spec, i, self.spaces[i], suggested)
        seeds = seeds_of(self.spec, self.spec.schemes[i])
        self.groups[key] = {"entry": i, "seeds": seeds, "scores": {}}
        self.queue += [make_trial(self.spec, i, draw, params, lr, seed, wd, self.base) for seed in seeds]
        return True

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass  # no pruning: a study learns from finished configurations only (the mean over seeds)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        key = self.trial_group.get(trial_id)
        group = self.groups.get(key) if key else None
        if group is None:  # a fixed trial: nothing learns from it
            return
        group["scores"][f"{trial_id}/{len(group['scores'])}"] = self._values(None if error else result)
        if len(group["scores"]) < len(group["seeds"]):
            return  # order does not matter: only the mean is told
        study = self.studies[group["entry"]]
        keys = self.keys if isinstance(self.keys, list) else [self.keys]
        values = [v if isinstance(v, list) else [v] for v in group["scores"].values()]  # a float: saved by 0.x
        done = [v for v in values if not any(math.isnan(x) for x in v)]
        if done:
            means = {k: sum(v[j] for v in done) / len(done) for j, k in enumerate(keys)}
            study.on_trial_complete(key, result=means)
        else:  # every seed failed: the study records a failed trial and samples elsewhere
            study.on_trial_complete(key, result=None, error=True)

    def _values(self, result: dict | None) -> list[float]:
        """What the study learns from in one finished trial's result (NaN where missing)."""
        keys = self.keys if isinstance(self.keys, list) else [self.keys]
        if not result:
            return [math.nan] * len(keys)
        if not isinstance(self.keys, list):  # one objective: val/best, or the metric itself (older results)
            v = result.get(SCORE_KEY, result.get(self.spec.search.metric))
            return [math.nan if v is None else float(v)]
        return [math.nan if result.get(k) is None else float(result[k]) for k in keys]

    # --- state (Tune's experiment checkpoint) ------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        # The search's progress only: the spec and the run maker are this driver's (a resume may move tracking or
        # resources), set when the searcher is built.
        with open(checkpoint_path, "wb") as f:
            pickle.dump({k: v for k, v in self.__dict__.items() if k not in _OWN}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        self._fail_orphans()

    def _fail_orphans(self) -> None:
        """Optuna trials a killed driver asked for after its last saved state: the resumed search does not know
        them, so they would stay RUNNING in the study (and in the dashboard) forever. Marked FAIL."""
        import optuna

        for study_search in self.studies.values():
            study = study_search._ot_study  # noqa: SLF001 (OptunaSearch keeps its study here; ray 2.60)
            known = {t.number for t in study_search._ot_trials.values()}  # noqa: SLF001
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                if t.number not in known:
                    study.tell(t.number, state=optuna.trial.TrialState.FAIL)

    def done(self) -> dict[str, int]:
        """Configurations suggested so far per entry (for the progress line)."""
        return {self.spec.schemes[i].display: n for i, n in self.asked.items()}
