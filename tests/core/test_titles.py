import pytest

from bookvec.errors import AmbiguousTitleError, TitleNotFoundError
from bookvec.titles import resolve

TITLES = [
    "Jaws (novel)",
    "War and Peace",
    "Dune (novel)",
    "Dune (film)",
    "The Fellowship of the Ring",
    "Les Misérables",
]


def test_exact_title_wins():
    assert resolve("War and Peace", TITLES) == "War and Peace"


def test_case_punctuation_and_accents_are_ignored():
    assert resolve("war AND peace!", TITLES) == "War and Peace"
    assert resolve("les miserables", TITLES) == "Les Misérables"


def test_a_trailing_qualifier_is_optional():
    assert resolve("jaws", TITLES) == "Jaws (novel)"


def test_ambiguous_title_lists_candidates():
    with pytest.raises(AmbiguousTitleError) as err:
        resolve("Dune", TITLES)
    assert err.value.candidates == ["Dune (film)", "Dune (novel)"]


def test_unknown_title_suggests_close_ones():
    with pytest.raises(TitleNotFoundError) as err:
        resolve("Fellowship of the Rings", TITLES)
    assert "The Fellowship of the Ring" in err.value.suggestions
    assert "did you mean" in str(err.value)


def test_exact_turns_matching_off():
    with pytest.raises(TitleNotFoundError):
        resolve("war and peace", TITLES, exact=True)
