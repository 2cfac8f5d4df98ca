"""ONNX export: the two graphs the runtime serves, with the tables baked in.

- ``score.onnx``: ``book_idx`` int64 [N], ``link_idx`` int64 [N] -> ``probability`` float32 [N];
  classification: sigmoid(w * cos + b); regression: (cos + 1) / 2.
- ``fold_in.onnx``: ``link_idx`` int64 [K, L], ``mask`` float32 [K, L] -> ``vector`` float32
  [K, d]: the L2-normalised sum of the *centred* normalised link vectors under the mask,
  normalise(sum_i (l_i - c)) with c = FOLD_IN_CENTRE * mean(all normalised link vectors)
  (a zero row when the mask is all 0) - a new book's vector from its links, no retraining.

Why centred (measured on the trained models of the full-shape synthetic corpus and of p15:
fold in each trained book from its own training links and rank its trained vector among all
books): training pushes every book away from the links its random negatives hit, i.e. away
from the mean link direction, which the plain sum of links keeps. Subtracting lambda * k *
mean (k = the links summed) for lambda = 0 / 0.5 / 1 / 1.25 gives, at full shape, median
rank 31 / 3 / 1 / 2 of 37k, top-1 20% / 40% / 53% / 47%, cosine to the trained vector 0.89 /
0.94 / 0.95 / 0.95; on p15 top-1 76% / 83% / 88% / 87%. lambda = 1 (the mean link vector
removed from each link) is best on both. The folded vector's 10 nearest books share a genre
a little less often at full shape (agreement 0.772 -> 0.759, the trained vectors' own level);
on p15 a little more (0.549 -> 0.552). The issue-4 model (uniform negatives, no cap), same
protocol: plain sum median 36, top-1 19%; lambda 0.5: 9, 30%; lambda 1: 9, 28%. Re-measured
on the hand-written SGD trainer's models (5,000 books sampled at full shape): median rank 29 /
3 / 1 / 2, top-1 21% / 41% / 54% / 46%; p15 top-1 86% / 88% / 89% / 89%: lambda = 1 still best.

The tables are stored pre-normalised, so a score is two Gathers and a dot product (the fastest
form measured). Built with the dynamo exporter: the legacy one gets fold-in wrong silently.
Tables are indexed with ``index_select`` (Gather); ``table[idx]`` becomes the slower GatherND.
Each graph is one self-contained file; its metadata records the table sizes, so the runtime can
validate indices without anything else.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bookvec.errors import ConfigError
from bookvec.model.bundle import FOLD_IN_GRAPH, SCORE_GRAPH
from bookvec.model.linalg import normalise
from bookvec.model.training.model import TrainedModel

EPS = 1e-12  # as F.normalize and Keras' l2_normalize
FOLD_IN_CENTRE = 1.0  # lambda: the share of the mean link vector removed from each link
MAX_TABLE_BYTES = 1_800_000_000  # score.onnx holds both tables; a protobuf must stay < 2 GB


class ScoreGraph(nn.Module):
    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.book = nn.Buffer(torch.from_numpy(normalise(model.book_embeddings)))
        self.link = nn.Buffer(torch.from_numpy(normalise(model.link_embeddings)))
        self.classification = model.config.objective == "classification"
        self.w = float(model.dense_weight)
        self.b = float(model.dense_bias)

    def forward(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        cos = (self.book.index_select(0, book_idx) * self.link.index_select(0, link_idx)).sum(-1)
        if self.classification:
            return torch.sigmoid(cos * self.w + self.b)
        return (cos + 1.0) * 0.5


def fold_in_centre(link_embeddings: np.ndarray, centre: float = FOLD_IN_CENTRE) -> np.ndarray:
    """The vector removed from each normalised link before the sum: ``centre`` x their mean."""
    unit = normalise(link_embeddings)
    return (centre * unit.astype(np.float64).mean(0)).astype(np.float32)


def fold_in_vectors(
    link_embeddings: np.ndarray, rows: list[list[int]], centre: float = FOLD_IN_CENTRE
) -> np.ndarray:
    """The reference fold-in (numpy): normalise(sum_i (unit(l_i) - c)) per row of link indices;
    a zero row for an empty one. ``fold_in.onnx`` computes the same."""
    unit = normalise(link_embeddings)
    c = fold_in_centre(link_embeddings, centre)
    out = np.zeros((len(rows), unit.shape[1]), dtype=np.float32)
    for k, row in enumerate(rows):
        if len(row):
            total = unit[np.asarray(row, dtype=np.int64)].sum(0) - len(row) * c
            out[k] = normalise(total)
    return out


class FoldInGraph(nn.Module):
    def __init__(self, model: TrainedModel, centre: float = FOLD_IN_CENTRE) -> None:
        super().__init__()
        self.link = nn.Buffer(torch.from_numpy(normalise(model.link_embeddings)))
        self.centre = nn.Buffer(torch.from_numpy(fold_in_centre(model.link_embeddings, centre)))

    def forward(self, link_idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k, n = link_idx.shape
        vectors = self.link.index_select(0, link_idx.reshape(-1)).reshape(k, n, -1)
        total = (vectors * mask.unsqueeze(-1)).sum(1)
        total = total - mask.sum(1, keepdim=True) * self.centre  # sum of (l_i - c)
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
    _write_model(program.model, path, metadata)


SPLICE_BYTES = 1 << 20  # initialisers this large are written from their own buffers


def _write_model(model: Any, path: Path, metadata: dict[str, str]) -> None:
    """``model`` (an ``onnx_ir`` model) as one self-contained ONNX file, its large initialisers
    (the tables) written straight from their buffers.

    ``model_proto`` and its serialised bytes were two more copies of the tables, and one more
    of a table while it was converted: at 100x the export took 5.8 GB beside the 1.5 GB
    tables. A protobuf parser merges a message field that appears more than once (and appends
    its repeated fields), so the model is written without its initialisers, then each one as
    one more ``graph`` that holds only it, in their order: the same model for every reader."""
    import onnx_ir as ir

    large = {}
    for value in model.graph.initializers.values():
        if value.const_value is not None and value.const_value.nbytes >= SPLICE_BYTES:
            large[value.name] = value.const_value
            value.const_value = _NoData(value.const_value)  # its proto: everything but the data
    proto = ir.serde.serialize_model(model)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "bookvec"
    initializers = []
    for tensor in proto.graph.initializer:
        if tensor.name in large:
            tensor.ClearField("raw_data")
        initializers.append((tensor.name, tensor.SerializeToString()))
    del proto.graph.initializer[:]
    with open(path, "wb") as out:
        out.write(proto.SerializeToString())
        for name, head in initializers:
            data = _raw_data(large[name]) if name in large else memoryview(b"")
            raw = _key(9, data.nbytes) if name in large else b""
            in_tensor = len(head) + len(raw) + data.nbytes
            in_graph = _key(5, in_tensor)  # GraphProto.initializer
            out.write(_key(7, len(in_graph) + in_tensor) + in_graph + head + raw)  # .graph
            out.write(data)  # TensorProto.raw_data, from the array's own memory


class _NoData:
    """A tensor whose proto gets its name, type and dims but no data."""

    def __init__(self, tensor: Any) -> None:
        self._tensor = tensor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tensor, name)

    def tobytes(self) -> bytes:
        return b""


def _raw_data(tensor: Any) -> memoryview:
    array = np.ascontiguousarray(tensor.numpy())
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder == "big"):
        raise ConfigError("ONNX raw data is little-endian; this machine is not")
    return memoryview(array).cast("B")


def _key(field: int, length: int) -> bytes:
    """A length-delimited field's key and length, as varints."""
    out = bytearray()
    for number in (field << 3 | 2, length):
        while number > 0x7F:
            out.append(number & 0x7F | 0x80)
            number >>= 7
        out.append(number)
    return bytes(out)


def export_onnx(
    model: TrainedModel, out_dir: str | Path, *, fold_in_centre: float = FOLD_IN_CENTRE
) -> dict[str, str]:
    """Write ``score.onnx`` and ``fold_in.onnx`` into ``out_dir``; returns {name: path}.

    ``fold_in_centre``: lambda of the fold-in (0: the plain sum of the link vectors)."""
    if not (0 <= fold_in_centre <= 10):
        raise ConfigError(f"fold_in_centre={fold_in_centre!r} must be in [0, 10]")
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
        out / SCORE_GRAPH,
        {**meta, "bookvec.graph": "score"},
    )
    idx = torch.zeros((2, 3), dtype=torch.int64)
    mask = torch.ones((2, 3), dtype=torch.float32)
    _export(
        FoldInGraph(model, fold_in_centre),
        (idx, mask),
        (["link_idx", "mask"], ["vector"]),
        {"link_idx": {0: k, 1: ell}, "mask": {0: k, 1: ell}},
        out / FOLD_IN_GRAPH,
        {**meta, "bookvec.graph": "fold_in", "bookvec.fold_in_centre": str(fold_in_centre)},
    )
    return {SCORE_GRAPH: str(out / SCORE_GRAPH), FOLD_IN_GRAPH: str(out / FOLD_IN_GRAPH)}
