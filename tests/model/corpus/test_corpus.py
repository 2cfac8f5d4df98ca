"""read_books (formats, sniffing, validation, skip_invalid), book_payload, sha256_file."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys

import polars as pl
import pytest

from bookvec.errors import DataNotFoundError, InputError
from bookvec.model.corpus.read import RawBook, book_payload, read_books, split_authors
from bookvec.outfiles import sha256_file

P15_SHA = "8a5936d69be4886075c04fcec028094edb08442daceb81679acca1753ce0f0fe"
JAWS = [
    "Jaws (novel)",
    {"author": "Peter Benchley", "genre": "Thriller", "pub_date": "February 1974"},
    ["Peter Benchley", "Category:1974 novels", "Peter Benchley"],
    ["http://example.org"],
    "2018-08-18T02:03:21Z",
    1437,
]
DUNE = ["Dune (novel)", {"genre": "Science fiction novel"}, ["Frank Herbert"], [], None, None]


def lines(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- formats


def test_real_sample(p15_path):
    books = list(read_books(p15_path))
    assert len(books) == 1413
    first = books[0]
    assert first.title == "The Cambridge Dictionary of Philosophy"
    assert first.line == 1 and first.length == 679 and first.timestamp == "2017-11-13T01:50:33Z"
    assert first.links[:2] == ["Robert Audi", "Philosophy"] and first.genres is None
    assert sha256_file(p15_path) == P15_SHA


def test_six_field_plain_and_gzip_sniffed(tmp_path):
    data = lines(JAWS, DUNE)
    plain = list(read_books(write(tmp_path, "c.ndjson", data)))
    assert plain[0] == RawBook(*JAWS, line=1)
    assert plain[1].timestamp is None and plain[1].length is None
    # gzip found from the magic bytes, whatever the name says
    for name in ("c.ndjson.gz", "c.ndjson", "c.data"):
        assert list(read_books(write(tmp_path, name, gzip.compress(data)))) == plain


def test_short_six_field_records_get_defaults(tmp_path):
    (book,) = read_books(write(tmp_path, "c.ndjson", lines(["T", None, ["a"]])))
    assert book.infobox == {} and book.external_links == [] and book.length is None


def test_bom_crlf_blank_lines(tmp_path):
    data = b"\xef\xbb\xbf" + lines(JAWS).replace(b"\n", b"\r\n") + b"\r\n  \n" + lines(DUNE)
    books = list(read_books(write(tmp_path, "c.ndjson", data)))
    assert [b.title for b in books] == ["Jaws (novel)", "Dune (novel)"]
    assert [b.line for b in books] == [1, 4]


def test_jsonl_objects(tmp_path):
    data = lines(
        {"title": "A", "links": ["x"], "genres": ["Fantasy novel", "Horror"], "author": "Ann Lee",
         "year": 1999, "country": "UK", "infobox": {"publisher": "Tor Books"}},
        {"title": "B", "links": [], "genres": "Science fiction, Crime novel"},
        {"title": "C", "links": ["y"], "genre": "Non-fiction"},
    )  # fmt: skip
    a, b, c = read_books(write(tmp_path, "c.jsonl", data))
    assert a.genres == ["Fantasy novel", "Horror"] and b.genres == ["Science fiction, Crime novel"]
    assert a.infobox == {"publisher": "Tor Books", "author": "Ann Lee", "country": "UK",
                         "pub_date": "1999"}  # fmt: skip
    assert book_payload(a) | {"title": None} == {
        "title": None, "genres": ["fantasy", "horror"], "author": "Ann Lee",
        "authors": ["Ann Lee"], "country": "United Kingdom", "language": None,
        "publisher": "Tor Books", "year": 1999,
    }  # fmt: skip
    assert book_payload(b)["genres"] == ["science fiction", "crime"]
    assert c.genres is None and book_payload(c)["genres"] == ["non-fiction"]


def test_mixed_arrays_and_objects(tmp_path):
    data = lines(JAWS, {"title": "B", "links": ["x"]})
    assert [b.title for b in read_books(write(tmp_path, "c.ndjson", data))] == ["Jaws (novel)", "B"]


def test_csv_and_parquet(tmp_path):
    frame = pl.DataFrame(
        {
            "title": ["A", "B"],
            "links": ["x|y| z ", ""],
            "genres": ["Fantasy|Horror novel", None],
            "author": ["Ann Lee", None],
            "year": ["2001", None],
        }
    )
    frame.write_csv(tmp_path / "c.csv")
    a, b = read_books(tmp_path / "c.csv")
    assert (a.title, a.links, a.line) == ("A", ["x", "y", "z"], 2)
    assert a.genres == ["Fantasy", "Horror novel"]
    assert b.links == [] and b.genres is None and b.line == 3
    assert book_payload(a)["genres"] == ["fantasy", "horror"] and book_payload(a)["year"] == 2001

    frame.with_columns(pl.col("links").str.split("|")).write_parquet(tmp_path / "c.parquet")
    a, b = read_books(tmp_path / "c.parquet")
    assert a.links == ["x", "y", " z "] and a.line == 1 and b.links == [""]
    # format given explicitly, and sniffed when the name says nothing
    (tmp_path / "c.bin").write_bytes((tmp_path / "c.parquet").read_bytes())
    assert [b.title for b in read_books(tmp_path / "c.bin")] == ["A", "B"]
    assert [b.title for b in read_books(tmp_path / "c.bin", format="parquet")] == ["A", "B"]


def test_stdin(monkeypatch):
    fake = io.TextIOWrapper(io.BufferedReader(io.BytesIO(gzip.compress(lines(JAWS)))))
    monkeypatch.setattr(sys, "stdin", fake)
    assert [b.title for b in read_books("-")] == ["Jaws (novel)"]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("line", "reason", "title"),
    [
        (b"not json\n", "not JSON", None),
        (b"42\n", "not a JSON array or object", None),
        (b'["T", {}]\n', "too few fields", "T"),
        (b'["T", {}, "a link"]\n', "links (position 2) must be a list", "T"),
        (b'["T", {}, ["a", 3]]\n', "item 1 is int", "T"),
        (b'["  ", {}, []]\n', "empty title", None),
        (b"[7, {}, []]\n", "title must be a string", None),
        (b'["T", [], []]\n', "infobox must be an object", "T"),
        (b'["T", {}, [], [], "x", "long"]\n', "length must be an integer", "T"),
        (b'["T\xff", {}, []]\n', "not UTF-8", None),
        (b'{"title": "T"}\n', "no 'links' key", "T"),
        (b'{"links": []}\n', "no title", None),
    ],
)
def test_invalid_records(tmp_path, line, reason, title):
    path = write(tmp_path, "c.ndjson", lines(DUNE) + line + lines(JAWS))
    with pytest.raises(InputError) as info:
        list(read_books(path))
    error = info.value
    assert reason in error.message
    assert (error.path, error.line, error.title) == (str(path), 2, title)
    assert f"{path}:2" in str(error)

    rejects: list = []
    books = list(read_books(path, skip_invalid=True, rejects=rejects))
    assert [b.title for b in books] == ["Dune (novel)", "Jaws (novel)"]
    assert len(rejects) == 1 and rejects[0][:2] == (2, title) and reason in rejects[0][2]


def test_pretty_printed_json_gets_a_hint(tmp_path):
    path = write(tmp_path, "c.json", b"[\n" + json.dumps(JAWS).encode() + b"\n]\n")
    with pytest.raises(InputError, match="one record per line"):
        list(read_books(path))


def test_truncated_gzip(tmp_path):
    data = gzip.compress(lines(*[JAWS] * 2000))
    path = write(tmp_path, "c.ndjson.gz", data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot read after line"):
        list(read_books(path, skip_invalid=True))  # the same title 2,000 times: duplicates


def test_missing_file_unknown_format_bad_table(tmp_path):
    with pytest.raises(DataNotFoundError):
        read_books(tmp_path / "nope.ndjson")
    path = write(tmp_path, "c.ndjson", lines(JAWS))
    with pytest.raises(InputError, match="unknown format"):
        read_books(path, format="xml")
    with pytest.raises(InputError, match="no 'links' column"):
        list(read_books(write(tmp_path, "c.csv", b"title,genres\nA,B\n")))
    with pytest.raises(InputError, match="cannot read as parquet"):
        list(read_books(write(tmp_path, "c.parquet", b"not parquet")))
    with pytest.raises(InputError, match="cannot read as csv"):
        list(read_books(write(tmp_path, "c.csv", b"title,links\nA\xff,x\n")))


# ---------------------------------------------------------------------------- payload


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Peter Benchley", ["Peter Benchley"]),
        ("O. J. Simpson < br / > Pablo F. Fenjves", ["O. J. Simpson", "Pablo F. Fenjves"]),
        ("Richard Cook<br>Brian Morton", ["Richard Cook", "Brian Morton"]),
        ("[[Ursula K. Le Guin|Le Guin]]", ["Le Guin"]),
        ("[[Isaac Asimov]] {{sfn|x}}", ["Isaac Asimov"]),
        ("Maj Sjöwall and Per Wahlöö", ["Maj Sjöwall", "Per Wahlöö"]),
        ("Arkady and Boris Strugatsky", ["Arkady Strugatsky", "Boris Strugatsky"]),
        ("Rich Redman, James Wyatt", ["Rich Redman", "James Wyatt"]),
        ("A. B. Cee, D. Eff, and G. Haitch", ["A. B. Cee", "D. Eff", "G. Haitch"]),
        ("Clive Cussler  &  Craig Dirgo", ["Clive Cussler", "Craig Dirgo"]),
        ("Ken Fisher with Jennifer Chou", ["Ken Fisher", "Jennifer Chou"]),
        ("Stiglitz, Joseph", ["Joseph Stiglitz"]),
        ("L. E. Modesitt, Jr.", ["L. E. Modesitt, Jr."]),
        ("Robert Jay Lifton, M.D.", ["Robert Jay Lifton"]),
        ("Ben Zablocki, ed. < br > Tom Robbins, ed.", ["Ben Zablocki", "Tom Robbins"]),
        ("edited by  L. Sprague de Camp", ["L. Sprague de Camp"]),
        ("Stephen King (as Richard Bachman)", ["Stephen King"]),
        ("H. P. Lovecraft and others", ["H. P. Lovecraft"]),
        ("John Jakes \n < !--", ["John Jakes"]),
        ("", []),
    ],
)
def test_split_authors(raw, expected):
    assert split_authors(raw) == expected


@pytest.mark.parametrize(
    ("infobox", "year"),
    [
        ({"pub_date": "1974"}, 1974),
        ({"pub_date": "May 1974"}, 1974),
        ({"pub_date": "1974-05-01"}, 1974),
        ({"release_date": "April 15, 1997"}, 1997),
        ({"release_date": "1933 < ref name=Grayling 2001/ >"}, 1933),
        ({"published": "1964 (US) < br > 1965 (UK)"}, 1964),
        ({"first_published": "c. 850"}, None),
        ({"pub_date": "unknown", "release_date": "2003"}, 2003),
        ({"pages": "1995"}, None),
        ({}, None),
    ],
)
def test_payload_year(infobox, year):
    assert book_payload(RawBook("T", infobox, []))["year"] == year


def test_payload_fields():
    box = {
        "author": "O. J. Simpson < br / > Pablo Fenjves",
        "genre": "Historical novel, < br / > German novel",
        "country": "United States < br > United Kingdom",
        "language": "English, German",
        "publisher": "Little, Brown and Company (US) < br > Heinemann (UK)",
    }
    assert book_payload(RawBook("T", box, ["x"])) == {
        "title": "T",
        "genres": ["historical fiction", "german"],
        "author": "O. J. Simpson",
        "authors": ["O. J. Simpson", "Pablo Fenjves"],
        "country": "United States",
        "language": "English",
        "publisher": "Little, Brown and Company",
        "year": None,
    }
    empty = book_payload(RawBook("T", {}, []))
    assert empty["genres"] == [] and empty["author"] is None and empty["authors"] == []


def test_payload_on_real_sample(p15_path):
    payloads = [book_payload(b) for b in read_books(p15_path)]
    # 1,070 have a genre field; two say "None" and "Various"
    assert sum(bool(p["genres"]) for p in payloads) == 1068
    assert sum(p["author"] is not None for p in payloads) == 1393  # author or authors field
    years = [p["year"] for p in payloads if p["year"] is not None]
    assert len(years) > 1350 and min(years) >= 1000 and max(years) <= 2018
    for p in payloads:
        for value in (p["author"], p["country"], p["publisher"], *p["authors"]):
            assert value is None or not set(value) & set("<>[]{}"), value


def test_sha256_file(tmp_path):
    path = write(tmp_path, "x", b"abc" * 1_000_000)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()
