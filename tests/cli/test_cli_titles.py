"""TitleIndex, the resolver behind every title the CLI takes (books and links)."""

from __future__ import annotations

import pytest

from bookvec.errors import AmbiguousTitleError, TitleNotFoundError
from bookvec.titles import TitleIndex, base_key, resolve

BOOKS = [
    "The Fellowship of the Ring",
    "Dune (novel)",
    "Dune (film)",
    "Jaws (novel)",
    "A Tale of Two Cities",
    "Tale of Two Cities",
    "Les Misérables",
]
LINKS = ["science fiction", "science-fiction", "fantasy", "j. r. r. tolkien"]


def test_leading_article_and_qualifier_are_optional():
    index = TitleIndex(BOOKS)
    assert index.resolve("fellowship of the ring") == "The Fellowship of the Ring"
    assert index.resolve("JAWS") == "Jaws (novel)"
    assert base_key("The Hobbit (novel)") == "hobbit"


def test_a_closer_tier_wins_over_a_looser_one():
    # "tale of two cities" is exactly one title loosely; the article-less tier would add another
    assert TitleIndex(BOOKS).resolve("tale of two cities!") == "Tale of Two Cities"


def test_ambiguous_link_names_say_link():
    with pytest.raises(AmbiguousTitleError) as err:
        TitleIndex(LINKS, what="link").resolve("Science Fiction")
    assert str(err.value) == (
        "'Science Fiction' matches several links (use one of: 'science fiction'; 'science-fiction')"
    )


def test_unknown_link_suggests_links():
    with pytest.raises(TitleNotFoundError) as err:
        TitleIndex(LINKS, what="link").resolve("tolkein")
    assert str(err.value).startswith("unknown link 'tolkein'")
    assert "j. r. r. tolkien" in err.value.suggestions


def test_no_suggestion_says_how_to_fix():
    with pytest.raises(TitleNotFoundError) as err:
        resolve("qqqqqqqq", BOOKS)
    assert "check the spelling" in str(err.value)


def test_exact_keeps_only_the_exact_title():
    index = TitleIndex(BOOKS)
    assert index.resolve("Dune (film)", exact=True) == "Dune (film)"
    with pytest.raises(TitleNotFoundError) as err:
        index.resolve("dune (film)", exact=True)
    assert err.value.suggestions[0] == "Dune (film)"
    assert "Dune (film)" in index and len(index) == len(BOOKS)


def test_suggestions_keep_clear_matches_without_a_tail():
    from bookvec.titles import suggest

    titles = ["The Fashion in Shrouds", "Lie Down in Darkness", "The Book Thief", "In the Heat"]
    assert suggest("fashion in shroud", titles) == ["The Fashion in Shrouds"]
    links = ["margery allingham", "category:novels by margery allingham", "lion"]
    assert suggest("allingham", links) == links[:2]  # whole words inside a longer name
    assert suggest("zzzz", titles) == []
