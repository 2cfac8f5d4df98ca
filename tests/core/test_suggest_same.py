"""`bookvec.titles.suggest` finds whole-word matches over the joined keys and lets rapidfuzz skip
scores below the floor; it must suggest exactly what the one-key-at-a-time form did."""

from __future__ import annotations

import random

from rapidfuzz import fuzz, process

from bookvec.titles import base_key, loose_key, suggest

WORDS = ["war", "peace", "the", "sea", "of", "monsters", "hawk", "may", "dune", "emma", "a", "é"]


def reference(query, titles, limit=5, *, keys=None):
    """suggest() as it was: a Python test of every key."""
    titles = list(titles)
    keys = keys if keys is not None else [base_key(t) for t in titles]
    key = base_key(query) or loose_key(query)
    if not key:
        return []
    scores = {
        i: score for _, score, i in process.extract(key, keys, scorer=fuzz.QRatio, limit=limit * 4)
    }
    padded = f" {key} "
    for i, other in enumerate(keys):
        if padded in f" {other} " and other != key:
            scores[i] = max(scores.get(i, 0.0), 90.0)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], len(titles[item[0]]), item[0]))
    if not ranked:
        return []
    floor = max(60.0, ranked[0][1] - 15.0)
    return [titles[i] for i, score in ranked if score >= floor][:limit]


def _title(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 4))]
    title = " ".join(words).title()
    if rng.random() < 0.2:
        title += " (novel)"
    if rng.random() < 0.1:
        title = "The " + title
    return title


def test_suggestions_are_the_reference_ones_on_random_catalogues():
    rng = random.Random(3)
    for _ in range(200):
        titles = list(dict.fromkeys(_title(rng) for _ in range(rng.randint(0, 60))))
        keys = [base_key(t) for t in titles]
        for query in (_title(rng), rng.choice(WORDS), "zzz", "war and", "!!"):
            for limit in (1, 5):
                expected = reference(query, titles, limit, keys=keys)
                assert suggest(query, titles, limit, keys=keys) == expected, (query, titles)


def test_a_key_with_a_line_break_takes_the_plain_path():
    titles = ["War", "War Peace", "Odd"]
    keys = ["war", "war peace", "odd\nwar"]  # not a base key, but given: still the same answer
    assert suggest("war", titles, keys=keys) == reference("war", titles, keys=keys)
