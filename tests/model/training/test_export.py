"""ONNX export: ONNX Runtime must give what the PyTorch model gives, and pinned golden numbers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bookvec.model.training import export as E
from bookvec.model.training import model as M
from bookvec.model.training import train as T
from bookvec.model.training.config import TrainConfig
from bookvec.model.training.export import export_onnx, fold_in_vectors

N_BOOKS, N_LINKS = 60, 45
TOL = 1e-5


def tiny_pairs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    books = rng.integers(0, N_BOOKS, 900)
    links = (books * 3 + rng.integers(0, 6, 900)) % N_LINKS  # some structure to learn
    return np.stack([books, links], 1)


def tiny_config(objective: str) -> TrainConfig:
    return TrainConfig(
        embedding_dim=8,
        objective=objective,
        batch_size=64,
        max_epochs=3,
        patience=100,
        seed=0,
        threads=1,
    )


@pytest.fixture(scope="module", params=["classification", "regression", "classification-spliced"])
def exported(request, tmp_path_factory):
    """The two objectives; and the tables written from their buffers after the rest of the
    model (as the large ones are), not inside its proto."""
    objective = request.param.split("-")[0]
    model = T.train(tiny_pairs(), N_BOOKS, N_LINKS, tiny_config(objective), progress=False)
    out = tmp_path_factory.mktemp(request.param)
    with pytest.MonkeyPatch.context() as patch:
        if request.param.endswith("spliced"):
            patch.setattr(E, "SPLICE_BYTES", 0)
        paths = export_onnx(model, out)
    return model, out, paths


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_one_self_contained_file_per_graph(exported):
    _, out, paths = exported
    assert sorted(p.name for p in out.iterdir()) == ["fold_in.onnx", "score.onnx"]
    assert set(paths) == {"score.onnx", "fold_in.onnx"}
    sess = session(paths["score.onnx"])
    assert [i.name for i in sess.get_inputs()] == ["book_idx", "link_idx"]
    assert [o.name for o in sess.get_outputs()] == ["probability"]
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["bookvec.n_books"] == str(N_BOOKS) and meta["bookvec.n_links"] == str(N_LINKS)
    fold = session(paths["fold_in.onnx"])
    assert [i.name for i in fold.get_inputs()] == ["link_idx", "mask"]
    assert [o.name for o in fold.get_outputs()] == ["vector"]


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_score_matches_torch(exported, n):
    model, _, paths = exported
    rng = np.random.default_rng(n)
    books = rng.integers(0, N_BOOKS, n)
    links = rng.integers(0, N_LINKS, n)
    (got,) = session(paths["score.onnx"]).run(None, {"book_idx": books, "link_idx": links})
    with torch.no_grad():
        want = M.BookLinkModel.from_trained(model).probability(
            torch.from_numpy(books), torch.from_numpy(links)
        )
    assert got.dtype == np.float32 and got.shape == (n,)
    np.testing.assert_allclose(got, want.numpy(), atol=TOL, rtol=0)


def reference_fold_in(model: M.TrainedModel, rows: list[list[int]]) -> np.ndarray:
    """normalise(sum_i (unit(l_i) - mean of all unit link vectors)), written out in torch."""
    unit = torch.nn.functional.normalize(torch.from_numpy(model.link_embeddings), dim=-1)
    centre = unit.double().mean(0).float()
    out = []
    for row in rows:
        idx = torch.tensor(row, dtype=torch.long)
        total = (unit[idx] - centre).sum(0) if row else unit[0] * 0
        out.append(total / total.norm().clamp_min(1e-12))
    return torch.stack(out).numpy()


def test_fold_in_matches_torch_with_padding_and_an_empty_row(exported):
    model, _, paths = exported
    rows = [[0, 5, 9], [3], [], [44, 44, 1, 2, 7, 30, 12], [8, 8]]  # lengths differ, one empty
    width = max(len(r) for r in rows)
    idx = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.float32)
    for k, row in enumerate(rows):
        idx[k, : len(row)] = row
        mask[k, : len(row)] = 1
    idx[2, :] = 17  # padding under a zero mask must not count, whatever index it holds
    (got,) = session(paths["fold_in.onnx"]).run(None, {"link_idx": idx, "mask": mask})
    assert got.shape == (len(rows), 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_fold_in(model, rows), atol=TOL, rtol=0)
    np.testing.assert_allclose(got, fold_in_vectors(model.link_embeddings, rows), atol=TOL)
    assert not got[2].any()  # all-masked row -> zero vector
    np.testing.assert_allclose(np.linalg.norm(got[[0, 1, 3, 4]], axis=1), 1, atol=TOL)


def test_fold_in_of_a_book_s_links_points_near_the_book(exported):
    model, _, paths = exported
    pairs = tiny_pairs()
    rows = [sorted(set(pairs[pairs[:, 0] == b, 1].tolist())) for b in range(N_BOOKS)]
    width = max(len(r) for r in rows)
    idx = np.zeros((N_BOOKS, width), dtype=np.int64)
    mask = np.zeros((N_BOOKS, width), dtype=np.float32)
    for k, row in enumerate(rows):
        idx[k, : len(row)], mask[k, : len(row)] = row, 1
    (vec,) = session(paths["fold_in.onnx"]).run(None, {"link_idx": idx, "mask": mask})
    books = model.book_embeddings / np.linalg.norm(model.book_embeddings, axis=1, keepdims=True)
    assert (np.sum(vec * books, 1) > 0).mean() > 0.9


# Golden numbers: pinned from the first run of this exact config (torch 2.13 CPU). A change
# means training or export changed behaviour; re-pin only when that change is intended.
# Re-pinned for issue 8: negatives' links ~ frequency^0.5 and the logit-scale cap; again for
# the hand-written SGD step (the tables by SGD at 0.1, the scale and bias by Adam).
GOLDEN_BOOKS = np.array([0, 1, 2, 3, 10, 59])
GOLDEN_LINKS = np.array([0, 3, 7, 44, 30, 2])
GOLDEN = {
    "classification": [0.715705, 0.398464, 0.675668, 0.100437, 0.561033, 0.721155],
    "regression": [0.575698, 0.538267, 0.640455, 0.312041, 0.554922, 0.543628],
}


def test_golden_probabilities(exported):
    model, _, paths = exported
    feeds = {"book_idx": GOLDEN_BOOKS, "link_idx": GOLDEN_LINKS}
    (got,) = session(paths["score.onnx"]).run(None, feeds)
    np.testing.assert_allclose(got, GOLDEN[model.config.objective], atol=1e-4)
