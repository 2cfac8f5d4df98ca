"""The book-link embedding model and its training step, top to bottom.

The model (Koehrsen 2018): a book table and a link table; the score of a (book, link) pair is
the cosine of their L2-normalised vectors, fed to Dense(1) + sigmoid with binary cross-entropy
(classification), or used as is against labels +1/-1 with mean squared error (regression).

The step is written out by hand, word2vec-style (``pair_gradients``, ``sgd_step``): the
gradient of each pair's loss with respect to its two rows (cosine through the L2
normalisation) is computed in closed form and added to exactly those rows (``index_add_``),
scaled by the learning rate: plain SGD on the summed loss. Nothing touches the rows a batch does
not use: no dense gradient tables to zero, no optimizer state per row. Only the two scalars of
Dense(1) (logit scale and bias) use Adam (``ScaleAdam``). ``test_train.py`` checks the
hand-written gradient against autograd; ``benchmarks/train.py`` measures it against the dense
autograd step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bookvec.model.training.config import TrainConfig

# ---------------------------------------------------------------------------------------------
# The model


class BookLinkModel(nn.Module):
    """Two embedding tables; ``forward`` gives the logit (classification) or cosine (regression)."""

    def __init__(self, n_books: int, n_links: int, dim: int, objective: str) -> None:
        super().__init__()
        self.objective = objective
        self.book = nn.Embedding(n_books, dim)
        self.link = nn.Embedding(n_links, dim)
        self.dense = nn.Linear(1, 1)  # used by classification only
        # Keras' Embedding default (uniform +-0.05); with Adam the step is then large relative
        # to the vectors, which is what makes lr 1e-2 learn in a few epochs.
        nn.init.uniform_(self.book.weight, -0.05, 0.05)
        nn.init.uniform_(self.link.weight, -0.05, 0.05)
        # logit = cos at first; a positive weight makes a book point towards its links
        nn.init.ones_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def cosine(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        b = F.normalize(self.book(book_idx), dim=-1)
        v = F.normalize(self.link(link_idx), dim=-1)
        return (b * v).sum(-1)

    def forward(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(book_idx, link_idx)
        if self.objective == "classification":
            return cos * self.dense.weight[0, 0] + self.dense.bias[0]
        return cos

    def probability(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        """What ``score.onnx`` returns: sigmoid(logit), or (cos + 1) / 2 for regression."""
        out = self.forward(book_idx, link_idx)
        return torch.sigmoid(out) if self.objective == "classification" else (out + 1) / 2

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.objective == "classification":
            return F.binary_cross_entropy_with_logits(out, labels)
        return F.mse_loss(out, labels)

    @classmethod
    def from_trained(cls, model: TrainedModel) -> BookLinkModel:
        """Rebuild the torch module from a ``TrainedModel`` (for export and parity checks)."""
        n_books, dim = model.book_embeddings.shape
        m = cls(n_books, model.link_embeddings.shape[0], dim, model.config.objective)
        m.load_state_dict(_weights_to_torch(model.weights()))
        return m


# ---------------------------------------------------------------------------------------------
# What training returns


@dataclass
class TrainedModel:
    book_embeddings: np.ndarray  # float32 raw (n_books, d)
    link_embeddings: np.ndarray  # float32 raw (n_links, d)
    dense_weight: float
    dense_bias: float
    config: TrainConfig
    history: list[dict] = field(default_factory=list)  # per epoch, see ``train``
    metrics: dict = field(default_factory=dict)  # best_epoch, val_auc, train_seconds, device...
    optimizer_state: dict | None = None  # Adam's state at the best epoch (numpy), for resuming
    held_out_pairs: np.ndarray | None = None  # int32 (H, 2): the validation positives

    def weights(self) -> dict[str, np.ndarray]:
        return {
            "book_embeddings": self.book_embeddings,
            "link_embeddings": self.link_embeddings,
            "dense_weight": np.array([[self.dense_weight]], dtype=np.float32),
            "dense_bias": np.array([self.dense_bias], dtype=np.float32),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything ``train(..., resume_from=...)`` needs, as numpy arrays and plain values."""
        return {
            "weights": self.weights(),
            "optimizer": self.optimizer_state,
            "epoch": int(self.metrics.get("best_epoch", 0)),
            "config": self.config.to_dict(),
        }


def _weights_to_torch(w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        "book.weight": torch.as_tensor(np.asarray(w["book_embeddings"], dtype=np.float32)),
        "link.weight": torch.as_tensor(np.asarray(w["link_embeddings"], dtype=np.float32)),
        "dense.weight": torch.as_tensor(np.asarray(w["dense_weight"], dtype=np.float32)),
        "dense.bias": torch.as_tensor(np.asarray(w["dense_bias"], dtype=np.float32)),
    }


def _to_numpy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


# ---------------------------------------------------------------------------------------------
# The step


_EPS = 1e-12  # as F.normalize


class ScaleAdam:
    """Adam (torch's defaults: betas 0.9 / 0.999, eps 1e-8) for Dense(1)'s weight (the logit
    scale) and bias, held as one 2-vector. Written out because ``torch.optim.Adam`` imports
    torch._dynamo on its first step (~1 s in a fresh process) and costs ~0.5 ms a step, as
    much as a tenth of the whole step here."""

    BETAS, EPS = (0.9, 0.999), 1e-8

    def __init__(self, model: BookLinkModel, lr: float) -> None:
        self.weight, self.bias = model.dense.weight, model.dense.bias
        self.lr = lr
        self.steps = 0
        self.exp_avg = torch.zeros(2, device=self.weight.device)
        self.exp_avg_sq = torch.zeros(2, device=self.weight.device)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        """One update from ``grad`` = (dL/d scale, dL/d bias)."""
        beta1, beta2 = self.BETAS
        self.steps += 1
        self.exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (self.exp_avg_sq / (1 - beta2**self.steps)).sqrt_().add_(self.EPS)
        update = self.exp_avg / denom * (self.lr / (1 - beta1**self.steps))
        self.weight.view(-1).sub_(update[:1])
        self.bias.sub_(update[1:])

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "lr": self.lr,
            "exp_avg": self.exp_avg.clone(),
            "exp_avg_sq": self.exp_avg_sq.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Raises ValueError for a state of another shape (e.g. an older bundle's Adam)."""
        try:
            avg = torch.as_tensor(state["exp_avg"], dtype=torch.float32).reshape(2)
            avg_sq = torch.as_tensor(state["exp_avg_sq"], dtype=torch.float32).reshape(2)
            steps, lr = int(state["steps"]), float(state["lr"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise ValueError(f"not a ScaleAdam state: {e}") from e
        self.exp_avg.copy_(avg)
        self.exp_avg_sq.copy_(avg_sq)
        self.steps, self.lr = steps, lr


def pair_gradients(
    book_rows: torch.Tensor,
    link_rows: torch.Tensor,
    n_pos: int,
    scale: torch.Tensor,
    bias: torch.Tensor,
    classification: bool,
    row_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The summed loss of a batch and its gradients, in closed form.

    ``book_rows``/``link_rows`` (n, d) are the raw vectors of the batch's pairs, the first
    ``n_pos`` positive. The score is cos = <b/|b|, l/|l|>; classification: logit = scale * cos
    + bias, loss = BCE-with-logits; regression: loss = (cos - y)^2 with y = +1 / -1. Returns
    (loss summed over the pairs, dL/d book_rows, dL/d link_rows, dL/d cos, mean dL/d scale,
    mean dL/d bias); the last two are zero for regression. With dc = dL/dcos:
    dL/db = dc * (l/(|b||l|) - cos * b/|b|^2), and the same with b and l swapped. The two row
    gradients come multiplied by ``row_scale`` (``sgd_step`` passes -lr: the step itself, at
    no extra pass over the (n, d) arrays).
    """
    inv_b = torch.linalg.vector_norm(book_rows, dim=1).clamp_(min=_EPS).reciprocal_()
    inv_l = torch.linalg.vector_norm(link_rows, dim=1).clamp_(min=_EPS).reciprocal_()
    inv_bl = inv_b * inv_l
    cos = torch.linalg.vecdot(book_rows, link_rows).mul_(inv_bl)
    if classification:
        logit = cos * scale + bias
        loss = F.softplus(logit).sum() - logit[:n_pos].sum()
        d_logit = torch.sigmoid(logit)
        d_logit[:n_pos] -= 1
        d_scale, d_bias = (d_logit * cos).mean(), d_logit.mean()
        d_cos = d_logit.mul_(scale)
    else:
        target = torch.full_like(cos, -1.0)
        target[:n_pos] = 1.0
        diff = cos - target
        loss = diff.square().sum()
        d_scale = d_bias = torch.zeros((), dtype=cos.dtype, device=cos.device)
        d_cos = diff.mul_(2)
    d_rows = d_cos * row_scale
    along = (d_rows * inv_bl)[:, None]
    d_rows_cos = d_rows.mul_(cos)
    d_book = (link_rows * along).addcmul_(
        book_rows, (d_rows_cos * inv_b * inv_b)[:, None], value=-1
    )
    d_link = (book_rows * along).addcmul_(
        link_rows, (d_rows_cos * inv_l * inv_l)[:, None], value=-1
    )
    return loss, d_book, d_link, d_cos, d_scale, d_bias


@torch.no_grad()
def sgd_step(
    model: BookLinkModel,
    optimizer: ScaleAdam,
    books: torch.Tensor,
    links: torch.Tensor,
    n_pos: int,
    lr: float,
    max_logit_scale: float | None,
    gradients: Callable = pair_gradients,
    row_lr: tuple[torch.Tensor, torch.Tensor, float] | None = None,
) -> torch.Tensor:
    """One step on a batch (the first ``n_pos`` pairs positive): SGD with step ``lr`` on the
    rows of the summed loss's gradient (a row used twice gets both), Adam on Dense(1)'s
    scale and bias, the scale then capped. ``row_lr``: per-row multipliers of the step
    (books, links; a warm start's: 0 freezes a row) and one more for the negatives' rows.
    Returns the summed loss (a tensor: no sync)."""
    book_table, link_table = model.book.weight, model.link.weight
    classification = model.objective == "classification"
    loss, d_book, d_link, _, d_scale, d_bias = gradients(
        F.embedding(books, book_table),
        F.embedding(links, link_table),
        n_pos,
        model.dense.weight[0, 0],
        model.dense.bias[0],
        classification,
        -lr,  # the rows' gradients come scaled by -lr (index_add_'s alpha takes a slow path)
    )
    if row_lr is not None:
        book_lr, link_lr = row_lr[0][books], row_lr[1][links]
        if row_lr[2] != 1:  # the negatives' weight
            book_lr[n_pos:] *= row_lr[2]
            link_lr[n_pos:] *= row_lr[2]
        d_book.mul_(book_lr[:, None])
        d_link.mul_(link_lr[:, None])
    book_table.index_add_(0, books, d_book)
    link_table.index_add_(0, links, d_link)
    if classification:
        optimizer.step(torch.stack([d_scale, d_bias]))
        if max_logit_scale is not None:  # the learned logit scale, capped (see TrainConfig)
            model.dense.weight.clamp_(max=max_logit_scale)
    return loss
