"""The scheme registry: one literal dict of :class:`SchemeInfo` plus one factory, :func:`build_loss`."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ._checks import (
    DB_BIAS,
    REDUCTIONS,
    SCHEDULES,
    UNCERTAINTIES,
    WEIGHT_TARGETS,
    check_apl_params,
    check_distribution_balanced_params,
    check_focal_gamma,
    check_logit_adjusted_params,
    check_node_params,
    check_two_way_params,
)

# Every scheme's formula, source and the differences between its paper and its authors' code, one section per
# scheme id (`launch schemes --json` links each as METHODS_DOC#<id>), relative to the repository root.
METHODS_DOC = "docs/methods.md"


@dataclass(frozen=True)
class Param:
    """A scheme hyperparameter: its default, its domain and the range a sweep searches.

    ``scale``: ``linear`` or ``log`` sample in [low, high]; ``log1m`` samples 1 - x log-uniformly
    (for beta close to 1). ``nullable``: None is an allowed value (disables the term). ``choices``:
    the parameter is a word, one of these (not searched). ``quiet``: trial labels leave it out at its
    default (options that are off unless set). ``ge``/``gt``/``le``/``lt``: the domain (inclusive /
    exclusive bounds), checked for fixed values and both ends of a searched range alike, by the spec check
    before a sweep starts and by :func:`build_loss`. ``integer``: whole numbers only.
    """

    default: float | str | None
    low: float | None = None
    high: float | None = None
    scale: str = "linear"
    nullable: bool = False
    doc: str = ""
    choices: tuple[str, ...] = ()
    quiet: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    integer: bool = False

    @property
    def searchable(self) -> bool:
        return self.low is not None and self.high is not None

    def sample(self, rng) -> float:
        """Draw one value with a numpy Generator (random search)."""
        if not self.searchable:
            return self.default
        lo, hi = float(self.low), float(self.high)
        return self.sample_in(rng, lo, hi)

    def sample_in(self, rng, lo: float, hi: float) -> float:
        if self.scale == "log":
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.scale == "log1m":
            return float(1 - math.exp(rng.uniform(math.log(1 - hi), math.log(1 - lo))))
        return float(rng.uniform(lo, hi))

    def domain(self) -> str:
        """The allowed values in words, e.g. 'in [0, 1)' or '>= 0'."""
        lo = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        hi = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else None
        if lo and hi:
            text = f"in {lo}, {hi}"
        elif lo:
            text = (">= " if lo[0] == "[" else "> ") + lo[1:]
        elif hi:
            text = ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
        else:
            text = "a finite number"
        return ("a whole number " if self.integer else "") + text

    def check(self, value) -> str | None:
        """None if ``value`` is allowed, else why not."""
        if value is None:
            return None if self.nullable else "may not be null"
        if self.choices:
            return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        v = float(value)
        ok = math.isfinite(v) and not (
            (self.ge is not None and v < self.ge)
            or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le)
            or (self.lt is not None and v >= self.lt)
            or (self.integer and v != int(v))
        )
        return None if ok else f"must be {self.domain()}, got {value!r}"

    def check_range(self, low, high) -> str | None:
        """None if a searched range [low, high] is allowed, else why not (both ends in the domain, and what
        the sampling scale needs)."""
        for end, v in (("low", low), ("high", high)):
            if (why := self.check(v)) is not None:
                return f"search range end {end} {why}"
        if self.scale == "log" and low <= 0:
            return f"is searched log-uniformly: the range must be > 0, got [{low}, {high}]"
        if self.scale == "log1m" and high >= 1:
            return f"is searched as 1 - x log-uniformly: the range must be < 1, got [{low}, {high}]"
        return None


@dataclass(frozen=True)
class SchemeInfo:
    """Metadata of one weighting scheme."""

    name: str
    loss: str  # "module:Class" of the loss, imported when a loss is built (the registry itself needs no torch)
    summary: str
    paper: str
    params: Mapping[str, Param] = field(default_factory=dict)
    needs_hierarchy: bool = False
    needs_ensemble: bool = False
    # Checks across a full parameter set (defaults filled in): returns every problem, empty if fine.
    check: Callable[..., list[str]] | None = None

    @property
    def loss_class(self):
        """The loss's ``nn.Module`` class (imports torch)."""
        import importlib

        module, _, name = self.loss.partition(":")
        return getattr(importlib.import_module(module, __package__), name)

    def problems(self, params: Mapping) -> list[str]:
        """Problems with ``params`` (missing ones take their defaults), each naming the scheme."""
        out = [
            f"parameter '{k}' {why}"
            for k, v in params.items()
            if k in self.params and (why := self.params[k].check(v)) is not None
        ]
        if not out and self.check is not None:
            out = self.check(**({k: p.default for k, p in self.params.items()} | dict(params)))
        return [f"scheme '{self.name}': {p}" for p in out]


_NODE_PARAMS = {
    "omega": Param(0.25, 0.05, 1.0, ge=0, doc="weight floor >= 0"),
    "schedule": Param(
        "none",
        choices=SCHEDULES,
        quiet=True,
        doc="move weights toward omega over each epoch's minibatches: none, linear, exponential, alternate",
    ),
    "mix": Param(
        1.0, quiet=True, ge=0, le=1, doc="lambda of the mixed loss lambda*weighted + (1-lambda)*unweighted; 1 = off"
    ),
    "schedule_power": Param(3.0, quiet=True, gt=0, doc="exponent k of the exponential schedule (i/(B-1))^k, > 0"),
    "weight_targets": Param(
        "negatives",
        choices=WEIGHT_TARGETS,
        quiet=True,
        doc="targets w' multiplies: negatives (the authors' code: y=0 gets w', y=1 gets 1; raises "
        "recall) or positives (the other reading; lowers recall)",
    ),
}

# The focal modifier, on every flat BCE-family scheme but focal, asymmetric and apl (which focus on their own);
# two_way and multilabel_softmax compare logits within a row or a column and have no per-element term to modify:
# each loss element times (1 - p_t)^focal_gamma. Off (null) by default, so left out of trial labels.
_FOCAL = {
    "focal_gamma": Param(
        None,
        0.5,
        3.0,
        nullable=True,
        quiet=True,
        ge=0,
        doc="focal modifier: multiply each element by (1 - p_t)^focal_gamma, >= 0; null: off",
    )
}
_MAX_WEIGHT = {"max_weight": Param(None, nullable=True, gt=0, doc="clip weights at this value > 0 (null: no clip)")}

SCHEMES: dict[str, SchemeInfo] = {
    "unweighted": SchemeInfo(
        "unweighted",
        "._flat:UnweightedBCE",
        "plain BCE",
        "baseline of both seed papers",
        dict(_FOCAL),
        check=check_focal_gamma,
    ),
    "inverse_frequency": SchemeInfo(
        "inverse_frequency",
        "._flat:InverseFrequencyBCE",
        "positives weighted 1/n_j (mean 1)",
        "baseline of Shen, Agrawal, Cheng, arXiv 2305.04379",
        _MAX_WEIGHT | _FOCAL,
        check=check_focal_gamma,
    ),
    "sqrt_inverse_frequency": SchemeInfo(
        "sqrt_inverse_frequency",
        "._flat:SqrtInverseFrequencyBCE",
        "positives weighted 1/sqrt(n_j) (mean 1)",
        "common practice (e.g. Mahajan et al., ECCV 2018)",
        _MAX_WEIGHT | _FOCAL,
        check=check_focal_gamma,
    ),
    "pos_weight": SchemeInfo(
        "pos_weight",
        "._flat:PosWeightBCE",
        "positives weighted (N-n_j)/n_j, as BCEWithLogitsLoss(pos_weight)",
        "common practice (PyTorch BCEWithLogitsLoss)",
        _MAX_WEIGHT | _FOCAL,
        check=check_focal_gamma,
    ),
    "effective_number": SchemeInfo(
        "effective_number",
        "._flat:EffectiveNumberBCE",
        "class-balanced by effective number; beta=0 unweighted, beta->1 inverse frequency",
        "Cui et al., CVPR 2019; tailsweep's reading of Shen et al., arXiv 2305.04379",
        {
            "beta": Param(
                0.999, 0.9, 0.9999, "log1m", ge=0, lt=1, doc="in [0, 1); larger = closer to inverse frequency"
            ),
            **_FOCAL,
        },
        check=check_focal_gamma,
    ),
    "distribution_balanced": SchemeInfo(
        "distribution_balanced",
        "._flat:DistributionBalancedLoss",
        "re-balancing weight alpha + sigmoid(beta (r - mu)), r = (1/n_j) / sum of 1/n_k over the row's "
        "positives, on a negative-tolerant BCE of z + b, b_j = -kappa log(N/n_j - 1) / lam (the authors' code)",
        "Wu et al., ECCV 2020 (distribution-balanced loss)",
        {
            "alpha": Param(0.1, ge=0, doc="floor of the re-balancing weight, >= 0"),
            "beta": Param(10.0, ge=0, doc="slope of the re-balancing map, >= 0"),
            "mu": Param(0.2, doc="centre of the re-balancing map"),
            "lam": Param(
                2.0, 1.0, 5.0, gt=0, doc="lambda, negative-tolerant scale > 0: negatives (1/lam) softplus(lam (z + b))"
            ),
            "kappa": Param(
                0.05, 0.0, 0.2, doc="scale of the class bias b_j = -kappa log(N/n_j - 1) / lam; 0 = no shift"
            ),
            "bias": Param(
                "code",
                choices=DB_BIAS,
                quiet=True,
                doc="code: z + b as the authors' code (rare labels' logits lowered); paper: z - nu, "
                "nu_j = -kappa log(N/n_j - 1), the opposite direction",
            ),
            **_FOCAL,
        },
        check=check_distribution_balanced_params,
    ),
    "logit_adjusted": SchemeInfo(
        "logit_adjusted",
        "._flat:LogitAdjustedBCE",
        "BCE on z_j + tau log(n_j / (N - n_j)) in training, plain z at inference; tau=0 unweighted",
        "Menon et al., ICLR 2021 (logit adjustment, sigmoid form)",
        {"tau": Param(1.0, 0.25, 2.0, ge=0, doc="scale of the prior log-odds shift, >= 0; 0 = plain BCE"), **_FOCAL},
        check=check_logit_adjusted_params,
    ),
    "focal": SchemeInfo(
        "focal",
        "._flat:FocalLoss",
        "(1-p_t)^gamma modulation with alpha balance",
        "Lin et al., ICCV 2017",
        {
            "gamma": Param(2.0, 0.5, 3.0, ge=0, doc="focusing parameter >= 0"),
            "alpha": Param(0.25, nullable=True, ge=0, le=1, doc="positive balance in [0, 1]; null disables"),
        },
    ),
    "asymmetric": SchemeInfo(
        "asymmetric",
        "._flat:AsymmetricLoss",
        "asymmetric focusing with probability margin on negatives",
        "Ridnik et al., ICCV 2021 (mean, not their sum)",
        {
            "gamma_pos": Param(0.0, ge=0, doc="positive focusing >= 0"),
            "gamma_neg": Param(4.0, 1.0, 6.0, ge=0, doc="negative focusing >= 0"),
            "clip": Param(0.05, 0.0, 0.1, ge=0, lt=1, doc="probability margin m in [0, 1)"),
        },
    ),
    "apl": SchemeInfo(
        "apl",
        "._flat:AsymmetricPolynomialLoss",
        "asymmetric's focusing and margin on a polynomial-corrected BCE: positives log p + eps1 (1-p) + "
        "(eps2/2)(1-p)^2, negatives log q + eps0 q with q = 1 - p_m; focusing weights without gradient",
        "Huang, Qi, Wang, Lin, ICASSP 2023, arXiv 2304.05361 (code LUMIA-Group/APL; mean, not their sum)",
        {
            "gamma_pos": Param(0.0, ge=0, doc="positive focusing exponent >= 0"),
            "gamma_neg": Param(4.0, 1.0, 6.0, ge=0, doc="negative focusing exponent >= 0"),
            "clip": Param(0.05, 0.0, 0.1, ge=0, lt=1, doc="probability margin m in [0, 1)"),
            "epsilon_pos": Param(
                1.0, -1.0, 2.0, doc="eps1, coefficient added to the positives' (1 - p) term (the code's 1.0)"
            ),
            "epsilon_pos2": Param(-2.5, -4.0, 1.0, doc="eps2, the positives' (eps2/2)(1 - p)^2 term (the code's -2.5)"),
            "epsilon_neg": Param(
                0.0, -1.0, 1.0, doc="eps0, the negatives' eps0 * q term, q = 1 - p_m (the code's 0: off)"
            ),
        },
        check=check_apl_params,
    ),
    "two_way": SchemeInfo(
        "two_way",
        "._softmax:TwoWayLoss",
        "softplus(T_n LSE(x_neg / T_n) + T_p LSE(-x_pos / T_p)) over each label's column in the batch (labels "
        "with a positive there) and over each row's labels; mean of each way, summed",
        "Kobayashi, CVPR 2023 (code tk1980/TwoWayMultiLabelLoss)",
        {
            "t_pos": Param(
                4.0, 1.0, 8.0, "log", gt=0, doc="T_p, temperature of the soft minimum over positives' logits, > 0"
            ),
            "t_neg": Param(
                1.0, 0.25, 4.0, "log", gt=0, doc="T_n, temperature of the soft maximum over negatives' logits, > 0"
            ),
        },
        check=check_two_way_params,
    ),
    "multilabel_softmax": SchemeInfo(
        "multilabel_softmax",
        "._softmax:MultiLabelSoftmaxLoss",
        "per row log(1 + sum_neg e^z) + log(1 + sum_pos e^-z), mean over rows; its decision threshold is "
        "z = 0, i.e. the fixed p = 0.5",
        "Su et al., arXiv 2208.02955 (ZLPR; code bojone/bert4keras)",
    ),
    "mcloss": SchemeInfo(
        "mcloss",
        "._hierarchy:MCLoss",
        "C-HMCNN max constraint loss (BCE on MCM outputs); hierarchies only",
        "Giunchiglia & Lukasiewicz, NeurIPS 2020 (C-HMCNN)",
        needs_hierarchy=True,
    ),
    "node_imbalance": SchemeInfo(
        "node_imbalance",
        "._ensemble:NodeImbalanceLoss",
        "mcloss with node-wise weights N/(C n-bar_j), rescaled to [omega, omega + w_max], on negative targets "
        "(the authors' code; weight_targets: positives for the other reading)",
        "Xu et al., arXiv 2602.08986",
        needs_hierarchy=True,
        params=dict(_NODE_PARAMS),
        check=check_node_params,
    ),
    "node_imbalance_focal": SchemeInfo(
        "node_imbalance_focal",
        "._ensemble:NodeImbalanceFocalLoss",
        "node_imbalance on an ensemble of heads, each term scaled by (f_min + u^k), u the heads' uncertainty",
        "Xu et al., arXiv 2602.08986",
        needs_hierarchy=True,
        needs_ensemble=True,
        check=check_node_params,
        params={
            "heads": Param(
                2,
                ge=1,
                integer=True,
                doc="ensemble size M >= 1 (M MLPs on feature tables, M heads on one backbone for images)",
            ),
            "uncertainty": Param(
                "margin",
                choices=UNCERTAINTIES,
                doc="margin (bBMA), entropy, aleatoric, epistemic or gated_margin (GMU)",
            ),
            "f_min": Param(0.25, 0.0, 1.0, ge=0, doc="floor of the focal factor, >= 0"),
            "k": Param(
                None, 0.5, 3.0, nullable=True, ge=0, doc="exponent on u; null: 2 on feature tables, 1 on images"
            ),
            "reduction": Param(
                "sum",
                choices=REDUCTIONS,
                quiet=True,
                doc="sum over heads, batch and nodes (the authors' script: with Adam's coupled weight "
                "decay this is their effective regularisation) or mean (the same decay is then "
                "M*B*C' times stronger)",
            ),
            **_NODE_PARAMS,
        },
    ),
}


class UnknownSchemeError(ValueError):
    pass


def get_scheme(name: str) -> SchemeInfo:
    try:
        return SCHEMES[name]
    except KeyError:
        close = difflib.get_close_matches(name, SCHEMES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownSchemeError(f"unknown scheme '{name}'{hint}; valid schemes: {', '.join(SCHEMES)}") from None


def build_loss(name: str, stats, **params):
    """Build scheme ``name`` from training-split statistics; unknown params raise with the valid ones."""
    info = get_scheme(name)
    if info.needs_hierarchy and not any(stats.parents):
        raise ValueError(
            f"scheme '{name}' needs a label hierarchy; this table has none -- pick a flat scheme "
            "or add parents to labels.parquet"
        )
    unknown = set(params) - set(info.params)
    if unknown:
        raise ValueError(
            f"scheme '{name}' has no parameter(s) {sorted(unknown)}; it takes {sorted(info.params) or 'none'}"
        )
    if problems := info.problems(params):
        raise ValueError("; ".join(problems))
    full = {k: p.default for k, p in info.params.items()} | params
    return info.loss_class.from_label_stats(stats, **full)
