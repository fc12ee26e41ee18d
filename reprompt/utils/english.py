"""English number words and plurals: the one table every reader and writer of prompts builds on.

The ``sketch`` simulator, the synthetic data, the intent guard and T2I-CompBench's prompt parser each read
or write counts and plural nouns; they take their words from here and add only what is their own (the
simulator reads "a"/"single" as one, the guard also reads "twenty"). Plain data and two small functions,
no reprompt imports, so every layer can use it.
"""

from __future__ import annotations

import re

# fmt: off
CARDINALS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}
# fmt: on
"""The cardinal number words up to twelve (GenEval counts up to ten, T2I-CompBench's numeracy to twelve)."""

PLURAL_ONLY: frozenset[str] = frozenset(
    [
        "skis",
        "scissors",
        "glasses",
        "sunglasses",
        "spectacles",
        "goggles",
        "binoculars",
        "shorts",
        "pants",
        "trousers",
        "tights",
        "boxers",
        "underdrawers",
        "overalls",
        "pajamas",
        "suspenders",
        "pliers",
        "tongs",
        "sprouts",
    ]
)
"""Nouns whose name is already plural ("a pair of scissors")."""

INVARIANT: frozenset[str] = frozenset(["sheep", "deer", "elk", "fish", "salmon"])
"""Nouns whose plural is the singular."""

# fmt: off
IRREGULAR_PLURALS: dict[str, str] = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "goose": "geese", "foot": "feet", "tooth": "teeth", "ox": "oxen", "die": "dice", "louse": "lice",
    "knife": "knives", "pocketknife": "pocketknives", "wife": "wives", "life": "lives", "leaf": "leaves",
    "wolf": "wolves", "half": "halves", "shelf": "shelves", "loaf": "loaves", "calf": "calves", "elf": "elves",
    "scarf": "scarves", "headscarf": "headscarves", "thief": "thieves", "hoof": "hooves",
    "cactus": "cacti", "fungus": "fungi", "octopus": "octopi", "lady": "ladies", "puppy": "puppies",
    "potato": "potatoes", "tomato": "tomatoes",
    **{w: w for w in INVARIANT | PLURAL_ONLY},
}
# fmt: on
"""Singular -> plural where the spelling rules of :func:`plural` would be wrong (or the word does not change)."""


def plural(name: str) -> str:
    """English plural of a (possibly multi-word) name: 'wine glass' -> 'wine glasses', 'person' -> 'people'."""
    head, _, last = name.rpartition(" ")
    if last in IRREGULAR_PLURALS:
        word = IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        word = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


IRREGULAR_SINGULARS: dict[str, str] = {p: s for s, p in IRREGULAR_PLURALS.items() if p != s}
"""Plural -> singular for the irregular plurals (the inverse of :data:`IRREGULAR_PLURALS`)."""
