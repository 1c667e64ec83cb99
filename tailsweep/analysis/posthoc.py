"""Post-hoc logit adjustment (Menon et al., ICLR 2021, the post-hoc form) of trained settings, with no retraining.

Each trial keeps its test and validation scores (``test_predictions.npz``: ``p`` / ``val_p``, float16
probabilities as evaluated) with the training split's positives per label (``train_count``, n_j), its rows
(``n_train``, N) and, on a hierarchy, its edges. For a setting, the report shifts every label's logit by its prior
log-odds,

    z'_ij = logit(p_ij) - tau * log(n_j / (N - n_j)),

so rare labels (very negative prior log-odds) move up. tau is chosen on validation from :data:`TAUS`: the value
with the highest mean over seeds of validation macro F1 at the report's threshold 0.5 (ties: the smaller tau;
tau = 0 is the trained setting itself). The adjusted setting, "<setting> + post-hoc τ=<tau>", then enters the
report like any trained one (headline, buckets, paired bootstrap against the baseline).

Choices, and their reasons:

- Scores are kept as probabilities, so logits come back as ``logit(clip(p, 1e-7, 1 - 1e-7))``. float16 holds
  probabilities up to 1 - 2^-11 below 1 (logit about 7.6); scores above saturate and tie. Per label the shift is
  monotone, so on a flat table per-label AP (and macro AP) are unchanged by construction; what moves is every
  thresholded figure (F1, recall by bucket) and the ranking across labels (micro AU(PRC)).
- A label with no training positive gets n_j = 0.5 (and N - n_j at least 0.5), so its prior stays finite.
- On a hierarchy the kept scores are already MCM-coherent (parent >= child), and only those are kept: the shift is
  applied to them, then the max constraint is applied again (each parent raised to the largest of its
  descendants), so that the adjusted predictions stay coherent. A parent has at least its children's positives,
  so its shift is the smaller and the shift alone could put a child above its parent. A parent raised so can
  change rank among its own scores: its AP moves a little (on the clothing cut, macro AP by -0.0003).
- Ensembles keep the mean of their heads' probabilities; the logit of that mean stands in for a logit.
- Not adjusted (:data:`SKIPPED`): ``logit_adjusted`` (trained with this very shift: adjusting again counts the
  prior twice), ``multilabel_softmax`` and ``two_way`` (their logits compare labels within a row against a
  threshold of 0 and samples within a column, not per-label log-odds: a prior shift has no meaning for them).
- With ``eval.thresholds: per_label`` the per-label thresholds tuned on validation absorb any per-label shift, so
  post-hoc adjustment changes nothing there; the adjusted settings use the fixed 0.5 only.
- The adjusted setting's metrics are computed on the kept test rows (all of them up to ``eval.prediction_rows``,
  a seeded subsample past it), the rows the bootstrap uses.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..datasets import BUCKETS, bucket_of
from ..datasets._graph import heights
from .bootstrap import macro_f1, micro_auprc, per_label_ap

TAUS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
EPS = 1e-7
SUFFIX = " + post-hoc"
SKIPPED = {
    "logit_adjusted": "trained with this shift already",
    "multilabel_softmax": "logits compared with threshold 0 within a row, not per-label log-odds",
    "two_way": "logits compared within rows and columns, not per-label log-odds",
}
NEEDED = ("val_p", "val_y", "train_count", "n_train")


def prior_log_odds(train_count, n_train: int) -> np.ndarray:
    """log(n_j / (N - n_j)) per label; n_j clipped to [0.5, N - 0.5] so that every value is finite."""
    n = np.clip(np.asarray(train_count, dtype=np.float64), 0.5, max(float(n_train) - 0.5, 0.5))
    return np.log(n) - np.log(np.maximum(float(n_train) - n, 0.5))


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def close_upward(p: np.ndarray, edges) -> np.ndarray:
    """The max constraint: each parent at least its children (and so its descendants). ``edges``: (child, parent)
    label indices. Parents are taken by height (leaves 0), so that every child is final when its parent is
    closed: one vectorised max per level of the hierarchy. A graph with a cycle (which validation refuses) is
    closed by repeated passes instead."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if not len(edges):
        return p
    child, parent = edges[:, 0], edges[:, 1]
    height = heights(child, parent, p.shape[1])
    if (height < 0).any():
        return close_by_passes(p, edges)
    p = p.copy()
    level = height[parent]
    order = np.lexsort((parent, level))
    child, parent, level = child[order], parent[order], level[order]
    cuts = np.flatnonzero(np.diff(level)) + 1
    for c, q in zip(np.split(child, cuts), np.split(parent, cuts), strict=True):
        starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
        top = np.maximum.reduceat(p[:, c], starts, axis=1)
        p[:, q[starts]] = np.maximum(p[:, q[starts]], top)
    return p


def close_by_passes(p: np.ndarray, edges) -> np.ndarray:
    """The same closure by repeated passes over all edges until nothing changes (any graph, cycles included;
    as many passes as the hierarchy has levels, each a slow unbuffered ``np.maximum.at``)."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    p = p.copy()
    for _ in range(len(edges) + 1):
        before = p.copy()
        np.maximum.at(p.T, edges[:, 1], p.T[edges[:, 0]])
        if np.array_equal(before, p):
            break
    return p


def adjust(p, log_odds: np.ndarray, tau: float, edges=None) -> np.ndarray:
    """Probabilities with each label's logit shifted by ``-tau * log_odds`` (coherent again on a hierarchy)."""
    out = 1.0 / (1.0 + np.exp(-(logit(p) - tau * np.asarray(log_odds)[None, :])))
    return out if edges is None else close_upward(out, edges)


def val_macro_f1(pred: dict, tau: float) -> float:
    """Validation macro F1 at 0.5 of one trial's kept scores shifted by ``tau``."""
    shift = prior_log_odds(pred["train_count"], int(pred["n_train"]))
    p = adjust(pred["val_p"], shift, tau, pred.get("edges"))
    return float(macro_f1(pred["val_y"], p)[0])


def choose_tau(preds: list[dict], taus=TAUS) -> tuple[float, dict[float, float]]:
    """(tau, {tau: mean validation macro F1 over the trials}) -- the first best in ``taus`` order."""
    scores = {float(t): float(np.nanmean([val_macro_f1(pr, t) for pr in preds])) for t in taus}
    best = max(scores.values(), key=lambda v: -math.inf if math.isnan(v) else v)
    return next(t for t, v in scores.items() if v == best), scores


def headline_scores(y: np.ndarray, p: np.ndarray, train_count: np.ndarray, depths: np.ndarray) -> tuple[dict, list]:
    """The report's test metrics (``test/...``) and per-label rows of scores ``p`` at threshold 0.5."""
    y = np.asarray(y, dtype=bool)
    pred = p >= 0.5
    tp, pos, npred = (pred & y).sum(0), y.sum(0), pred.sum(0)
    has = pos > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(npred > 0, tp / np.maximum(npred, 1), 0.0)
        recall = np.where(has, tp / np.maximum(pos, 1), 0.0)
        f1 = np.where(tp > 0, 2 * tp / np.maximum(pos + npred, 1), 0.0)
    ap = per_label_ap(y, p)[0]
    micro_p, micro_r = tp.sum() / max(npred.sum(), 1), tp.sum() / max(pos.sum(), 1)
    buckets = np.array([bucket_of(int(c)) for c in train_count])
    m = {
        "test/macro_ap": float(np.nanmean(ap[has])) if has.any() else math.nan,
        "test/micro_auprc": float(micro_auprc(y, p)[0]),
        "test/macro_f1": float(f1[has].mean()) if has.any() else math.nan,
        "test/micro_f1": float(2 * micro_p * micro_r / (micro_p + micro_r)) if micro_p + micro_r else 0.0,
        "test/macro_recall": float(recall[has].mean()) if has.any() else math.nan,
    }
    for b in BUCKETS:
        sel = (buckets == b) & has
        if sel.any():
            m |= {f"test/recall_{b}": float(recall[sel].mean()), f"test/f1_{b}": float(f1[sel].mean())}
            m[f"test/ap_{b}"] = float(np.nanmean(ap[sel]))
    rows = [
        {
            "label": "",
            "depth": int(depths[j]),
            "train_count": int(train_count[j]),
            "bucket": buckets[j],
            "positives": int(pos[j]),
            "predicted": int(npred[j]),
            "ap": float(ap[j]),
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
        }
        for j in range(y.shape[1])
    ]
    return m, rows


def _adjusted_trial(t, tau: float, name: str):
    pred = t.predictions
    shift = prior_log_odds(pred["train_count"], int(pred["n_train"]))
    p = adjust(pred["p"], shift, tau, pred.get("edges"))
    depths = np.array([int(r.get("depth", 1)) for r in t.per_label]) if t.per_label else np.ones(p.shape[1], int)
    metrics, rows = headline_scores(pred["y"], p, pred["train_count"], depths)
    for row, old in zip(rows, t.per_label or [{}] * len(rows), strict=True):
        row["label"] = old.get("label", "")
    # float64: float32 would merge adjusted scores near 1 into ties and move per-label AP
    kept = {"p": p, "y": pred["y"], "rows": pred["rows"], "n_test": pred["n_test"]}
    metrics["posthoc/tau"] = tau
    return replace(
        t, setting=name, name=f"{name} seed={t.seed}", metrics=metrics, per_label=rows, rare=[], weights={},
        wall_s=math.nan, group=f"{t.group}+posthoc", predictions=kept,
    )  # fmt: skip


def eligible(trials) -> tuple[list, str]:
    """(the setting's complete trials with what the adjustment needs, why not when none)."""
    scheme = trials[0].scheme if trials else "?"
    if scheme in SKIPPED:
        return [], f"`{scheme}`: {SKIPPED[scheme]}"
    ok = [t for t in trials if t.complete and t.predictions is not None]
    ok = [t for t in ok if all(k in t.predictions for k in NEEDED)]
    return ok, "" if ok else "no kept validation scores (trials recorded before they were kept, or prediction_rows 0)"


def posthoc_settings(groups: dict) -> tuple[dict, list[tuple]]:
    """({"<setting> + post-hoc τ=<tau>": adjusted trials}, the report's blocks saying what was chosen and why)."""
    out, rows, skipped = {}, [], []
    for name, trials in groups.items():
        ok, why = eligible(trials)
        if not ok:
            skipped.append(f"{name} ({why})")
            continue
        tau, scores = choose_tau([t.predictions for t in ok])
        rows.append([name, f"{tau:g}"] + [f"{scores[t]:.3f}" for t in TAUS])
        if tau == 0:  # validation keeps the setting as it is: no second copy of it in the tables
            continue
        new = f"{name}{SUFFIX} τ={tau}"
        out[new] = [_adjusted_trial(t, tau, new) for t in ok]
    if not rows and not skipped:
        return {}, []
    blocks: list[tuple] = [
        ("h2", "Post-hoc logit adjustment (no retraining)"),
        (
            "p",
            "Each trained setting's kept scores with every label's logit shifted by -τ·log(n_j/(N-n_j)) (Menon et "
            "al., ICLR 2021, post-hoc form; n_j training positives of label j, N training rows); τ chosen on "
            "validation from " + ", ".join(f"{t:g}" for t in TAUS) + " by the mean over seeds of validation macro "
            "F1 at 0.5 (ties: the smaller τ; where τ = 0 is chosen the setting is left as it is). The adjusted settings, "
            f"'<setting>{SUFFIX} τ=…', appear in every table above and below and in the paired bootstrap; their "
            "metrics come from the kept test rows. On a flat table per-label AP is unchanged by construction (a "
            "monotone shift per label); what changes are the thresholded figures and micro AU(PRC). On a hierarchy "
            "the max constraint is applied again after the shift, which can move a parent's AP a little.",
        ),
    ]
    if rows:
        blocks.append(("table", ["setting", "τ chosen"] + [f"val macro F1, τ={t:g}" for t in TAUS], rows))
    if skipped:
        blocks.append(("p", "Not adjusted: " + "; ".join(skipped) + "."))
    return out, blocks
