"""The prompt parsing T2I-CompBench's scorers need: noun phrases, nouns, adjectives, counted objects.

The official scorers call spaCy's ``en_core_web_sm``. That model is not on PyPI, so :func:`get_analyzer`
uses spaCy when both are installed and otherwise a small rule-based tagger written for these prompts
(determiner/preposition/verb lexicons, suffix rules, nouns by default). Scores name the backend used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from reprompt.errors import RepromptError
from reprompt.utils.english import CARDINALS, IRREGULAR_SINGULARS


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------------------------- lexicons

_DET = _words("a an the this that these those some each every another any no its his her their my your our")
_CCONJ = _words("and or but nor")
_ADP = _words(
    "of on in at by with from to into onto over under above below behind beside besides near next between among "
    "around through across against along inside outside underneath beneath atop toward towards upon within "
    "without past for during after before like off up down out via amid amidst throughout"
)
_AUX = _words(
    "is are was were be been being am has have had do does did will would can could should may might must"
)
_PRON = _words("it they he she them him we us i you itself themselves who which what whose")
_ADV = _words("very too also together away back just still even so really quite always never not lazily")
_ADJ = _words(
    # colours
    "red orange yellow green blue purple pink brown black white gray grey golden silver beige violet "
    "turquoise teal maroon navy crimson ivory cream tan olive magenta cyan lavender bronze colorful "
    # shapes and sizes
    "round square oval rectangular circular triangular cubic spherical cylindrical conical pyramidal oblong "
    "hexagonal pentagonal octagonal curved straight flat wide narrow thin thick big small large tiny tall "
    "short long huge little giant massive miniature "
    # textures and materials used as adjectives
    "wooden metallic plastic fluffy leather rubber fabric furry soft hard smooth rough shiny glossy matte "
    "silky velvety fuzzy woolen woollen knitted ceramic porcelain crystal transparent sparkling "
    # common descriptive adjectives in the prompts
    "fresh juicy ripe crisp crunchy old new young ancient modern hot cold cool warm bright dark light sweet "
    "sour spicy sticky tender heavy striped spotted dotted patterned sleek rustic vintage elegant cozy cute "
    "beautiful pretty ugly happy sad angry calm quiet loud busy empty full clean dirty wet dry sharp dull "
    "grand intricate delicate fragile sturdy rusty dusty shiny majestic lush vibrant pale deep high low "
    "gentle wild tame open closed broken fancy plain simple dense sunny rainy snowy cloudy frozen fluffy reddish "
    "bluish greenish bold"
)
_ADJ_SUFFIXES = ("ful", "ous", "ive", "less", "able", "ible", "ical", "ular", "shaped", "colored", "coloured")
_VERB = _words(
    "sat lay lies lie ran runs run flew flies swam swims hung hangs stood stands ate eats drank drinks held holds "
    "rode rides wore wears made makes took takes gave gives saw sees grew grows fell falls sit sits stand "
    "stands hang perched perches rests rest leans lean lies floats float sings sing plays play reads read "
    "looks look watches watch chases chase walks walk jumps jump swims contrasted contrasts supported "
    "supports poured pours zoomed zooms flowed flows dripped drips simmered simmers cooked cooks rolled rolls "
    "nestled sits seated placed put shines shone glows glowed gathered grazed lounged passed ticked quacked "
    "leaped leapt sizzled unloaded floated provided stuck picked danced added telling tells led lead leads hold "
    "hidden hides hide carries carry carried covers cover covered surrounds surround surrounded"
)
# Colour words that are nouns at the end of a phrase ("a blue orange").
_COLOR_NOUNS = _words("orange gold silver cream olive navy ivory tan lavender bronze crystal")
_NOUN_LY = _words("family lily belly jelly fly butterfly dragonfly holly bully ally rally")
# fmt: off
_NOUN_ING = _words("building ring king wing string painting ceiling clothing pudding wedding evening morning "
                "railing icing dumpling sapling swing thing")
# fmt: on

_TOKEN_RE = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*|\d+(?:\.\d+)?|[^\sA-Za-z\d]")

# fmt: off
POSITION_WORDS = ("on side of", "next to", "near", "on the left of", "on the right of", "on the bottom of",
                  "on the top of", "on top of")
# fmt: on
"""2D relations in the order the official scorer searches the prompt for them."""
COMPLEX_PREPOSITIONS = (
    "on top of",
    "on bottom of",
    "on the left",
    "on the right",
    "next to",
    "on side of",
    "near",
)
DEPTH_WORDS = ("in front of", "behind", "hidden")


@dataclass(frozen=True)
class Token:
    text: str
    pos: str  # spaCy's coarse tags: NOUN PROPN ADJ VERB AUX ADP DET NUM CCONJ PRON ADV PUNCT


class TextAnalyzer(Protocol):
    name: str

    def tag(self, text: str) -> list[Token]: ...


# ------------------------------------------------------------------------------------------ analyzers


class RuleAnalyzer:
    """Lexicon + suffix tagger: good enough for T2I-CompBench's short, regular prompts, no model needed."""

    name = "rules"

    def tag(self, text: str) -> list[Token]:
        return list(_tag_rules(text))


@lru_cache(maxsize=4096)
def _tag_rules(text: str) -> tuple[Token, ...]:
    words = _TOKEN_RE.findall(text)
    tags: list[str] = []
    for i, w in enumerate(words):
        lw = w.lower()
        prev = tags[-1] if tags else None
        if not w[0].isalnum():
            tag = "PUNCT"
        elif lw in _DET:
            tag = "DET"
        elif lw in CARDINALS or lw[0].isdigit():
            tag = "NUM"
        elif lw in _CCONJ:
            tag = "CCONJ"
        elif lw in _ADP:
            tag = "ADP"
        elif lw in _AUX:
            tag = "AUX"
        elif lw in _PRON:
            tag = "PRON"
        elif lw in _ADV or (lw.endswith("ly") and len(lw) > 4 and lw not in _NOUN_LY):
            tag = "ADV"
        elif lw in _ADJ or lw.endswith(_ADJ_SUFFIXES):
            tag = "ADJ"
        elif lw in _VERB:
            tag = "VERB"
        elif lw.endswith("ing") and len(lw) > 4 and lw not in _NOUN_ING:
            # "a sleeping cat" (modifier before a noun) vs "a cat sleeping" / "is sleeping"
            nxt = words[i + 1].lower() if i + 1 < len(words) else ""
            if prev in ("DET", "ADJ", "NUM"):  # "the fluffy meeting" is a noun
                tag = "ADJ" if nxt.isalpha() and nxt not in _ADP | _DET | _CCONJ | _AUX else "NOUN"
            else:
                tag = "VERB"
        elif lw.endswith("ed") and len(lw) > 4:
            nxt = words[i + 1].lower() if i + 1 < len(words) else ""
            modifier = (
                prev in ("DET", "ADJ", "NUM", "CCONJ", None) and nxt.isalpha() and nxt not in _ADP | _DET
            )
            tag = "ADJ" if modifier else "VERB"
        else:
            tag = "NOUN"
        tags.append(tag)
    for i, w in enumerate(words):  # "a blue orange": a colour word heading its phrase is a noun
        nxt = tags[i + 1] if i + 1 < len(tags) else None
        if (
            tags[i] == "ADJ"
            and w.lower() in _COLOR_NOUNS
            and i
            and tags[i - 1] in ("DET", "ADJ")
            and nxt not in ("ADJ", "NOUN")
        ):
            tags[i] = "NOUN"
    return tuple(Token(w, t) for w, t in zip(words, tags, strict=True))


class SpacyAnalyzer:
    """spaCy ``en_core_web_sm``: exactly what the official scorers use."""

    def __init__(self, model: str = "en_core_web_sm") -> None:
        try:
            import spacy

            self._nlp = spacy.load(model)
        except (ImportError, OSError) as err:
            raise RepromptError(
                f"spaCy model {model!r} is not installed ({err}); install spacy and the model, or use the "
                "built-in rule-based parser (--nlp rules)"
            ) from err
        self.name = f"spacy:{model}-{self._nlp.meta.get('version', '?')}"

    def tag(self, text: str) -> list[Token]:
        return [Token(t.text, t.pos_) for t in self._nlp(text)]

    def noun_chunks(self, text: str) -> list[str]:
        return [c.text for c in self._nlp(text).noun_chunks]


def get_analyzer(name: str = "auto") -> TextAnalyzer:
    """``spacy`` (official, needs en_core_web_sm), ``rules`` (built in) or ``auto`` (spaCy if installed)."""
    if name == "rules":
        return RuleAnalyzer()
    if name == "spacy":
        return SpacyAnalyzer()
    if name == "auto":
        try:
            return SpacyAnalyzer()
        except RepromptError:
            return RuleAnalyzer()
    raise RepromptError(f"unknown text analyzer {name!r}: use auto, spacy or rules")


# ------------------------------------------------------------------------------------------ extraction


def noun_chunks(text: str, analyzer: TextAnalyzer) -> list[str]:
    """Base noun phrases ("a green bench", "the brown coat rack"), as spaCy's ``doc.noun_chunks``."""
    own = getattr(analyzer, "noun_chunks", None)
    if own is not None:
        return own(text)
    chunks: list[str] = []
    current: list[Token] = []

    def close() -> None:
        while current and current[-1].pos != "NOUN":  # a phrase ends on its head noun
            current.pop()
        if any(t.pos == "NOUN" for t in current):
            chunks.append(" ".join(t.text for t in current).replace(" ,", ","))
        current.clear()

    toks = analyzer.tag(text)
    for i, tok in enumerate(toks):
        nxt = toks[i + 1].pos if i + 1 < len(toks) else None
        if tok.text == "," and current and current[-1].pos == "ADJ" and nxt == "ADJ":
            current.append(tok)  # "the bold, vibrant colors"
        elif tok.pos in ("DET", "NUM"):
            close()
            current.append(tok)
        elif tok.pos in ("ADJ", "NOUN", "PROPN"):
            if tok.pos == "ADJ" and current and current[-1].pos == "NOUN":
                close()
            current.append(Token(tok.text, "NOUN" if tok.pos == "PROPN" else tok.pos))
        else:
            close()
    close()
    return chunks


def nouns(text: str, analyzer: TextAnalyzer) -> list[str]:
    return [t.text for t in analyzer.tag(text) if t.pos == "NOUN"]


def without_adjectives(text: str, analyzer: TextAnalyzer) -> str:
    """The prompt with adjectives removed, tokens joined by spaces (official CLIP score for 'complex')."""
    return " ".join(t.text for t in analyzer.tag(text) if t.pos != "ADJ")


def find_relation(prompt: str, vocabulary: tuple[str, ...]) -> str | None:
    """First relation of ``vocabulary`` (in its order) that occurs in the prompt as a substring."""
    return next((word for word in vocabulary if word in prompt), None)


def simple_pair(prompt: str, analyzer: TextAnalyzer) -> tuple[str | None, str | None]:
    """Objects of an "A rel B" prompt: the first and the last noun (official 2D/3D scorers)."""
    ns = nouns(prompt, analyzer)
    return (ns[0], ns[-1]) if ns else (None, None)


def complex_pair(prompt: str, analyzer: TextAnalyzer) -> tuple[str | None, str | None]:
    """Objects around the spatial preposition of a complex sentence (official ``--complex`` parsing):
    the nearest noun before the preposition and the first noun after it; (None, None) unless exactly two."""
    toks = analyzer.tag(prompt)
    objects: list[str] = []
    for i in range(len(toks)):
        k = next(
            (n for n in (3, 2, 1) if " ".join(t.text for t in toks[i : i + n]) in COMPLEX_PREPOSITIONS), 0
        )
        if not k:
            continue
        for j in range(i - 1, -1, -1):
            if toks[j].pos in ("NOUN", "PROPN"):
                objects.append(toks[j].text)
                break
        after = next((t.text for t in toks[i + k :] if t.pos == "NOUN"), None)
        if after is None:
            after = next(
                (
                    t.text
                    for j, t in enumerate(toks[i + k : -1], i + k)
                    if t.pos == "PROPN" and toks[j + 1].pos != "PROPN"
                ),
                None,
            )
        if after is not None:
            objects.append(after)
    return (objects[0], objects[1]) if len(objects) == 2 else (None, None)


def counted_objects(
    prompt: str, analyzer: TextAnalyzer, known: Callable[[str], bool] | None = None
) -> list[tuple[str, int]]:
    """(object, count) pairs of a numeracy prompt: "two boys and a cat" -> [("boy", 2), ("cat", 1)].

    Like the official scorer, a number word (one ... eight, or "a"/"an") must directly precede the object;
    two-word objects ("traffic lights") are taken when ``known(pair)``. The official scorer accepts only
    objects from its generation vocabulary; without that list "a"/"an" + noun counts only when
    ``known(noun)`` (the detector can name it), so "gathered for a picnic" adds no object.
    """
    toks = analyzer.tag(prompt)
    known = known or (lambda _name: False)
    out: list[tuple[str, int]] = []
    for i, tok in enumerate(toks[:-1]):
        word = tok.text.lower()
        if word not in CARDINALS and word not in ("a", "an"):
            continue
        j = i + 1
        while j < len(toks) and toks[j].pos == "ADJ":  # "two red apples": skip to the noun
            j += 1
        if j >= len(toks) or toks[j].pos not in ("NOUN", "PROPN"):
            continue
        name = singular(toks[j].text.lower())
        if j + 1 < len(toks) and toks[j + 1].pos == "NOUN":
            pair = f"{toks[j].text.lower()} {singular(toks[j + 1].text.lower())}"
            if known(pair):
                name = pair
        if word in ("a", "an") and not known(name):
            continue
        out.append((name, CARDINALS.get(word, 1)))
    return out


# In these prompts "glasses" are drinking glasses, and "buses" is no "buse".
_IRREGULAR = {**IRREGULAR_SINGULARS, "skis": "skis", "glasses": "glass", "buses": "bus"}
_SAME = _words("sheep fish deer shrimp moose bison salmon trout squid series species aircraft skis")


def singular(word: str) -> str:
    """English singular of a plural noun (rules plus the irregular nouns of the prompts)."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w in _SAME or len(w) <= 3 or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if (
        w.endswith(("ches", "shes", "xes", "zes", "sses"))
        or w.endswith("oes")
        and w not in ("shoes", "canoes")
    ):
        return w[:-2]
    if w.endswith("s"):
        return w[:-1]
    return w
