"""A live terminal view of the sweep (rich): trials done/running, best so far, elapsed and ETA."""

from __future__ import annotations

import math
import time

from ray import tune
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..analysis import input_wait
from ..config import TrialConfig


def _f(v, digits=3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


class ProgressView(tune.Callback):
    """Driver-side Tune callback rendering one row per trial."""

    def __init__(
        self, total: int, epochs: int, metric: str, mode: str, concurrency: int, console: Console | None = None
    ):
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
        return TrialConfig.of(trial.config).label if "trial" in trial.config else trial.trial_id

    def _row(self, trial) -> dict:
        return self.rows.setdefault(
            trial.trial_id,
            {
                "label": self._label(trial),
                "status": "PENDING",
                "epoch": 0,
                "value": None,
                "few": None,
                "wait": None,
                "t0": time.time(),
            },
        )

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
        head = Text(
            f"tailsweep: {done}/{self.total} trials done, {counts['RUNNING']} running, "
            f"{counts['ERROR']} failed, {counts['STOPPED']} stopped early | best {self.metric} {_f(best)} | "
            f"elapsed {elapsed / 60:.1f} min, ETA {eta}",
            style="bold",
        )
        table = Table(show_edge=False, pad_edge=False, expand=False)
        for col in ("trial", "status", "epoch", self.metric, "val/recall_few", "input wait"):
            table.add_column(col)
        style = {"RUNNING": "cyan", "DONE": "green", "ERROR": "red", "STOPPED": "yellow"}
        for r in self.rows.values():
            table.add_row(
                r["label"],
                Text(r["status"], style=style.get(r["status"], "")),
                f"{r['epoch']}/{self.epochs}",
                _f(r["value"]),
                _f(r["few"]),
                Text(_f(r["wait"], 2), style="yellow" if input_wait.waits_too_long(r["wait"]) else ""),
            )
        slow = [r["label"] for r in self.rows.values() if input_wait.waits_too_long(r["wait"])]
        if not slow:
            return Group(head, table)
        hint = Text(
            f"{', '.join(slow)}: over {input_wait.HINT_AT:.0%} of step time waiting for input -- {input_wait.HINT}"
        )
        return Group(head, table, hint)

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
        r["wait"] = result.get(input_wait.INPUT_WAIT)
        hint = input_wait.hint(r["wait"])
        self._line(
            f"[epoch {r['epoch']}/{self.epochs}] {r['label']}: {self.metric} {_f(result.get(self.metric))}"
            + (f" | {hint}" if hint else "")
        )
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


class WaitView:
    """The wait for an autoscaling cluster's nodes, before the trials' table: one live line on a terminal
    ("waiting for GPU nodes: 1 of 2 up (gpu_node x 2)"), else one plain line per change."""

    def __init__(self, console: Console):
        self.console = console
        self.t0 = time.time()
        self._live: Live | None = None
        self._last = ""

    def show(self, line: str) -> None:
        if not self.console.is_terminal:
            if line != self._last:  # one line per change
                self.console.print(f"tailsweep: {line} ({time.time() - self.t0:.0f} s)", highlight=False)
                self._last = line
            return
        text = Text(f"tailsweep: {line} | {time.time() - self.t0:.0f} s", style="bold")
        if self._live is None:
            self._live = Live(text, console=self.console, refresh_per_second=2, transient=True)
            self._live.start()
        self._live.update(text)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
