"""Label statistics of the training split, computed once and cached beside the table."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._common import BUCKETS, FEW_BELOW, MANY_ABOVE  # noqa: F401 (BUCKETS re-exported by tailsweep.datasets)
from ._format import LABELS_FILE, LabelTable, files_digest

STATS_FILE = "stats.json"

log = logging.getLogger(__name__)


def bucket_of(count: int) -> str:
    if count > MANY_ABOVE:
        return "many"
    if count >= FEW_BELOW:
        return "medium"
    return "few"


@dataclass(frozen=True)
class LabelStats:
    """Per-label statistics of the training split.

    Attributes:
        labels: label ids in table order.
        n_train: N, number of training rows.
        counts: n_j, positives of each label in the (ancestor-closed) training split, shape (C,).
        depths: 1 for top-level labels, shape (C,).
        parents: parents of each label (empty for top-level nodes).
        digest: content digest of the table the statistics came from.
    """

    labels: tuple[str, ...]
    n_train: int
    counts: np.ndarray
    depths: np.ndarray
    parents: tuple[tuple[str, ...], ...]
    digest: str = ""

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def buckets(self) -> tuple[str, ...]:
        return tuple(bucket_of(int(c)) for c in self.counts)

    def bucket_mask(self, bucket: str) -> np.ndarray:
        return np.array([b == bucket for b in self.buckets], dtype=bool)

    @property
    def zero_labels(self) -> tuple[str, ...]:
        return tuple(label for label, c in zip(self.labels, self.counts, strict=True) if c == 0)

    def parent_indices(self) -> list[list[int]]:
        """Parents as label indices (parents outside the label list, e.g. a dropped root, are left out)."""
        index = {label: i for i, label in enumerate(self.labels)}
        return [[index[p] for p in ps if p in index] for ps in self.parents]

    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "n_train": int(self.n_train),
            "counts": [int(c) for c in self.counts],
            "depths": [int(d) for d in self.depths],
            "parents": [list(p) for p in self.parents],
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, d: dict) -> LabelStats:
        return cls(
            labels=tuple(d["labels"]),
            n_train=int(d["n_train"]),
            counts=np.asarray(d["counts"], dtype=np.int64),
            depths=np.asarray(d["depths"], dtype=np.int32),
            parents=tuple(tuple(p) for p in d["parents"]),
            digest=d.get("digest", ""),
        )

    @classmethod
    def from_counts(cls, counts, n_train: int, labels=None, depths=None, parents=None) -> LabelStats:
        """Build statistics directly (tests, synthetic checks)."""
        counts = np.asarray(counts, dtype=np.int64)
        c = len(counts)
        return cls(
            labels=tuple(labels) if labels is not None else tuple(f"l{j}" for j in range(c)),
            n_train=int(n_train),
            counts=counts,
            depths=np.asarray(depths if depths is not None else np.ones(c), dtype=np.int32),
            parents=tuple(tuple(p) for p in parents) if parents is not None else tuple(() for _ in range(c)),
        )

    def summary(self) -> list[dict]:
        """One row per label: label, depth, train count, bucket."""
        return [
            {"label": label, "depth": int(d), "train_count": int(c), "bucket": b}
            for label, d, c, b in zip(self.labels, self.depths, self.counts, self.buckets, strict=True)
        ]


def label_stats(table: LabelTable | str | Path, use_cache: bool = True) -> LabelStats:
    """Statistics of the training split, read from ``stats.json`` when its digest matches."""
    if not isinstance(table, LabelTable):
        table = LabelTable(table)
    digest = files_digest([table.root / LABELS_FILE, table.path("train")])
    cache = table.root / STATS_FILE
    if use_cache and cache.is_file():
        try:
            cached = LabelStats.from_dict(json.loads(cache.read_text()))
            if cached.digest == digest:
                return cached
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # stale or damaged cache: recompute
    y = table.encode_sparse(table.read("train", ["labels"]).column("labels"))  # sparse: O(positives) memory
    stats = LabelStats(
        labels=table.labels,
        n_train=int(y.shape[0]),
        counts=np.asarray(y.sum(axis=0)).ravel().astype(np.int64),
        depths=table.depths,
        parents=tuple(table.parents[label] for label in table.labels),
        digest=digest,
    )
    try:
        tmp = cache.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(stats.to_dict()))
        tmp.replace(cache)
    except OSError as exc:  # read-only table: fine, just recompute next time
        log.warning("could not cache label statistics at %s (%s)", cache, exc)
    return stats
