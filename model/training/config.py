"""TrainConfig: every knob of a training run, frozen, validated, saved with the model.

Measured on the 2-core machine (shared, so CPU seconds and side-by-side ratios) at the full
corpus shape (``model.synth``: 37k books, 42k links, 773k pairs, ~21 a book) and on the real
sample (``p15_books.ndjson``: 1.4k books, 1.2k links, 13k pairs, ~9 a book). The defaults and
the corpus-size rules below come from those runs (issue 8 has the tables).

- The tables learn by SGD on the summed loss, the gradient written out by hand
  (``bookvec.model.training.model.pair_gradients``), step 0.1; Dense(1)'s scale and bias by Adam at
  0.05; 2 random negatives per positive (the original's ratio). At full shape SGD reaches
  held-out AUC 0.875 after one epoch where the earlier autograd step (dense tables, fused
  Adam at 1e-2) reached 0.81, at ~0.55 s an epoch instead of ~2.5 s, to the same plateau
  (0.954) and genre agreement (0.754 vs 0.753-0.761); steps 0.05-0.2 measured within 0.01 AUC
  of each other after 2 epochs. On p15 (6 seeds) genre agreement@10 is 0.545 +- 0.004 (the
  Adam trainer: 0.540 +- 0.001); step 0.05: 0.545 +- 0.002. Adam at 0.01 on the scale grows
  it too slowly for large batches (epoch 1 at 0.86 with batch 8,192); 0.05 lets it reach
  the cap within the first epoch. Row-wise Adagrad (0.78 after one epoch) and a lazy
  (touched-rows) Adam (0.74) learned less per epoch, and were slower per step.
- Small corpora need steps, not samples: at the old fixed batch of 8,192 the 13k pairs of p15
  were 2 Adam steps an epoch and the run stopped undertrained (held-out AUC 0.82, genre
  agreement@10 0.458). ``auto_batch_size`` keeps at least 32 steps an epoch, within
  [256, 4096] (p15: 256 -> AUC 0.92; 128-1,024 measured within noise of each other). At full
  shape 4,096 reaches the original's 3-epoch AUC (0.913) in 2 epochs where 8,192 needs 3
  (5.4 s vs 8.8 s of wall time on 2 threads), and with ``lr_decay`` ends higher (below).
  Re-measured with SGD: p15 at 512 gives agreement 0.542 +- 0.006 (256: 0.545); at full
  shape 8,192 ends epoch 1 at 0.862 (4,096: 0.879) and is no faster per epoch (0.42 s of
  steps either way): the per-row work dominates, not the per-step overhead.
- ``lr_decay`` 0.5: the learning rate halves after each epoch that does not improve the
  validation AUC (reduce on plateau). Batch 4,096 at a constant lr plateaus at 0.950; with
  the decay it climbs on to 0.9545 (held-out, epoch 11), the old default's peak (0.955).
- ``max_logit_scale`` 4: the Dense(1) weight (the logit scale of the cosine) is learned but
  capped. Uncapped it keeps growing (to ~6 at the full-shape peak, ~12 on p15); the loss then
  chases each book's hardest links and the model overfits: full shape peaked at epoch 6 and
  declined; on a sparse corpus (5k synthetic books at 9 links a book) the cap lifts held-out
  AUC 0.875 -> 0.907 and genre agreement 0.665 -> 0.725.
- ``negative_power`` 0.5: a negative's link is drawn with probability ~ (its pairs)^0.5, not
  uniformly (the original; 0). Uniform negatives are mostly rare links, so books are never
  told apart from the popular, genre-agnostic pages they all share (real links: "united
  states", "english language") and their vectors drift towards them. On p15 (6 seeds, with
  the cap): genre agreement@10 0.525 (power 0) -> 0.540 (0.5), above binary-link cosine
  (0.538); 0.75-1.0 give ~0.546 but cost the full-shape held-out AUC (uniform negatives at
  evaluation): 0.954 (0) / 0.952 (0.5) / 0.946 (0.6) / 0.936 (0.75) at batch 8,192. 0.5 is
  the largest power that keeps it >= 0.95. On synthetic corpora (planted, genre-informative
  popularity) it neither helps nor hurts genre agreement.
- Early stopping on validation AUC, ``auto_patience``: 5 epochs below 200k pairs (epochs
  cost ~0.1 s there, and the 5% validation slice, ~550 pairs on p15, is noisy: patience 2 /
  3 / 5 gave agreement 0.537 / 0.538 / 0.541), else 2. A larger validation slice (10%)
  measured no better on p15: it takes pairs from training.
- torch.compile (of the autograd step, before the hand-written one) gave no measurable
  per-epoch gain and a 15-50 s warm-up, so it is off; with ``compile`` it now compiles
  ``pair_gradients``: an 11 s warm-up, then 0.73-0.79 s an epoch at full shape where eager
  takes 0.54-0.69 s (same AUCs to 4 decimals).
- Two threads: the step's elementwise work splits over both cores (0.42 s of steps an epoch
  vs 0.67-0.83 s on one); drawing the negatives in a second Python thread made it slower
  (1.2 s an epoch: the two threads' kernels fight for the same two cores). On a machine
  shared with other jobs, ``threads=1`` is steadier.

- Tried for the neighbours (issue 13; p15 3 seeds, dense genre agreement / same-author recall
  @10, default 0.544 / 0.711): ``embedding_dim`` 100 0.550 / 0.716 (full shape: held-out AUC
  0.957 vs 0.955, same-author 0.086 vs 0.056) but twice the tables, steps and store vectors,
  so 50 stays (``--dim``); ``negative_ratio`` 5 0.545 / 0.729 and, fused with the sparse
  side, no better than 2 (0.551 / 0.762 vs 0.551 / 0.757); ``max_logit_scale`` 6 0.542 /
  0.710; ``negative_power`` 0.75 0.556 / 0.701 but full-shape AUC 0.939 and half the dense
  same-author recall; ``learning_rate`` 0.05 0.544 / 0.708. Positives drawn each epoch with
  probability ~ (the link's pairs)^0.25 (popular pages oversampled): 0.552 / 0.665 (6 seeds),
  fused no better; ~ (the book's links)^-0.5: no different over 6 seeds; two models' cosines
  averaged (same split, other inits): 0.551 / 0.719, fused 0.545 / 0.764 (benchmarks/frontier.py
  has the fused frontier); each book's vector blended with the fold-in of its links' raw
  vectors, normalise(unit(b) + normalise(sum(l - mean l))) (6 seeds): 0.558 / 0.700, the
  default hybrid 0.541 / 0.784 (0.532 / 0.786 without), but the synthetic corpus's hybrid
  same-author recall 0.332 against 0.343 (3 seeds). None kept.
- Tried for p15's genre probe (3 seeds; default 0.811, binary links 0.857): dim 100 0.829,
  dim 200 0.833; ``lr_decay`` 1 0.825; ``negative_power`` 0 / 1 0.809 / 0.817;
  ``max_logit_scale`` 2 / 8 0.810 / 0.805; ``negative_ratio`` 8 0.817; word2vec-style
  subsampling of frequent links' positives each epoch (t 1e-2 / 3e-3 / 1e-3) 0.820 / 0.811 /
  0.802, over 6 seeds no different from none; the fold-in of the book's links as its vector
  0.824. None reaches binary links.

``batch_size`` and ``patience`` may be None (the default): ``resolved(n_pairs)`` fills them in
by the rules above; the trainer records the resolved config with the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from bookvec.errors import ConfigError

OBJECTIVES = ("classification", "regression")
WARM_STOP_ON = ("all", "new")
DEVICES = ("auto", "cpu", "cuda")

_INT_RANGES = {
    "embedding_dim": (1, 4096),
    "negative_ratio": (1, 100),
    "max_epochs": (1, 10_000),
    "warm_max_epochs": (1, 10_000),
    "seed": (0, 2**63 - 1),
}
_OPTIONAL_INT_RANGES = {  # None = chosen by corpus size (see ``resolved``)
    "batch_size": (1, 10_000_000),
    "patience": (1, 10_000),
    "threads": (1, 1024),
}

# The corpus-size rules (see the module docstring for the measurements behind them).
MIN_STEPS_PER_EPOCH = 32
MIN_AUTO_BATCH, MAX_AUTO_BATCH = 256, 4096
SMALL_CORPUS_PAIRS = 200_000
SMALL_CORPUS_PATIENCE, PATIENCE = 5, 2


def auto_batch_size(n_pairs: int) -> int:
    """Positive pairs per batch for a corpus of ``n_pairs`` training pairs: the largest power
    of two that leaves at least ``MIN_STEPS_PER_EPOCH`` steps an epoch, within [256, 4096].
    Full shape (733k training pairs): 4,096; p15 (12.6k): 256."""
    target = max(1, n_pairs // MIN_STEPS_PER_EPOCH)
    return max(MIN_AUTO_BATCH, min(MAX_AUTO_BATCH, 1 << (target.bit_length() - 1)))


def auto_patience(n_pairs: int) -> int:
    """Epochs without a better validation AUC before stopping: 5 below 200k pairs, else 2."""
    return SMALL_CORPUS_PATIENCE if n_pairs < SMALL_CORPUS_PAIRS else PATIENCE


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = 50
    objective: str = "classification"  # "classification": sigmoid(w*cos+b), BCE; "regression"
    negative_ratio: int = 2  # random negatives per positive pair
    negative_power: float = 0.5  # a negative's link ~ (its pairs)^power; 0 = uniform
    batch_size: int | None = None  # positives per batch (x (1 + ratio) samples); None: auto
    learning_rate: float = 0.1  # SGD step of the tables (summed loss)
    scale_learning_rate: float = 0.05  # Adam's lr for Dense(1): logit scale and bias
    lr_decay: float = 0.5  # lr x this after an epoch that does not improve; 1 = constant
    max_logit_scale: float | None = 4.0  # cap on the learned Dense(1) weight; None = no cap
    max_epochs: int = 20
    patience: int | None = None  # epochs without a better validation AUC; None: auto
    min_delta: float = 1e-3  # the AUC gain that counts as better (~ its standard error)
    validation_fraction: float = 0.05  # positive pairs held out for the AUC; 0 = no validation
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when available, else CPU
    compile: bool = False  # torch.compile the training step
    threads: int | None = None  # torch.set_num_threads for the run; None = torch's default
    # A warm start's schedule (``bookvec.model.training.warm``; ignored by a cold run). The
    # rows it trains ("changed"): new books, books whose links changed, new pages.
    warm_lr_scale: float = 1.0  # the tables' step and Dense(1)'s Adam lr x this
    warm_max_epochs: int = 8
    warm_changed_lr: float = 0.2  # the step of a changed book the parent has x this
    warm_rest_lr: float = 0.0  # the step of the other rows x this (0: frozen)
    warm_rest_sample: float = 1.0  # share of the other positives trained each epoch
    warm_negative_weight: bool = True  # negatives x (pairs / the epoch's positives)
    warm_anchor: float = 0.5  # after each epoch a parent row's drift from it x (1 - this)
    warm_stop_on: str = "new"  # early stopping's AUC: "all" held-out pairs, or "new" ones

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise ConfigError(f"{name}={getattr(self, name)!r} is invalid: must be {rule}")

        for name, (lo, hi) in _INT_RANGES.items():
            value = getattr(self, name)
            if not (_is_int(value) and lo <= value <= hi):
                fail(name, f"an integer in [{lo}, {hi}]")
        for name, (lo, hi) in _OPTIONAL_INT_RANGES.items():
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and lo <= value <= hi):
                fail(name, f"null (automatic) or an integer in [{lo}, {hi}]")
        if not (_is_num(self.negative_power) and 0 <= self.negative_power <= 1):
            fail("negative_power", "a number in [0, 1]")
        if self.max_logit_scale is not None and not (
            _is_num(self.max_logit_scale) and 0 < self.max_logit_scale <= 1000
        ):
            fail("max_logit_scale", "null (no cap) or a number in (0, 1000]")
        for name in ("learning_rate", "scale_learning_rate"):
            if not (_is_num(getattr(self, name)) and 0 < getattr(self, name) <= 10):
                fail(name, "a number in (0, 10]")
        if not (_is_num(self.warm_lr_scale) and 0 < self.warm_lr_scale <= 10):
            fail("warm_lr_scale", "a number in (0, 10]")
        for name in ("warm_changed_lr", "warm_rest_lr", "warm_rest_sample"):
            if not (_is_num(getattr(self, name)) and 0 <= getattr(self, name) <= 1):
                fail(name, "a number in [0, 1]")
        if not (_is_num(self.warm_anchor) and 0 <= self.warm_anchor < 1):
            fail("warm_anchor", "a number in [0, 1)")
        if self.warm_stop_on not in WARM_STOP_ON:
            fail("warm_stop_on", f"one of {', '.join(WARM_STOP_ON)}")
        if not (_is_num(self.lr_decay) and 0 < self.lr_decay <= 1):
            fail("lr_decay", "a number in (0, 1]")
        if not (_is_num(self.min_delta) and 0 <= self.min_delta < 1):
            fail("min_delta", "a number in [0, 1)")
        if not (_is_num(self.validation_fraction) and 0 <= self.validation_fraction < 0.5):
            fail("validation_fraction", "a number in [0, 0.5)")
        if self.objective not in OBJECTIVES:
            fail("objective", f"one of {', '.join(OBJECTIVES)}")
        if self.device not in DEVICES:
            fail("device", f"one of {', '.join(DEVICES)}")
        if not isinstance(self.warm_negative_weight, bool):
            fail("warm_negative_weight", "true or false")
        if not isinstance(self.compile, bool):
            fail("compile", "true or false")

    def resolved(self, n_pairs: int) -> TrainConfig:
        """This config with ``batch_size`` and ``patience`` chosen for ``n_pairs`` training
        pairs where they are None (``auto_batch_size``, ``auto_patience``)."""
        changes: dict[str, Any] = {}
        if self.batch_size is None:
            changes["batch_size"] = auto_batch_size(n_pairs)
        if self.patience is None:
            changes["patience"] = auto_patience(n_pairs)
        return replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the manifest's ``config``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys are an error, missing keys take the default."""
        if not isinstance(data, dict):
            raise ConfigError(f"training config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown training option(s): {', '.join(unknown)}",
                hint=f"valid options: {', '.join(sorted(known))}",
            )
        return cls(**data)
