"""Runtime: ONNX Runtime + numpy only; indices checked before inference; safe device choice."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from bookvec.errors import BundleError, ConfigError, InputError
from bookvec.model import runtime as R
from bookvec.model.runtime import Runtime

N_BOOKS, N_LINKS, DIM = 30, 20, 6


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from bookvec.model.training.config import TrainConfig
    from bookvec.model.training.export import export_onnx
    from bookvec.model.training.model import TrainedModel

    rng = np.random.default_rng(0)
    model = TrainedModel(
        book_embeddings=rng.normal(size=(N_BOOKS, DIM)).astype(np.float32),
        link_embeddings=rng.normal(size=(N_LINKS, DIM)).astype(np.float32),
        dense_weight=4.0,
        dense_bias=-1.0,
        config=TrainConfig(embedding_dim=DIM),
    )
    out = tmp_path_factory.mktemp("bundle")
    export_onnx(model, out)
    return out, model


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_score_and_fold_in(bundle):
    path, model = bundle
    rt = Runtime(path, device="cpu")
    books, links = np.array([0, 5, 29]), np.array([19, 0, 3])
    cos = np.sum(unit(model.book_embeddings[books]) * unit(model.link_embeddings[links]), 1)
    got = rt.score(books, links)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(4 * cos - 1))), atol=1e-6)
    assert rt.score([2], [3]).shape == (1,)  # plain lists work
    assert rt.score([], []).shape == (0,)

    vec = rt.fold_in([[1, 2], [], [7]])
    assert vec.shape == (3, DIM) and vec.dtype == np.float32
    links_unit = unit(model.link_embeddings)
    centre = links_unit.mean(0)  # fold-in sums the centred link vectors (see export.py)
    np.testing.assert_allclose(vec[0], unit(links_unit[1] + links_unit[2] - 2 * centre), atol=1e-6)
    assert not vec[1].any()
    np.testing.assert_allclose(vec[2], unit(links_unit[7] - centre), atol=1e-6)
    assert rt.fold_in([]).shape == (0, DIM)
    assert (rt.n_books, rt.n_links, rt.dim) == (N_BOOKS, N_LINKS, DIM)


@pytest.mark.parametrize(
    "books, links, message",
    [
        ([0, 30], [1, 2], "book index 30 .*position 1"),
        ([-1], [0], "book index -1"),
        ([0], [20], "link index 20"),
        ([0, 1], [0], "2 book indices but 1 link"),
        ([0.5], [0], "integers"),
        ([[0, 1]], [[0, 1]], "one-dimensional"),
    ],
)
def test_score_validates_indices(bundle, books, links, message):
    rt = Runtime(bundle[0], device="cpu")
    with pytest.raises(InputError, match=message):
        rt.score(books, links)


def test_fold_in_validates_indices(bundle):
    rt = Runtime(bundle[0], device="cpu")
    with pytest.raises(InputError, match="link index 20 .*book 1, position 2"):
        rt.fold_in([[0], [1, 2, 20]])
    with pytest.raises(InputError, match="link index -3"):
        rt.fold_in([[-3]])


def test_missing_bundle_and_bad_device(tmp_path, bundle):
    with pytest.raises(BundleError, match="does not exist"):
        Runtime(tmp_path / "nope")
    (tmp_path / "score.onnx").write_bytes(b"not onnx")
    with pytest.raises(BundleError, match="lacks fold_in.onnx"):
        Runtime(tmp_path)
    (tmp_path / "fold_in.onnx").write_bytes(b"not onnx")
    with pytest.raises(BundleError, match="not a valid ONNX"):
        Runtime(tmp_path).score([0], [0])
    with pytest.raises(ConfigError, match="device"):
        Runtime(bundle[0], device="gpu")


def test_never_imports_torch(bundle):
    code = f"""
import json, sys
from bookvec.model.runtime import Runtime
rt = Runtime({str(bundle[0])!r})
p = rt.score([0, 1], [2, 3])
v = rt.fold_in([[1, 2], []])
print(json.dumps({{"torch": "torch" in sys.modules, "n": len(p), "k": len(v)}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"torch": False, "n": 2, "k": 2}
    assert "CUDA" not in res.stderr and "Error" not in res.stderr  # no loud provider errors


def test_cuda_request_falls_back_to_cpu_with_a_warning(bundle, monkeypatch):
    monkeypatch.setattr(R, "cuda_usable", lambda: False)
    with pytest.warns(RuntimeWarning, match="cannot use CUDA"):
        rt = Runtime(bundle[0], device="cuda")
        rt.score([0], [0])
    assert rt.providers == ["CPUExecutionProvider"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto and cpu fall back silently
        assert Runtime(bundle[0], device="auto").providers == ["CPUExecutionProvider"]
        assert Runtime(bundle[0], device="cpu").providers == ["CPUExecutionProvider"]


def test_cuda_attempt_that_fails_stays_quiet(bundle, monkeypatch, capfd):
    """Even when the CUDA provider is tried and cannot load, only our warning shows."""
    if R.cuda_usable():
        pytest.skip("a usable GPU is present")
    monkeypatch.setattr(R, "cuda_usable", lambda: True)
    with pytest.warns(RuntimeWarning, match="cannot use CUDA"):
        rt = Runtime(bundle[0], device="cuda")
        assert rt.providers == ["CPUExecutionProvider"]
    err = capfd.readouterr().err
    assert "libcuda" not in err and "Failed to load" not in err


def test_cuda_usable_is_false_without_a_driver():
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        assert R.cuda_usable() is False
    else:
        pytest.skip("a CUDA driver is present")


def test_fold_in_in_chunks_gives_the_same_vectors(bundle, monkeypatch):
    rt = Runtime(bundle[0], device="cpu")
    rows = [[k % N_LINKS, (3 * k) % N_LINKS][: 1 + k % 2] for k in range(7)] + [[]]
    whole = rt.fold_in(rows)
    monkeypatch.setattr(R, "FOLD_IN_CHUNK", 3)
    np.testing.assert_allclose(rt.fold_in(rows), whole, atol=1e-7)
