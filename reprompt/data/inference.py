"""The inference family: prompts whose object, count, color or relation must be worked out before it can
be drawn ("as many apples as a tricycle has wheels", "the animal that says moo and a bench", "a cup the
color of a ripe tomato", "a dog on the port side of a cup").

Each prompt resolves to GenEval-verifiable metadata (the family tag, its GenEval template's clauses and an
``inference`` list saying what each clue means, which only teachers read), so the GenEval reward and
evaluation score it like any other prompt. The clues name no COCO object, GenEval color, number or relation
word: a model that renders words literally (the ``sketch`` simulator, a weak text encoder) draws the wrong
thing, and only a rewrite that resolves the clue can score. This is where a reasoning step has a job.

Every template's space of meanings is counted exactly (:class:`InferenceSpace`, the same interface as
:class:`reprompt.data.space.TemplateSpace`), so quotas, exclusions and disjoint splits work as for
GenEval's templates. A meaning is the resolved request (tag + clauses); which clue and wording express it
is a seeded choice per meaning. A meaning whose resolved GenEval form is a test prompt (``a photo of three
cups``) is excluded with it, so training on the family never teaches a GenEval test answer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reprompt.data.space import SpaceConfig, _pair, _unpair
from reprompt.data.templates import INVERSE, NUMBER_WORDS, article, normalize_text
from reprompt.geneval.rules import RELATIONS
from reprompt.geneval.vocabulary import FAMILY_TAGS
from reprompt.utils.english import plural

INFERENCE_TAGS: tuple[str, ...] = tuple(t for t, (family, _) in FAMILY_TAGS.items() if family == "inference")
INFER_COUNTS: tuple[int, ...] = (2, 3, 4, 5, 6)
"""The counts ``infer_count`` asks for: the clue is what is inferred, so the family goes past GenEval's 2-4
(which also keeps its space large once GenEval's counting test prompts are excluded). Our choice."""


@dataclass(frozen=True)
class Clue:
    """A phrase that stands for an answer, and the fact a reasoner states to resolve it."""

    phrase: str
    fact: str


# --- objects: riddles for COCO classes (no COCO name, color, number or relation word in any of them) ---
# fmt: off
OBJECT_CLUES: dict[str, tuple[str, ...]] = {
    "cow": ("the animal that says moo", "the farm animal that gives us milk"),
    "dog": ("the animal that barks", "the pet that fetches sticks"),
    "cat": ("the pet that meows", "the animal that purrs on your lap"),
    "sheep": ("the animal that gives us wool", "the farm animal that says baa"),
    "horse": ("the animal that neighs", "the animal a jockey rides"),
    "elephant": ("the animal with a trunk", "the largest land animal"),
    "giraffe": ("the animal with the longest neck", "the tallest animal on earth"),
    "zebra": ("the striped animal of the African savanna",),
    "bear": ("the animal that sleeps in a cave all winter", "the furry animal that loves honey"),
    "airplane": ("the vehicle that flies passengers between airports",),
    "boat": ("the vessel you row across a lake",),
    "train": ("the vehicle that runs on rails between stations",),
    "umbrella": ("the thing you open over your head when it rains",),
    "clock": ("the thing on the wall that tells the time",),
    "scissors": ("the tool for cutting paper",),
    "toothbrush": ("the thing you clean your teeth with",),
    "refrigerator": ("the kitchen appliance that keeps food cold",),
    "oven": ("the kitchen appliance you bake bread in",),
    "toaster": ("the appliance that makes toast",),
    "microwave": ("the appliance that reheats leftovers in a minute",),
    "bed": ("the furniture you sleep in at night",),
    "couch": ("the long soft seat of a living room",),
    "laptop": ("the portable computer with a folding screen",),
    "book": ("the thing you read, with pages and a cover",),
    "vase": ("the container for cut flowers",),
    "kite": ("the toy that flies on a string on a windy day",),
    "banana": ("the curved fruit that monkeys love",),
    "apple": ("the fruit that keeps the doctor away",),
    "pizza": ("the round Italian dish topped with cheese and tomato sauce",),
    "donut": ("the ring-shaped fried pastry",),
    "cake": ("the dessert with candles at a birthday party",),
    "broccoli": ("the vegetable that looks like a little tree",),
    "carrot": ("the vegetable that rabbits love",),
    "teddy bear": ("the stuffed toy you cuddle at bedtime",),
    "fire hydrant": ("the thing firefighters connect their hoses to",),
    "stop sign": ("the road sign that tells drivers to halt",),
    "suitcase": ("the luggage you pack for a trip",),
    "backpack": ("the bag you carry on your back to school",),
    "skateboard": ("the board on wheels that skaters ride",),
    "surfboard": ("the board you ride on ocean waves",),
    "spoon": ("the utensil you eat soup with",),
    "fork": ("the pronged utensil for eating pasta",),
    "knife": ("the utensil for cutting steak",),
    "bowl": ("the dish you eat cereal from",),
    "toilet": ("the bathroom fixture you flush",),
    "hair drier": ("the appliance that blows hot air to dry wet hair",),
    "bus": ("the vehicle that carries many passengers along a city route",),
    "wine glass": ("the stemmed glass for drinking merlot",),
}
# --- counts: (phrase for "as many X as ...", the things counted, a fact), per number ---
COUNT_CLUES: dict[int, tuple[tuple[str, str, str], ...]] = {
    2: (("a coin has sides", "sides of a coin", "A coin has two sides"),
        ("a duet has singers", "singers in a duet", "A duet has two singers"),
        ("a penguin has wings", "wings of a penguin", "A penguin has two wings")),
    3: (("a tricycle has wheels", "wheels of a tricycle", "A tricycle has three wheels"),
        ("a triangle has sides", "sides of a triangle", "A triangle has three sides"),
        ("a shamrock has leaves", "leaves of a shamrock", "A shamrock has three leaves")),
    4: (("a square has sides", "sides of a square", "A square has four sides"),
        ("a year has seasons", "seasons in a year", "A year has four seasons"),
        ("a violin has strings", "strings of a violin", "A violin has four strings")),
    5: (("a pentagon has sides", "sides of a pentagon", "A pentagon has five sides"),
        ("a starfish has arms", "arms of a starfish", "A starfish has five arms")),
    6: (("an insect has legs", "legs of an insect", "An insect has six legs"),
        ("a hexagon has sides", "sides of a hexagon", "A hexagon has six sides")),
    7: (("a week has days", "days in a week", "A week has seven days"),),
    8: (("a spider has legs", "legs of a spider", "A spider has eight legs"),
        ("an octopus has arms", "arms of an octopus", "An octopus has eight arms")),
}
# --- colors: things of one well-known color (no COCO object, no color word) ---
COLOR_CLUES: dict[str, tuple[str, ...]] = {
    "red": ("a ripe tomato", "a fire engine", "a ruby"),
    "orange": ("a pumpkin", "a tangerine"),
    "yellow": ("a lemon", "a sunflower", "an egg yolk"),
    "green": ("fresh grass", "a lime", "an emerald"),
    "blue": ("a clear summer sky", "a sapphire"),
    "purple": ("an eggplant", "lavender", "a ripe plum"),
    "pink": ("a flamingo", "cotton candy", "bubblegum"),
    "brown": ("milk chocolate", "a coffee bean", "tree bark"),
    "black": ("coal", "a raven", "soot"),
    "white": ("fresh snow", "a swan", "a glass of milk"),
}
# --- relations: a wording of "x <relation> y" that names no relation, and the fact that resolves it ---
RELATION_CLUES: dict[str, tuple[tuple[str, str], ...]] = {
    "left of": (("{x} on the port side of {y}", "Port side means the left side"),
                ("{x} to the west of {y}", "On a map west is to the left"),
                ("{x} on the side of {y} where a line of English text begins", "English text begins on the left")),
    "right of": (("{x} on the starboard side of {y}", "Starboard means the right side"),
                 ("{x} to the east of {y}", "On a map east is to the right"),
                 ("{x} on the side of {y} where a line of English text ends", "English text ends on the right")),
    "above": (("{x} to the north of {y}", "On a map north is at the top"),
              ("{x} nearer the sky than {y}", "Nearer the sky means higher up"),
              ("{x} on the ceiling side of {y}", "The ceiling side is the upper side")),
    "below": (("{x} to the south of {y}", "On a map south is at the bottom"),
              ("{x} nearer the ground than {y}", "Nearer the ground means lower down"),
              ("{x} on the floor side of {y}", "The floor side is the lower side")),
}
# fmt: on


def _phrase_templates(tag: str) -> tuple[str, ...]:
    return {
        "infer_object": (
            "a photo of {clue} and {b}",
            "a photo of {b} and {clue}",
            "a photo of {b} beside {clue}",
        ),
        "infer_count": (
            "a photo of as many {xs} as {clue}",
            "a photo of {xs}, one for each of the {counted}",
            "a photo of {xs} matching the number of {counted}",
        ),
        "infer_color": (
            "a photo of {a_x} the color of {clue}",
            "a photo of {a_x} painted the color of {clue}",
            "a photo of {a_x} in the color of {clue}",
        ),
        "infer_position": ("a photo of {clue}",),
    }[tag]


def _a(word: str) -> str:
    return f"{article(word)} {word}"


class InferenceSpace:
    """Every meaning one inference template can express, numbered ``0 .. size-1`` like
    :class:`reprompt.data.space.TemplateSpace`; a meaning is the resolved request. ``index_of`` also
    recognises the meaning written in its GenEval template (tag ``two_object`` for ``infer_object``, ...), so
    excluding GenEval's test prompts excludes the family prompts that resolve to them."""

    def __init__(self, tag: str, cfg: SpaceConfig) -> None:
        self.tag, self.base = tag, FAMILY_TAGS[tag][1]
        self.seed = cfg.seed
        self.vocab = tuple(cfg.vocabulary)
        self._vocab_ix = {v: i for i, v in enumerate(self.vocab)}
        self.colors = tuple(c for c in cfg.colors if c in COLOR_CLUES)
        self.counts = INFER_COUNTS
        if tag == "infer_object":  # unordered pairs with at least one object that has a riddle
            riddled = {i for i, v in enumerate(self.vocab) if v in OBJECT_CLUES}
            self.pairs = [
                (lo, hi)
                for hi in range(len(self.vocab))
                for lo in range(hi)
                if lo in riddled or hi in riddled
            ]
            self._pair_ix = {p: i for i, p in enumerate(self.pairs)}
            self.size = len(self.pairs)
        elif tag == "infer_count":
            self.size = len(self.vocab) * len(self.counts)
        elif tag == "infer_color":
            self.size = len(self.vocab) * len(self.colors)
        else:
            self.size = len(self.vocab) * (len(self.vocab) - 1) // 2 * len(RELATIONS)

    def _variant(self, i: int) -> random.Random:
        return random.Random(f"{self.seed}:{self.tag}:{i}")

    def meta(self, i: int, flip: bool = False) -> dict[str, Any]:
        """The prompt numbered ``i`` (its wording a seeded choice per meaning; ``flip`` swaps roles)."""
        return self._build(i, flip, self._variant(i))

    def _build(
        self, i: int, flip: bool, rng: random.Random, pick: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """``pick`` = (clue index, wording index) to enumerate every wording; else drawn from ``rng``."""

        def choose(options: Sequence[Any], k: int) -> Any:
            return options[pick[k] % len(options)] if pick is not None else rng.choice(options)

        templates = _phrase_templates(self.tag)
        v = self.vocab
        if self.tag == "infer_object":
            lo, hi = self.pairs[i]
            a, b = v[lo], v[hi]
            riddled = [x for x in (a, b) if x in OBJECT_CLUES]
            target = riddled[int(flip) % len(riddled)]
            other = b if target == a else a
            phrase = choose(OBJECT_CLUES[target], 0)
            clue = Clue(phrase, f"{phrase[0].upper()}{phrase[1:]} is {_a(target)}")
            prompt = choose(templates, 1).format(clue=phrase, b=_a(other))
            include = [{"class": a, "count": 1}, {"class": b, "count": 1}]
            return self._record(prompt, include, None, [clue])
        if self.tag == "infer_count":
            x, n = v[i // len(self.counts)], self.counts[i % len(self.counts)]
            phrase, counted, fact = choose(COUNT_CLUES[n], 0)
            prompt = choose(templates, 1).format(xs=plural(x), clue=phrase, counted=counted)
            clue = Clue(phrase, f"{fact}, so {NUMBER_WORDS.get(n, str(n))} {plural(x)}")
            include = [{"class": x, "count": n}]
            return self._record(prompt, include, [{"class": x, "count": n + 1}], [clue])
        if self.tag == "infer_color":
            x, color = v[i // len(self.colors)], self.colors[i % len(self.colors)]
            thing = choose(COLOR_CLUES[color], 0)
            prompt = choose(templates, 1).format(a_x=_a(x), clue=thing)
            clue = Clue(thing, f"{thing[0].upper()}{thing[1:]} is {color}, so the {x} is {color}")
            return self._record(prompt, [{"class": x, "count": 1, "color": color}], None, [clue])
        p, r = divmod(i, len(RELATIONS))
        lo, hi = _unpair(p)
        rel = RELATIONS[r]
        subject, reference = (v[hi], v[lo]) if flip else (v[lo], v[hi])
        if flip:
            rel = INVERSE[rel]
        wording, fact = choose(RELATION_CLUES[rel], 0)
        phrase = wording.format(x=_a(subject), y=_a(reference))
        prompt = templates[0].format(clue=phrase)
        clue = Clue(phrase, f"{fact}, so the {subject} goes {rel} the {reference}")
        include = [{"class": reference, "count": 1}, {"class": subject, "count": 1, "position": [rel, 0]}]
        return self._record(prompt, include, None, [clue])

    def _record(
        self,
        prompt: str,
        include: list[dict[str, Any]],
        exclude: list[dict[str, Any]] | None,
        clues: list[Clue],
    ) -> dict[str, Any]:
        rec: dict[str, Any] = {"tag": self.tag, "include": include}
        if exclude:
            rec["exclude"] = exclude
        rec["prompt"] = prompt
        rec["inference"] = [{"clue": c.phrase, "fact": c.fact} for c in clues]
        return rec

    def wordings(self, i: int) -> set[str]:
        """Normalised texts of every wording of meaning ``i`` (every clue, every phrasing, both roles)."""
        n_clues = 3  # the longest clue list
        out = set()
        for flip in (False, True):
            for c in range(n_clues):
                for w in range(len(_phrase_templates(self.tag))):
                    out.add(normalize_text(self._build(i, flip, self._variant(i), pick=(c, w))["prompt"]))
        return out

    def index_of(self, tag: str | None, include: Sequence[Mapping[str, Any]]) -> int | None:
        """The number of a meaning given in this family tag or in its GenEval template's tag; None if it
        is not in this space."""
        if tag not in (self.tag, self.base):
            return None
        try:
            cls = [self._vocab_ix[c["class"]] for c in include]
            cnt = [int(c.get("count", 1)) for c in include]
            col = [c.get("color") for c in include]
        except (KeyError, ValueError, TypeError):
            return None
        if self.tag == "infer_count":
            if len(cls) != 1 or col != [None] or cnt[0] not in self.counts:
                return None
            return cls[0] * len(self.counts) + self.counts.index(cnt[0])
        if self.tag == "infer_color":
            if len(cls) != 1 or cnt != [1] or col[0] not in self.colors:
                return None
            return cls[0] * len(self.colors) + self.colors.index(col[0])
        if len(cls) != 2 or cls[0] == cls[1] or cnt != [1, 1] or col != [None, None]:
            return None
        if self.tag == "infer_object":
            if any("position" in c for c in include):
                return None
            return self._pair_ix.get((min(cls), max(cls)))
        rel_clause = include[1].get("position")
        if not rel_clause or rel_clause[0] not in RELATIONS:
            return None
        a, b, rel = cls[1], cls[0], rel_clause[0]
        rel = rel if a < b else INVERSE[rel]
        return _pair(a, b) * len(RELATIONS) + RELATIONS.index(rel)
