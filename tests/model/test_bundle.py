import json

import numpy as np
import pytest

from bookvec.errors import BundleError, BundleFormatError, DataNotFoundError
from bookvec.model.bundle import (
    FORMAT_VERSION,
    REQUIRED_FILES,
    BundleWriter,
    Manifest,
    current_model_id,
    open_bundle,
)


def _fill(directory):
    for name in REQUIRED_FILES:
        if name.endswith(".npy"):
            np.save(directory / name, np.eye(3, dtype=np.float32))
        else:
            (directory / name).write_bytes(name.encode() * 10)


def _manifest():
    return {"counts": {"books": 3, "links": 3, "pairs": 9, "dim": 3}, "corpus": {}}


def test_commit_makes_bundle_current_and_verifiable(tmp_path):
    with BundleWriter(tmp_path, model_id="m1") as writer:
        _fill(writer.path)
        bundle = writer.commit(_manifest())
    assert current_model_id(tmp_path) == "m1"
    opened = open_bundle(None, models_dir=tmp_path)
    assert opened.model_id == "m1" and opened.dim == 3
    opened.verify()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    assert (
        json.loads((bundle.path / "manifest.json").read_text())["format_version"]
        == FORMAT_VERSION
        == 2
    )


def test_interrupted_write_leaves_previous_bundle_current(tmp_path):
    with BundleWriter(tmp_path, model_id="good") as writer:
        _fill(writer.path)
        writer.commit(_manifest())
    with pytest.raises(KeyboardInterrupt), BundleWriter(tmp_path, model_id="bad") as writer:
        _fill(writer.path)
        raise KeyboardInterrupt
    assert current_model_id(tmp_path) == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "good"]


def test_incomplete_bundle_is_refused_at_commit(tmp_path):
    with BundleWriter(tmp_path, model_id="m") as writer:
        (writer.path / "books.parquet").write_bytes(b"x")
        with pytest.raises(BundleError, match="missing"):
            writer.commit(_manifest())
    assert current_model_id(tmp_path) is None


def test_tampered_file_is_refused(tmp_path):
    with BundleWriter(tmp_path, model_id="m") as writer:
        _fill(writer.path)
        bundle = writer.commit(_manifest())
    target = bundle.path / "score.onnx"
    data = bytearray(target.read_bytes())
    data[0] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match the hash"):
        open_bundle("m", models_dir=tmp_path).verify()
    target.write_bytes(b"short")
    with pytest.raises(BundleError, match="bytes"):
        open_bundle("m", models_dir=tmp_path)


def test_no_model_yet_says_how_to_make_one(tmp_path):
    with pytest.raises(DataNotFoundError, match="bookvec train"):
        open_bundle(None, models_dir=tmp_path)


def test_manifest_is_typed_and_round_trips(tmp_path):
    with BundleWriter(tmp_path, model_id="m") as writer:
        _fill(writer.path)
        writer.commit({**_manifest(), "config": {"seed": 4}, "corpus": {"synthetic": True}})
    bundle = open_bundle("m", models_dir=tmp_path)
    manifest = bundle.manifest
    assert isinstance(manifest, Manifest)
    assert manifest.counts.pairs == 9 and manifest.corpus.synthetic and bundle.synthetic
    assert manifest.train_config().seed == 4 and manifest.warm_start is None
    assert set(REQUIRED_FILES) <= set(manifest.files)
    assert manifest.files["score.onnx"].size == len(b"score.onnx" * 10)
    raw = json.loads((bundle.path / "manifest.json").read_text())
    assert Manifest.from_dict(raw) == manifest and manifest.to_dict() == raw
    with pytest.raises(AttributeError):
        manifest.model_id = "other"  # frozen


def test_old_format_bundle_is_refused_with_one_line_telling_to_retrain(tmp_path):
    with BundleWriter(tmp_path, model_id="old") as writer:
        _fill(writer.path)
        bundle = writer.commit(_manifest())
    path = bundle.path / "manifest.json"
    raw = json.loads(path.read_text())
    raw["format_version"] = 1
    path.write_text(json.dumps(raw))
    with pytest.raises(BundleFormatError) as caught:
        open_bundle("old", models_dir=tmp_path)
    message = str(caught.value)
    assert caught.value.version == 1 and isinstance(caught.value, BundleError)
    assert "\n" not in message and "bundle format 1" in message and "bookvec train" in message
    raw["format_version"] = 3
    path.write_text(json.dumps(raw))
    with pytest.raises(BundleFormatError, match="reads format 2"):
        open_bundle("old", models_dir=tmp_path)


def test_a_bundle_missing_a_required_file_in_its_manifest_is_refused(tmp_path):
    with BundleWriter(tmp_path, model_id="m") as writer:
        _fill(writer.path)
        bundle = writer.commit(_manifest())
    path = bundle.path / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["files"]["held_out_pairs.npy"]
    path.write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="held_out_pairs.npy is not listed"):
        open_bundle("m", models_dir=tmp_path)
