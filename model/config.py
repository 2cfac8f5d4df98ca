"""TrainConfig: every knob of a training run, frozen, validated, saved with the model.

Defaults measured on the 2-core machine at the full corpus shape (37k books, 42k links, 773k
pairs): batches of 8,192 positives + 16,384 negatives, dense tables, fused Adam at lr 1e-2.
On ``model.synth``'s corpus held-out AUC reaches 0.95 at epoch 5 and peaks at epoch 6 (0.955);
on an easier planted corpus 0.95 at epoch 3, peak 0.963 at epoch 7. Early stopping (patience 2,
min_delta 1e-3, about the AUC's standard error on 34k held-out pairs) ends the run 2 epochs
after the peak. One epoch takes ~1.7 s on 2 idle cores (~1.3M samples/s), ~2.9 s on one core
(~0.75M samples/s). Smaller batches peak lower (2,048: 0.941; 4,096: 0.950); 16,384 needs lr
3e-2 and peaks at 0.952. torch.compile gave no measurable per-epoch gain and a 15-50 s warm-up,
so it is off. On a machine shared with other jobs, ``threads=1`` is far steadier than two
threads fighting for the cores (measured: 2.9 s vs 2-18 s per epoch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from bookvec.errors import ConfigError

OBJECTIVES = ("classification", "regression")
DEVICES = ("auto", "cpu", "cuda")

_INT_RANGES = {
    "embedding_dim": (1, 4096),
    "negative_ratio": (1, 100),
    "batch_size": (1, 10_000_000),
    "max_epochs": (1, 10_000),
    "patience": (1, 10_000),
    "seed": (0, 2**63 - 1),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = 50
    objective: str = "classification"  # "classification": sigmoid(w*cos+b), BCE; "regression"
    negative_ratio: int = 2  # random negatives per positive pair
    batch_size: int = 8192  # positive pairs per batch (a batch holds (1 + ratio) x this)
    learning_rate: float = 1e-2
    max_epochs: int = 20
    patience: int = 2  # epochs without a better validation AUC before stopping
    min_delta: float = 1e-3  # the AUC gain that counts as better (~ its standard error)
    validation_fraction: float = 0.05  # positive pairs held out for the AUC; 0 = no validation
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when available, else CPU
    compile: bool = False  # torch.compile the training step
    threads: int | None = None  # torch.set_num_threads for the run; None = torch's default

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise ConfigError(f"{name}={getattr(self, name)!r} is invalid: must be {rule}")

        for name, (lo, hi) in _INT_RANGES.items():
            value = getattr(self, name)
            if not (_is_int(value) and lo <= value <= hi):
                fail(name, f"an integer in [{lo}, {hi}]")
        if not (_is_num(self.learning_rate) and 0 < self.learning_rate <= 10):
            fail("learning_rate", "a number in (0, 10]")
        if not (_is_num(self.min_delta) and 0 <= self.min_delta < 1):
            fail("min_delta", "a number in [0, 1)")
        if not (_is_num(self.validation_fraction) and 0 <= self.validation_fraction < 0.5):
            fail("validation_fraction", "a number in [0, 0.5)")
        if self.objective not in OBJECTIVES:
            fail("objective", f"one of {', '.join(OBJECTIVES)}")
        if self.device not in DEVICES:
            fail("device", f"one of {', '.join(DEVICES)}")
        if not isinstance(self.compile, bool):
            fail("compile", "true or false")
        if self.threads is not None and not (_is_int(self.threads) and 1 <= self.threads <= 1024):
            fail("threads", "null or an integer in [1, 1024]")

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
