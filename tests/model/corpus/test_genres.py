"""canonical_genres: splitting, markup, variants, and a look at the real sample's genres."""

from __future__ import annotations

import collections
import json

import pytest

from bookvec.model.corpus.genres import KNOWN_GENRES, canonical_genres, strip_markup
from bookvec.model.corpus.synth import GENRES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Science fiction novel", ["science fiction"]),
        ("science-fiction", ["science fiction"]),
        ("Science fiction novels", ["science fiction"]),
        ("Sci-fi", ["science fiction"]),
        ("Fantasy novel", ["fantasy"]),
        ("Fantasy literature", ["fantasy"]),
        ("Non-fiction", ["non-fiction"]),
        ("Nonfiction", ["non-fiction"]),
        ("non fiction", ["non-fiction"]),
        ("young-adult novel", ["young adult"]),
        ("Young adult fiction", ["young adult"]),
        ("Historical novel", ["historical fiction"]),
        ("historical fiction", ["historical fiction"]),
        ("Crime novel", ["crime"]),
        ("crime fiction", ["crime"]),
        ("Children's novel", ["children's"]),
        ("children's literature", ["children's"]),
        ("Children\u2019s book", ["children's"]),
        ("Novel", ["novel"]),
        ("Novels", ["novel"]),
        ("Graphic Novel", ["graphic novel"]),
        ("Children's picture book", ["picture book"]),
        ("Fantasy, Horror", ["fantasy", "horror"]),
        ("Crime / Mystery novel", ["crime", "mystery"]),
        ("memoir; biography", ["memoir", "biography"]),
        ("Historical novel, < br / > German novel", ["historical fiction", "german"]),
        ("Epic fantasy < br > Historical fantasy", ["epic fantasy", "historical fantasy"]),
        ("Graphic Novel < br/ > Biography", ["graphic novel", "biography"]),
        ("Fantasy, Horror short stories", ["fantasy", "horror", "short stories"]),
        ("Fantasy and Science fiction", ["fantasy", "science fiction"]),
        ("Sword and sorcery", ["sword and sorcery"]),
        ("Swords  &  sorcery, fantasy", ["sword and sorcery", "fantasy"]),
        ("Poetry and Lyrics", ["poetry and lyrics"]),
        ("Fantasy novel < !-- Wikipedia:WikiProject Novels/Novel categorisation -- >", ["fantasy"]),
        ('Biography < ref name= " Provost 1991 44 " >  < /ref >', ["biography"]),
        ("[[Science fiction|SF]], [[Horror fiction]]", ["science fiction", "horror"]),
        ("{{nowrap|Thriller}} novel", ["novel"]),
        ("Bildungsroman (coming of age novel)", ["bildungsroman"]),
        ("Action, Comedy, Adventure[Mystery]", ["action", "comedy", "adventure", "mystery"]),
        ("Fantasy, fantasy novel, FANTASY", ["fantasy"]),
        ("0<>", ["0"]),  # markup debris: an empty tag, an unclosed template, a lone bracket
        ("Horror{{", ["horror"]),
        ("Fantasy <3", ["fantasy 3"]),
        ("Crime <<>> novel", ["crime"]),
        ("None", []),
        ("", []),
        (None, []),
    ],
)
def test_canonical_genres(raw, expected):
    assert canonical_genres(raw) == expected


def test_result_is_a_fresh_list():
    first = canonical_genres("Fantasy")
    first.append("changed")
    assert canonical_genres("Fantasy") == ["fantasy"]


def test_strip_markup():
    text = "A < br / > B<br>C [[x|D]] [[E]] {{cite|x}} < ref >note< /ref > < !-- c -- >"
    assert strip_markup(text, br="\n") == "A\nB\nC D E"
    assert strip_markup("plain   text") == "plain text"


def test_every_synthetic_spelling_gives_its_genre_back():
    for name, _, spellings in GENRES:
        for spelling in spellings:
            assert canonical_genres(spelling) == [name], spelling


def test_canonical_names_are_fixed_points():
    for name in KNOWN_GENRES:
        assert canonical_genres(name) == [name], name


def test_real_sample_genres_look_clean(p15_path):
    counts: collections.Counter[str] = collections.Counter()
    with open(p15_path, encoding="utf-8") as fh:
        raws = [json.loads(line)[1].get("genre") for line in fh]
    for raw in raws:
        out = canonical_genres(raw)
        counts.update(out)
        assert canonical_genres(", ".join(out)) == out  # idempotent
    top = [name for name, _ in counts.most_common(40)]
    print("p15 top genres:", counts.most_common(40))
    for name in top:
        assert name == name.lower().strip()
        assert not set(name) & set('<>[]{}|="/;,'), name
        kept_whole = name in ("graphic novel", "picture book", "comic book", "travel literature")
        assert kept_whole or not name.endswith((" novel", " novels", " literature", " book"))
    assert top[:6] == ["fantasy", "science fiction", "horror", "historical fiction", "mystery",
                       "children's"]  # fmt: skip
    assert counts["science fiction"] == 184 and counts["fantasy"] == 199
