"""Softmax-style multi-label losses: ``two_way`` and ``multilabel_softmax`` (docs/methods.md, section 1).

Unlike the BCE family these do not score each (row, label) on its own: they compare a row's (or a label column's)
positive logits with its negative logits through log-sum-exps, so their terms have no per-element weight and the
focal modifier does not apply. Logits and {0, 1} targets of shape (B, C) in, a scalar out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import LabelStats
from ._checks import check_two_way_params


def masked_logsumexp(v: torch.Tensor, mask: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log of the sum of exp(v) over the entries where ``mask`` holds, along ``dim``, and whether any entry does.

    The entries outside the mask are excluded exactly (filled with -inf). A slice with no entry at all returns 0
    rather than -inf, so that neither the value nor the gradient turns NaN (the backward of an all -inf
    logsumexp is 0 * nan); the caller drops or zeroes those slices with the returned flag.
    """
    has = mask.any(dim)
    filled = v.masked_fill(~mask, float("-inf"))
    filled = torch.where(has.unsqueeze(dim), filled, torch.zeros_like(filled))
    return torch.logsumexp(filled, dim), has


def _mean_where(term: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``term`` over the entries ``keep`` marks; 0 when none is kept (no host sync)."""
    return (term * keep).sum() / keep.sum().clamp(min=1)


class TwoWayLoss(nn.Module):
    """Two-way multi-label loss (Kobayashi, CVPR 2023), as its authors' code computes it.

    With x the logits, T_p = ``t_pos`` and T_n = ``t_neg``, one *way* compares, within a set of logits, a soft
    maximum of the negatives with a soft minimum of the positives:

        term(S) = softplus( T_n log sum_{k in S, y=0} exp(x_k / T_n) + T_p log sum_{k in S, y=1} exp(-x_k / T_p) )

    The class way takes S = one label's column over the batch's rows, for every label with >= 1 positive in the
    batch; the sample way takes S = one row's labels, for every row with >= 1 positive. The loss is the mean of
    the class terms plus the mean of the sample terms (tk1980/TwoWayMultiLabelLoss, ``utils/criterion.py``,
    defaults T_p = 4, T_n = 1).

    Where tailsweep departs from that code (docs/methods.md lists these too):

    * the code excludes entries by *adding* -100 to x/T; here they are excluded exactly. The two agree while
      the logits stay within about +-40 T of each other;
    * a batch with no positive at all gives the code the mean of an empty tensor (NaN); here both means are 0
      (such a batch contributes nothing, and trains nothing);
    * a label whose column in the batch holds positives but no negative gets a term of exactly 0 here (the code:
      softplus of about -100 T_n, i.e. 0 in float32), and is counted in the class mean in both.

    Batch size and rare labels: a label's class term exists only in batches that hold one of its positives, so a
    rare label is trained through the class way in a fraction of the batches that grows with the batch size
    (:func:`~tailsweep.losses.batch_presence` gives the expected share when rows are drawn at random). It still
    takes part in the sample way of every row that carries it. The loss counts, for each label, the batches in
    which it had a class term; :meth:`weight_table` reports the share (``class_term_share``), which the worker
    writes to the trial's ``weights.json`` / ``weights.csv`` artifacts.
    """

    scheme = "two_way"

    def __init__(self, num_labels: int, t_pos: float = 4.0, t_neg: float = 1.0):
        super().__init__()
        if problems := check_two_way_params(t_pos, t_neg):
            raise ValueError(f"{self.scheme}: " + "; ".join(problems))
        self.t_pos, self.t_neg = float(t_pos), float(t_neg)
        # Diagnostics, not state: how many batches the loss saw and in how many each label had a class term.
        self.register_buffer("batches", torch.zeros((), dtype=torch.long), persistent=False)
        self.register_buffer("class_term_batches", torch.zeros(num_labels, dtype=torch.long), persistent=False)

    @classmethod
    def from_label_stats(cls, stats: LabelStats, t_pos: float = 4.0, t_neg: float = 1.0) -> TwoWayLoss:
        return cls(stats.num_labels, t_pos, t_neg)

    def way(self, x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, dim: int):
        """The terms of one way (dim 0: one per label over the rows; dim 1: one per row over the labels) and which
        of them count (those with a positive)."""
        soft_min_pos, has_pos = masked_logsumexp(-x / self.t_pos, pos, dim)
        soft_max_neg, has_neg = masked_logsumexp(x / self.t_neg, neg, dim)
        term = F.softplus(self.t_neg * soft_max_neg + self.t_pos * soft_min_pos)
        # no negative in the set: the soft maximum over nothing is -inf and softplus(-inf) = 0
        return torch.where(has_neg, term, torch.zeros_like(term)), has_pos

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = logits.float()
        pos, neg = targets > 0, targets == 0  # as the authors' code: y > 0 positive, y == 0 negative
        class_term, has_class = self.way(x, pos, neg, 0)
        sample_term, has_sample = self.way(x, pos, neg, 1)
        with torch.no_grad():
            self.batches += 1
            self.class_term_batches += has_class
        return _mean_where(class_term, has_class) + _mean_where(sample_term, has_sample)

    def weight_table(self) -> dict:
        batches = int(self.batches)
        share = (self.class_term_batches.double() / max(batches, 1)).tolist()
        return {"t_pos": self.t_pos, "t_neg": self.t_neg, "batches": batches, "class_term_share": share}


class MultiLabelSoftmaxLoss(nn.Module):
    """Multi-label softmax cross-entropy, also called ZLPR (Su et al., arXiv 2208.02955), mean over rows.

    Per row, with x its logits:  log(1 + sum_{y=0} exp(x)) + log(1 + sum_{y=1} exp(-x)), i.e. a log-sum-exp of
    the negatives' logits with a zero logit added, plus one of the positives' negated logits with a zero added.
    Each positive is pushed above 0 and each negative below it, relative to the rest of the row, so the decision
    threshold is x = 0 -- sigmoid(x) = 0.5, the threshold tailsweep's evaluation uses for every scheme.

    The authors' reference code (bojone/bert4keras, ``multilabel_categorical_crossentropy``) adds log(1 - y) to
    the negatives' logits and log(y) to the positives' (its soft-label form, log(1 + sum (1 - y) e^x) +
    log(1 + sum y e^-x)); tailsweep does the same, which on {0, 1} targets is the hard-label loss above. Keras
    averages the per-row losses over the batch; so does this module (there is no per-element term to average
    over B x C). No parameters.
    """

    scheme = "multilabel_softmax"

    @classmethod
    def from_label_stats(cls, stats: LabelStats) -> MultiLabelSoftmaxLoss:
        return cls()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = logits.float()
        y = targets.to(x.dtype)
        zero = x.new_zeros(*x.shape[:-1], 1)
        # log(0) = -inf removes an entry exactly; the appended zero keeps every log-sum-exp finite (and its
        # gradient free of NaN) when a row has no positive or no negative.
        neg = torch.logsumexp(torch.cat([x + torch.log1p(-y), zero], -1), -1)
        pos = torch.logsumexp(torch.cat([-x + torch.log(y), zero], -1), -1)
        return (neg + pos).mean()

    def weight_table(self) -> dict:
        return {"decision_logit": 0.0}
