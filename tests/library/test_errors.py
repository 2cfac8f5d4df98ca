"""Every failure of the API is a typed bookvec.errors error (never SystemExit), with a message
that says what is wrong; importing bookvec and querying a model stays free of torch and
qdrant_client."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import bookvec
from bookvec.errors import (
    AmbiguousTitleError,
    BookvecError,
    BundleError,
    ConfigError,
    DataNotFoundError,
    InputError,
    ModelMismatchError,
    TitleNotFoundError,
)


@pytest.fixture(scope="module")
def model(trained_home):
    return bookvec.load(home=trained_home)


def test_import_is_cheap_and_queries_never_load_torch(trained_home):
    code = (
        "import sys\n"
        "import bookvec\n"
        "cheap = [m for m in ('numpy', 'polars', 'onnxruntime', 'torch') if m in sys.modules]\n"
        f"m = bookvec.load(home={str(trained_home)!r})\n"
        "hits = m.most_similar(m.titles[0], topn=3)\n"
        "m.score([(m.titles[0], m.link_names[0])]); m.links(m.titles[0])\n"
        "loaded = [n for n in ('torch', 'qdrant_client') if n in sys.modules]\n"
        "print(cheap, loaded, len(hits))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[] [] 3", done.stdout + done.stderr


def test_lazy_names():
    assert callable(bookvec.load) and callable(bookvec.open_index) and callable(bookvec.train)
    assert "SearchResult" in dir(bookvec)
    with pytest.raises(AttributeError):
        bookvec.no_such_name  # noqa: B018


def test_unknown_and_ambiguous_titles(model, mutable_home):
    with pytest.raises(TitleNotFoundError) as err:
        model.most_similar("Qqqq Zzzz Xxxx")
    assert "unknown book 'Qqqq Zzzz Xxxx'" in str(err.value)
    with pytest.raises(TitleNotFoundError) as err:
        model.similar_links("no such page at all qq")
    assert "unknown link" in str(err.value)
    title = model.titles[0]
    with bookvec.open_index(home=mutable_home) as ix:
        twin = {"title": f"{title} (film)", "links": model.link_names[:5]}
        ix.upsert([twin, {**twin, "title": f"The {title}"}])
        with pytest.raises(AmbiguousTitleError) as err:
            ix.search(f"{title} (novel)")
        assert title in err.value.candidates and f"{title} (film)" in err.value.candidates


def test_bad_arguments_are_config_errors(model, trained_home):
    with bookvec.open_index(home=trained_home) as ix:
        for kwargs in (
            {},
            {"title": model.titles[0], "link": model.link_names[0]},
            {"title": model.titles[0], "mode": "fuzzy"},
            {"title": model.titles[0], "limit": 0},
            {"title": model.titles[0], "years": "1990s"},
        ):
            with pytest.raises(ConfigError):
                ix.search(**kwargs)
    with pytest.raises(ConfigError):
        model.most_similar(model.titles[0], topn=0)
    with pytest.raises(ConfigError):
        model.explain(model.titles[0], model.titles[0].lower())
    with pytest.raises(ConfigError, match="unknown training option"):
        bookvec.train("corpus.ndjson", epochs=3)


def test_bad_input_names_the_row(model, trained_home, tmp_path):
    with pytest.raises(InputError, match="pair 2"):
        model.score([(model.titles[0], model.link_names[0]), ("only one",)])
    with pytest.raises(TitleNotFoundError):
        model.score([(model.titles[0], "no such page qqq")])
    skipped = model.score([(model.titles[0], "no such page qqq")], skip_invalid=True)
    assert len(skipped) == 0 and skipped.rejects[0][0] == 1
    with pytest.raises(InputError, match="known to the model"):
        model.fold_in(["no such page qqq"])
    with pytest.raises(InputError):
        model.fold_in("one string")
    with bookvec.open_index(home=trained_home) as ix:
        with pytest.raises(InputError, match="<books>:1"):
            ix.upsert([{"title": "Bad", "links": "not a list"}], dry_run=True)
        with pytest.raises(InputError, match="every record was rejected"):
            ix.upsert([{"title": "Bad", "links": "not a list"}], skip_invalid=True, dry_run=True)
        with pytest.raises(DataNotFoundError):
            ix.upsert(tmp_path / "missing.jsonl", dry_run=True)


def test_missing_damaged_and_mismatched(trained_home, tmp_path):
    with pytest.raises(DataNotFoundError, match="no trained model"):
        bookvec.load(home=tmp_path / "empty")
    with pytest.raises(DataNotFoundError):
        bookvec.load("no-such-model", home=trained_home)
    home = tmp_path / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    m = bookvec.load(home=home)
    # the store holds another model's vectors: a link query cannot mix the two spaces
    models = home / "models"
    other = models / "20990101-000000-abcdef"
    shutil.copytree(m.bundle.path, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["model_id"] = other.name
    (other / "manifest.json").write_text(json.dumps(manifest))
    (m.bundle.path / "score.onnx").write_bytes(b"damaged")
    with pytest.raises(BundleError, match="score.onnx"):
        m.links(m.titles[0])
    with pytest.raises(BundleError):
        bookvec.load(home=home).score([(m.titles[0], m.link_names[0])])
    with bookvec.open_index(home=home, model=other.name) as ix:
        with pytest.raises(ModelMismatchError):
            ix.search(link=m.link_names[0])


def test_errors_are_never_system_exit(model):
    try:
        model.most_similar("Qqqq Zzzz Xxxx")
    except BaseException as exc:  # noqa: BLE001 - the point: which class it is
        assert isinstance(exc, BookvecError) and not isinstance(exc, SystemExit)
    else:
        pytest.fail("an unknown title raised nothing")


def test_a_store_another_writer_holds_is_store_locked(mutable_home):
    from bookvec.errors import StoreLockedError
    from bookvec.indexer import open_store
    from bookvec.settings import QdrantSettings

    holder = open_store(QdrantSettings(), path=mutable_home / "store")
    try:
        with holder.exclusive(), bookvec.open_index(home=mutable_home) as ix:
            title = ix.model.titles[0]
            new = {"title": "Blocked Book", "links": ix.model.link_names[:5]}
            with pytest.raises(StoreLockedError):
                ix.upsert([new])
            with pytest.raises(StoreLockedError):
                ix.delete([title])
            assert ix.search(title, limit=3).hits  # reading is never blocked
    finally:
        holder.close()


def test_an_unreachable_corpus_is_a_download_error(monkeypatch, tmp_path):
    from bookvec.errors import DownloadError
    from bookvec.library.quickstart import get_corpus
    from bookvec.library.store import home_of
    from bookvec.model.corpus import fetch

    def unreachable(*args, **kwargs):
        raise DownloadError("cannot reach the corpus host")

    monkeypatch.setattr(fetch, "fetch_corpus", unreachable)
    with pytest.raises(DownloadError, match="cannot reach"):
        get_corpus(None, no_fallback=True, home=home_of(tmp_path))
