"""A live terminal view of the sweep (rich): trials done/running, best so far, elapsed and ETA."""

from __future__ import annotations

import math
import time

from ray import tune
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


def _f(v, digits=3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


class ProgressView(tune.Callback):
    """Driver-side Tune callback rendering one row per trial."""

    def __init__(self, total: int, epochs: int, metric: str, mode: str, concurrency: int, console: Console | None = None):
        self.total, self.epochs, self.metric, self.mode = total, epochs, metric, mode
        self.concurrency = max(1, concurrency)
        self.console = console or Console()
        self.rows: dict[str, dict] = {}
        self.start = time.time()
        self.finished_durations: list[float] = []
        self._live: Live | None = None

    def __getstate__(self):  # Tune pickles its callbacks into the experiment state
        return {k: v for k, v in self.__dict__.items() if k not in ("console", "_live")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.console, self._live = Console(), None

    def _label(self, trial) -> str:
        return (trial.config.get("trial") or {}).get("label", trial.trial_id)

    def _row(self, trial) -> dict:
        return self.rows.setdefault(trial.trial_id, {"label": self._label(trial), "status": "PENDING",
                                                     "epoch": 0, "value": None, "few": None, "t0": time.time()})

    def setup(self, **info):
        if self.console.is_terminal:
            self._live = Live(self.render(), console=self.console, refresh_per_second=2, transient=False)
            self._live.start()

    def render(self):
        counts = {s: sum(r["status"] == s for r in self.rows.values()) for s in ("RUNNING", "DONE", "STOPPED", "ERROR")}
        done = counts["DONE"] + counts["STOPPED"] + counts["ERROR"]
        elapsed = time.time() - self.start
        eta = "-"
        if self.finished_durations:
            avg = sum(self.finished_durations) / len(self.finished_durations)
            eta = f"{math.ceil((self.total - done) / self.concurrency) * avg / 60:.1f} min"
        values = [r["value"] for r in self.rows.values() if r["value"] is not None]
        best = (max if self.mode == "max" else min)(values) if values else None
        head = Text(f"tailsweep: {done}/{self.total} trials done, {counts['RUNNING']} running, "
                    f"{counts['ERROR']} failed, {counts['STOPPED']} stopped early | best {self.metric} {_f(best)} | "
                    f"elapsed {elapsed / 60:.1f} min, ETA {eta}", style="bold")
        table = Table(show_edge=False, pad_edge=False, expand=False)
        for col in ("trial", "status", "epoch", self.metric, "val/recall_few"):
            table.add_column(col)
        style = {"RUNNING": "cyan", "DONE": "green", "ERROR": "red", "STOPPED": "yellow"}
        for r in self.rows.values():
            table.add_row(r["label"], Text(r["status"], style=style.get(r["status"], "")),
                          f"{r['epoch']}/{self.epochs}", _f(r["value"]), _f(r["few"]))
        return Group(head, table)

    def _refresh(self):
        if self._live is not None:
            self._live.update(self.render())

    def _line(self, text: str):
        if self._live is None:  # not a terminal (CI, pipes): one plain line per event, flushed
            self.console.print(text, markup=False, highlight=False)
            self.console.file.flush()

    def on_trial_start(self, iteration, trials, trial, **info):
        r = self._row(trial)
        r["status"], r["t0"] = "RUNNING", time.time()
        self._line(f"[start] {r['label']}")
        self._refresh()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        r = self._row(trial)
        r["epoch"] = int(result.get("epoch", 0))
        r["value"] = result.get("val/best", result.get(self.metric))
        r["few"] = result.get("val/recall_few")
        self._line(f"[epoch {r['epoch']}/{self.epochs}] {r['label']}: {self.metric} {_f(result.get(self.metric))}")
        self._refresh()

    def _end(self, trial, status):
        r = self._row(trial)
        r["status"] = status
        self.finished_durations.append(time.time() - r["t0"])
        self._line(f"[{status.lower()}] {r['label']}")
        self._refresh()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, "DONE" if self._row(trial)["epoch"] >= self.epochs else "STOPPED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, "ERROR")

    def on_experiment_end(self, trials, **info):
        self.close()

    def close(self):
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None
