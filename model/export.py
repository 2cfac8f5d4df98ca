"""ONNX export: the two graphs the runtime serves, with the tables baked in.

- ``score.onnx``: ``book_idx`` int64 [N], ``link_idx`` int64 [N] -> ``probability`` float32 [N];
  classification: sigmoid(w * cos + b); regression: (cos + 1) / 2.
- ``fold_in.onnx``: ``link_idx`` int64 [K, L], ``mask`` float32 [K, L] -> ``vector`` float32
  [K, d]: the L2-normalised sum of the normalised link vectors under the mask (a zero row when
  the mask is all 0) - a new book's vector from its links, without retraining.

The tables are stored pre-normalised, so a score is two Gathers and a dot product (the fastest
form measured). Built with the dynamo exporter: the legacy one gets fold-in wrong silently.
Tables are indexed with ``index_select`` (Gather); ``table[idx]`` becomes the slower GatherND.
Each graph is one self-contained file; its metadata records the table sizes, so the runtime can
validate indices without anything else.
"""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bookvec.errors import ConfigError
from bookvec.model.train import TrainedModel

EPS = 1e-12  # as F.normalize and Keras' l2_normalize
MAX_TABLE_BYTES = 1_800_000_000  # score.onnx holds both tables; a protobuf must stay < 2 GB


def normalize_rows(table: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float32 (zero rows stay zero), as the graphs store them."""
    t = torch.as_tensor(np.asarray(table, dtype=np.float32))
    return torch.nn.functional.normalize(t, dim=-1, eps=EPS).numpy()


class ScoreGraph(nn.Module):
    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.book = nn.Buffer(torch.from_numpy(normalize_rows(model.book_embeddings)))
        self.link = nn.Buffer(torch.from_numpy(normalize_rows(model.link_embeddings)))
        self.classification = model.config.objective == "classification"
        self.w = float(model.dense_weight)
        self.b = float(model.dense_bias)

    def forward(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        cos = (self.book.index_select(0, book_idx) * self.link.index_select(0, link_idx)).sum(-1)
        if self.classification:
            return torch.sigmoid(cos * self.w + self.b)
        return (cos + 1.0) * 0.5


class FoldInGraph(nn.Module):
    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.link = nn.Buffer(torch.from_numpy(normalize_rows(model.link_embeddings)))

    def forward(self, link_idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k, n = link_idx.shape
        vectors = self.link.index_select(0, link_idx.reshape(-1)).reshape(k, n, -1)
        total = (vectors * mask.unsqueeze(-1)).sum(1)
        norm = total.norm(dim=-1, keepdim=True).clamp_min(EPS)
        return total / norm


def _export(
    module: nn.Module,
    args: tuple,
    names: tuple[list[str], list[str]],
    dynamic: dict,
    path: Path,
    metadata: dict[str, str],
) -> None:
    # The exporter chatters on stdout/stderr, logs and warns; none of it is for the user.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            redirect_stdout(io.StringIO()),
            redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module.eval(),
                args,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=dynamic,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
    finally:
        logger.setLevel(level)
    proto = program.model_proto  # initialisers included: one self-contained file
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "bookvec"
    path.write_bytes(proto.SerializeToString())


def export_onnx(model: TrainedModel, out_dir: str | Path) -> dict[str, str]:
    """Write ``score.onnx`` and ``fold_in.onnx`` into ``out_dir``; returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_books, dim = model.book_embeddings.shape
    n_links = model.link_embeddings.shape[0]
    if (n_books + n_links) * dim * 4 > MAX_TABLE_BYTES:
        raise ConfigError(
            f"tables of {n_books:,} books and {n_links:,} links x {dim} are too large for a "
            "single-file ONNX graph (protobuf's 2 GB limit)",
            hint="lower embedding_dim",
        )
    meta = {
        "bookvec.n_books": str(n_books),
        "bookvec.n_links": str(n_links),
        "bookvec.dim": str(dim),
        "bookvec.objective": model.config.objective,
    }
    n, k, ell = (torch.export.Dim(name, min=1) for name in ("N", "K", "L"))
    two = torch.tensor([0, min(1, n_books - 1)]), torch.tensor([0, min(1, n_links - 1)])
    _export(
        ScoreGraph(model),
        two,
        (["book_idx", "link_idx"], ["probability"]),
        {"book_idx": {0: n}, "link_idx": {0: n}},
        out / "score.onnx",
        {**meta, "bookvec.graph": "score"},
    )
    idx = torch.zeros((2, 3), dtype=torch.int64)
    mask = torch.ones((2, 3), dtype=torch.float32)
    _export(
        FoldInGraph(model),
        (idx, mask),
        (["link_idx", "mask"], ["vector"]),
        {"link_idx": {0: k, 1: ell}, "mask": {0: k, 1: ell}},
        out / "fold_in.onnx",
        {**meta, "bookvec.graph": "fold_in"},
    )
    return {"score.onnx": str(out / "score.onnx"), "fold_in.onnx": str(out / "fold_in.onnx")}
