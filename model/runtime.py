"""Runtime: serve a bundle's ONNX graphs with ONNX Runtime and numpy (never torch).

``Runtime(bundle_dir, device="auto")`` opens ``score.onnx`` and ``fold_in.onnx`` lazily, on
first use, so commands that need one graph (or none) start fast. Indices are checked before
inference: a negative or out-of-range index is an ``InputError`` naming it.

Device: onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU and logs
loud errors when asked to use it there. CUDA is requested only when the driver library
(``libcuda.so.1``) loads; the attempt runs with ORT's logger silenced and is confirmed with
``session.get_providers()``. Falling back to the CPU warns only when "cuda" was asked for.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _state

from bookvec.errors import BundleError, ConfigError, InputError
from bookvec.model.bundle import FOLD_IN_GRAPH, SCORE_GRAPH

GRAPHS = (SCORE_GRAPH, FOLD_IN_GRAPH)
DEVICES = ("auto", "cpu", "cuda")
FOLD_IN_CHUNK = 1024  # books per fold-in call
_ORT_ERROR, _ORT_FATAL = 3, 4  # logger severity levels
_BAD_GRAPH = (_state.Fail, _state.InvalidGraph, _state.InvalidProtobuf, _state.NoSuchFile)


@functools.cache
def cuda_usable() -> bool:
    """True when the CUDA provider can really load: a driver library and its DLLs present."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    preload = getattr(ort, "preload_dlls", None)  # loads CUDA/cuDNN from nvidia-* wheels
    if preload is not None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints; stdout is for data
                preload()
        except Exception:  # noqa: BLE001 - a failed preload only means "use the CPU"
            return False
    return True


def _open(path: Path, opts: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except _BAD_GRAPH as e:
        raise BundleError(
            f"{path} is not a valid ONNX graph: {e}",
            hint="re-export the model with `bookvec train`",
        ) from e


def _session(path: Path, device: str) -> ort.InferenceSession:
    """A session on CUDA when asked for (or "auto") and really usable, else on the CPU."""
    opts = ort.SessionOptions()
    opts.log_severity_level = _ORT_ERROR
    if device != "cpu" and cuda_usable():
        opts.log_severity_level = _ORT_FATAL  # a failed CUDA attempt must stay quiet
        ort.set_default_logger_severity(_ORT_FATAL)
        try:
            sess = _open(path, opts, ["CUDAExecutionProvider", "CPUExecutionProvider"])
        finally:
            ort.set_default_logger_severity(_ORT_ERROR)  # ORT has no getter: errors only
    else:
        sess = _open(path, opts, ["CPUExecutionProvider"])
    if device == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
        warnings.warn(
            "device 'cuda' requested but ONNX Runtime cannot use CUDA here; running on the CPU",
            RuntimeWarning,
            stacklevel=4,
        )
    return sess


def _indices(values: Any, n: int, what: str, where: str = "") -> np.ndarray:
    """``values`` as a 1-D int64 array, every entry in [0, n); InputError names the first bad one.

    ``where`` prefixes the position in the message, e.g. "book 3, " for a fold-in row.
    """
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        raise InputError(f"{what} indices must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise InputError(f"{what} indices must be integers, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    outside = arr.view(np.uint64) >= n  # one comparison: negatives wrap to huge values
    if outside.any():
        i = int(np.argmax(outside))
        raise InputError(
            f"{what} index {arr[i]} ({where}position {i}) is out of range: "
            f"valid indices are 0..{n - 1}"
        )
    return arr


class Runtime:
    """Score (book, link) pairs and fold in new books from their links, with ONNX Runtime."""

    def __init__(self, bundle_dir: str | Path, device: str = "auto") -> None:
        if device not in DEVICES:
            raise ConfigError(f"device={device!r} is invalid: must be one of {', '.join(DEVICES)}")
        self.bundle_dir = Path(bundle_dir)
        if not self.bundle_dir.is_dir():
            raise BundleError(f"model bundle {self.bundle_dir} does not exist")
        missing = [g for g in GRAPHS if not (self.bundle_dir / g).is_file()]
        if missing:
            raise BundleError(
                f"model bundle {self.bundle_dir} lacks {', '.join(missing)}",
                hint="re-export the model with `bookvec train`",
            )
        self.device = device
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._meta: dict[str, int | str] = {}

    def _get(self, graph: str) -> ort.InferenceSession:
        sess = self._sessions.get(graph)
        if sess is None:
            sess = self._sessions[graph] = _session(self.bundle_dir / graph, self.device)
            if not self._meta:
                self._read_meta(sess)
        return sess

    def _read_meta(self, sess: ort.InferenceSession) -> None:
        custom = sess.get_modelmeta().custom_metadata_map
        try:
            self._meta = {
                "n_books": int(custom["bookvec.n_books"]),
                "n_links": int(custom["bookvec.n_links"]),
                "dim": int(custom["bookvec.dim"]),
                "objective": custom.get("bookvec.objective", "classification"),
            }
        except (KeyError, ValueError) as e:
            raise BundleError(
                f"{self.bundle_dir}: ONNX graph lacks bookvec metadata ({e})",
                hint="re-export the model with `bookvec train`",
            ) from e

    def _info(self, key: str) -> Any:
        if not self._meta:
            self._get(SCORE_GRAPH)
        return self._meta[key]

    @property
    def n_books(self) -> int:
        return self._info("n_books")

    @property
    def n_links(self) -> int:
        return self._info("n_links")

    @property
    def dim(self) -> int:
        return self._info("dim")

    @property
    def objective(self) -> str:
        return str(self._info("objective"))

    @property
    def providers(self) -> list[str]:
        """The score session's execution providers, the one in use first."""
        return self._get(SCORE_GRAPH).get_providers()

    def score(
        self,
        book_idx: Sequence[int] | np.ndarray,
        link_idx: Sequence[int] | np.ndarray,
    ) -> np.ndarray:
        """Probability that each (book, link) pair is observed: float32 [N]."""
        sess = self._get(SCORE_GRAPH)
        books = _indices(book_idx, self.n_books, "book")
        links = _indices(link_idx, self.n_links, "link")
        if books.shape != links.shape:
            raise InputError(f"got {books.size} book indices but {links.size} link indices")
        if books.size == 0:
            return np.zeros(0, dtype=np.float32)
        (out,) = sess.run(["probability"], {"book_idx": books, "link_idx": links})
        return out

    def fold_in(self, links: Sequence[Sequence[int]]) -> np.ndarray:
        """One unit vector per list of link indices (a zero row for an empty list): [K, d].

        The L2-normalised sum of the book's centred link vectors
        (``bookvec.model.training.export``)."""
        sess = self._get(FOLD_IN_GRAPH)
        rows = [_indices(row, self.n_links, "link", f"book {k}, ") for k, row in enumerate(links)]
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for start in range(0, len(rows), FOLD_IN_CHUNK):  # bounds the padded [K, L] size
            chunk = rows[start : start + FOLD_IN_CHUNK]
            width = max(1, max(r.size for r in chunk))
            idx = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for k, row in enumerate(chunk):
                idx[k, : row.size] = row
                mask[k, : row.size] = 1.0
            out.append(sess.run(["vector"], {"link_idx": idx, "mask": mask})[0])
        return out[0] if len(out) == 1 else np.concatenate(out)
