"""The guard's English word knowledge: number words, plurals, colors, synonyms, function words and verbs.

General English, not the ``sketch`` simulator's reading rules: the simulator deliberately reads like a weak
text-to-image model (80 COCO classes, 10 colors, numbers up to twelve), while the guard must follow any
prompt a user writes. Number words and irregular plurals come from :mod:`reprompt.utils.english`, which the
simulator, the data and T2I-CompBench's parser share; its synonym table includes the simulator's synonyms
(``tests/test_guard.py`` checks that they stay included) but cannot import them: the guard sits below
``backbones`` in the package layers.
"""

from __future__ import annotations

from functools import lru_cache

from reprompt.utils.english import CARDINALS, IRREGULAR_SINGULARS

# fmt: off
NUMBER_WORDS: dict[str, int] = {
    **CARDINALS, "single": 1, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100,
    "dozen": 12,
}
"""Words that state a count ("a"/"an" state an implicit one and are handled apart)."""
GROUP_NOUNS: dict[str, int] = {"pair": 2, "couple": 2, "trio": 3, "quartet": 4}
"""``a pair of X``: the count belongs to X."""

COLORS: frozenset[str] = frozenset({
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",  # GenEval's
    "gray", "grey", "silver", "gold", "golden", "beige", "teal", "turquoise", "cyan", "magenta",
    "violet", "maroon", "navy", "crimson", "scarlet", "ivory", "lavender", "indigo", "amber", "khaki",
})
SAME_COLOR: dict[str, str] = {"grey": "gray", "golden": "gold"}
COLOR_SHADES = frozenset({"light", "dark", "pale", "bright", "deep", "vivid", "vibrant", "solid", "pastel"})

# Irregular plural -> singular (regular ones are handled by ``noun_forms``).
IRREGULAR_SINGULAR: dict[str, str] = IRREGULAR_SINGULARS
INVARIANT_NOUNS = frozenset({"sheep", "deer", "fish", "moose", "series", "species", "aircraft", "skis", "scissors"})

# Words that name the same thing, either way round.
SYNONYM_GROUPS: tuple[frozenset[str], ...] = tuple(frozenset(g) for g in (
    {"couch", "sofa"}, {"tv", "television"}, {"bicycle", "bike"}, {"motorcycle", "motorbike"},
    {"airplane", "aeroplane", "plane", "airliner"}, {"car", "automobile"}, {"donut", "doughnut"},
    {"refrigerator", "fridge"}, {"drier", "dryer", "hairdryer"}, {"racket", "racquet"},
    {"phone", "cellphone", "smartphone"}, {"tie", "necktie"}, {"handbag", "purse"},
    {"hydrant", "firehydrant"}, {"ski", "skis"}, {"person", "human"}, {"kid", "child"},
))
# A general word is kept by a more specific one ("a person" -> "a woman", "a car" -> "a sedan", "a bird" ->
# "a robin"), not the other way round: common kinds of the things image prompts name most.
_KINDS = {
    "person": """man woman boy girl child kid lady guy human baby toddler teenager gentleman mother father
        grandmother grandfather chef cook astronaut doctor nurse teacher student soldier farmer musician
        dancer athlete player worker firefighter policeman officer pilot artist painter skier surfer
        cyclist rider runner hiker businessman businesswoman sailor fisherman knight wizard""",
    "child": "boy girl kid toddler baby", "kid": "boy girl child toddler",
    "dog": """puppy retriever labrador poodle terrier beagle bulldog dachshund corgi husky shepherd
        collie chihuahua pug dalmatian greyhound spaniel rottweiler doberman""",
    "cat": "kitten kitty tabby", "horse": "pony stallion mare foal",
    "car": "sedan suv coupe convertible hatchback jeep limousine limo taxi cab minivan roadster racecar",
    "truck": "pickup lorry firetruck", "boat": """sailboat canoe kayak yacht rowboat ship ferry dinghy
        speedboat gondola""",
    "bird": """sparrow robin pigeon dove parrot crow raven eagle hawk owl seagull gull duck swan goose
        flamingo pelican hummingbird finch penguin heron stork peacock chicken hen rooster parakeet
        budgie magpie woodpecker""",
    "flower": """rose tulip daisy sunflower lily orchid poppy lotus peony carnation daffodil dandelion
        iris marigold hibiscus""",
    "tree": "oak pine palm maple birch willow cedar fir spruce elm cypress redwood sequoia baobab bonsai",
    "fruit": "apple pear banana orange grape strawberry cherry peach lemon lime mango pineapple plum",
    "insect": "bee butterfly ant beetle dragonfly ladybug moth grasshopper",
    "house": "cottage cabin mansion villa bungalow farmhouse", "shoe": "sneaker boot sandal loafer",
    "bag": "handbag backpack purse", "cup": "mug teacup", "hat": "cap beanie fedora",
    "chair": "armchair recliner", "plant": "houseplant", "remote": "control",
    "ball": "football basketball soccerball baseball volleyball",
}
SPECIFIC: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in _KINDS.items()}

# Nouns that frame, style or place a picture rather than name something in it.
NOT_OBJECTS: frozenset[str] = frozenset({
    "photo", "photograph", "image", "picture", "pic", "shot", "snapshot", "scene", "view", "render",
    "rendering", "illustration", "painting", "drawing", "sketch", "artwork", "art", "style", "background",
    "foreground", "composition", "lighting", "light", "detail", "quality", "resolution", "focus", "depth",
    "field", "color", "colour", "tone", "mood", "atmosphere", "side", "left", "right", "top", "bottom",
    "middle", "center", "centre", "front", "back", "corner", "edge", "half", "part", "area", "distance",
    "group", "bunch", "set", "lot", "number", "kind", "type", "sort", "variety", "piece", "version",
    "closeup", "close", "portrait", "frame", "canvas", "angle", "perspective", "way", "thing",
    "something", "everything", "nothing", "anything", "one", "ones", "time", "moment", "total",
    "realism", "photorealism", "hd", "uhd", "k", "cinematic", "aesthetic", "look", "shape", "texture",
    "pattern", "surface", "space", "position", "place", "arrangement", "layout", "size", "amount",
    "image's", "plenty", "pair", "couple", "trio", "quartet",
    "family", "flock", "herd", "swarm", "pack", "rest", "row", "line", "pile", "stack", "cluster", "collection",
})
COMPOUND_OBJECTS: frozenset[tuple[str, str]] = frozenset({("traffic", "light"), ("street", "light")})
"""(modifier, head) pairs that name an object although the head alone does not ("a traffic light")."""

DETERMINERS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "some", "each", "every", "another", "his",
    "her", "their", "its", "my", "your", "our", "no", "any", "several", "many", "few", "multiple",
    "various", "numerous", "both", "all",
})
SINGULAR_DETERMINERS = frozenset({"a", "an", "one", "this", "that", "each", "every", "another", "single"})
ARTICLES = frozenset({"a", "an", "the", "his", "her", "their", "its", "my", "your", "our", "no", "each", "every", "another"})
"""Determiners after which a verb-looking word is a noun ("a walk", "the fall"); not "that" ("that says")."""
SKIP_WORDS = frozenset({
    "exactly", "precisely", "only", "just", "about", "around", "roughly", "approximately", "nearly",
    "almost", "very", "really", "quite", "rather", "slightly", "extremely", "highly", "super", "total",
    "first", "second", "third", "fourth", "fifth", "last", "other", "same", "different", "such",
    "entirely", "completely", "fully", "totally", "uniformly", "also", "asleep", "awake", "alone",
    "together", "apart", "away", "alive", "afloat", "aglow", "ablaze", "nearby", "outdoors", "indoors",
    "overhead", "upside",
})
"""Words that are neither objects nor chunk boundaries ("exactly three cats", "the other dog")."""

FUNCTION_WORDS = frozenset({
    # prepositions
    "of", "on", "in", "at", "to", "with", "from", "by", "for", "into", "onto", "near", "next", "beside",
    "besides", "behind", "under", "over", "above", "below", "beneath", "underneath", "atop", "across",
    "along", "alongside", "around", "between", "among", "amid", "against", "through", "inside",
    "outside", "past", "toward", "towards", "via", "without", "within", "upon", "up", "down", "off",
    "out", "like", "as", "than", "per", "while", "during", "after", "before", "beyond", "throughout",
    # conjunctions, relatives, pronouns
    "and", "or", "but", "nor", "so", "yet", "whereas", "that", "which", "who", "whom", "whose", "where",
    "when", "it", "they", "them", "he", "she", "him", "we", "us", "i", "you", "itself", "themselves",
    "there", "here", "then", "not", "if", "because", "whether",
    # places ("a bird left of a couch", "the top of the image")
    "left", "right", "top", "bottom", "front", "center", "centre", "middle",
    # auxiliaries and copulas
    "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "do", "does", "did",
    "can", "could", "will", "would", "shall", "should", "may", "might", "must", "appears", "appear",
    "seems", "seem", "looks", "becomes", "become", "remains", "remain", "stays",
})
RELATIVE_PRONOUNS = frozenset({"that", "which", "who"})
COPULAS = frozenset({
    "is", "are", "was", "were", "be", "been", "being", "am", "appears", "appear", "seems", "seem",
    "looks", "becomes", "become", "remains", "remain", "stays",
})

# Verbs frequent in image prompts. Unambiguous ones in every form (base, -s, -ing, -ed); those that are
# also common nouns ("a red dress", "ocean waves") only as participles, so they never hide an object.
_VERBS = """
sit sleep hold wear eat jump swim hang lean hide chase climb sing stare graze perch sip gaze roam soar
hover stroll wander kneel crouch juggle throw hug kiss stretch yawn lounge bask pour push pull feed reach
laugh talk chat write build wash sew knit overlook surround say spell depict contain include make get go
come take give see keep bring lift emerge peer curl sprawl nestle huddle gather cuddle snuggle spill drip
melt burn sparkle twinkle reflect loom fade drift flow splash bloom wilt dangle sway flutter glisten gleam
arrange locate decorate illuminate
"""
_NOUN_VERBS = """
stand lie ride drink play run walk read float rest watch carry dance smile wait cook rise shine glow grow
fall cross sail drive pose sprint catch kick bark roar nap relax blow hit pet touch face point wave cry
type draw fix clean brush comb fill cover label title name call show feature use close stack line frame
border tower dress paint place position fly look open
"""
_IRREGULAR_VERB_FORMS = """
held worn wore ridden rode eaten ate drunk drank ran flown flew swum swam hung lain slept sat stood
hidden hid written wrote drawn drew built made thrown threw caught blown blew grown grew fallen
risen shone lit said spelt spelled given gave taken took gone went came seen shown done did kept brought
"""


def _verb_forms() -> frozenset[str]:
    def participles(v: str) -> set[str]:
        stem = v[:-1] if v.endswith("e") and not v.endswith(("ee", "ye", "oe")) else v
        if v.endswith("ie"):
            stem = v[:-2] + "y"
        out = {stem + "ing", (v + "d") if v.endswith("e") else stem + "ed"}
        if len(v) >= 3 and v[-1] not in "aeiouwxy" and v[-2] in "aeiou" and v[-3] not in "aeiou":
            out |= {v + v[-1] + "ing", v + v[-1] + "ed"}  # sit -> sitting, nap -> napped
        return out

    forms: set[str] = set(_IRREGULAR_VERB_FORMS.split())
    for v in set(_NOUN_VERBS.split()):
        forms |= participles(v)
    for v in set(_VERBS.split()):
        forms |= {v} | participles(v)
        if v.endswith(("s", "sh", "ch", "x", "z")):
            forms.add(v + "es")
        elif v.endswith("y") and v[-2:-1] not in tuple("aeiou"):
            forms.add(v[:-1] + "ies")
        else:
            forms.add(v + "s")
    return frozenset(forms)


VERB_FORMS: frozenset[str] = _verb_forms()
NOUN_VERB_BASES: frozenset[str] = frozenset(_NOUN_VERBS.split())
"""Verbs that are also nouns: verbs only after a plural subject ("people walk", not "a long walk")."""
"""Word forms that are verbs unless a determiner stands right before them ("a walk", "a watch")."""
IRREGULAR_PARTICIPLES = frozenset({
    "lit", "worn", "torn", "broken", "frozen", "woven", "sewn", "spun", "hidden", "fallen", "sunken",
    "burnt", "bent", "split", "cut", "stolen", "written", "drawn", "shaven", "knit", "spilt", "overgrown",
})
"""Past participles that do not end in -ed ("five lit candles", "a frozen lake")."""
ADJECTIVES = frozenset({
    "large", "big", "small", "little", "tiny", "huge", "giant", "miniature", "tall", "short", "long",
    "wide", "narrow", "thick", "thin", "round", "square", "flat", "old", "new", "young", "ancient",
    "vintage", "antique", "modern", "wooden", "metal", "plastic", "soft", "hard", "heavy", "shiny", "rusty",
    "dirty", "clean", "fancy", "simple", "beautiful", "pretty", "cute", "fluffy", "furry", "wet", "dry",
    "warm", "cold", "hot", "fresh", "ripe", "empty", "full", "cozy", "elegant", "delicate", "rustic",
    "colorful", "colourful", "wild", "happy", "sleepy", "lazy", "fat", "chubby", "skinny", "sturdy",
    "worn", "shabby", "crisp", "smooth", "rough", "bright", "dark", "pale", "deep", "handmade",
})
"""Frequent adjectives: a participle after one still describes the same noun ("a large folded map"),
while after a noun it is a verb ("a man folded the map")."""
TEXT_NOUNS = frozenset({
    "word", "words", "text", "texts", "phrase", "phrases", "letters", "lettering", "writing", "caption",
    "slogan", "message", "inscription", "quote", "quotation", "title", "headline", "tagline", "motto",
    "saying", "name", "names",
})
"""Nouns that name text rather than a thing ("the words", "the slogan"): in a prompt with quoted text the
quote itself is checked verbatim, so they are not objects a rewrite must repeat."""

NOUNS_ENDING_LIKE_VERBS = frozenset({
    "building", "painting", "ceiling", "ring", "king", "wing", "string", "spring", "swing", "sling",
    "ding", "pudding", "wedding", "clothing", "railing", "awning", "stocking", "earring", "duckling",
    "seedling", "sapling", "dumpling", "icing", "frosting", "topping", "filling", "lightning", "morning",
    "evening", "thing", "something", "nothing", "everything", "sibling", "darling", "bed", "shed",
    "sled", "seed", "weed", "reed", "feed", "steed", "red", "bread", "thread", "head", "forehead",
    "hundred", "shred",
})
ADVERB_EXCEPTIONS = frozenset({"family", "lily", "jelly", "belly", "holly", "bully", "ally", "rally", "gully",
                               "assembly", "supply", "butterfly", "dragonfly", "firefly", "fly", "italy"})
# fmt: on


def is_number(word: str) -> bool:
    return word in NUMBER_WORDS or word.isdigit()


def number_value(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)


def same_color(color: str) -> str:
    """One spelling per color ("grey" -> "gray", "golden" -> "gold")."""
    return SAME_COLOR.get(color, color)


@lru_cache(maxsize=65536)
def noun_forms(word: str) -> frozenset[str]:
    """The word and its plausible singulars ("buses" -> {buses, buse, bus}): two spellings name the same
    noun when their forms intersect. Over-generating is harmless because both sides are expanded."""
    w = word.lower()
    for suffix in ("'s", "’s", "'", "’"):
        w = w.removesuffix(suffix)
    out = {w}
    if w in IRREGULAR_SINGULAR:
        out.add(IRREGULAR_SINGULAR[w])
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss") and w not in INVARIANT_NOUNS:
        out.add(w[:-1])
        if w.endswith("es"):
            out.add(w[:-2])
        if w.endswith("ies"):
            out.add(w[:-3] + "y")
        if w.endswith("ves"):
            out |= {w[:-3] + "f", w[:-3] + "fe"}
    return frozenset(out)


@lru_cache(maxsize=65536)
def accepted_forms(word: str) -> frozenset[str]:
    """Every form that keeps ``word`` in a rewrite: its own forms, its synonyms' and, for a general
    word, the more specific words that stand for it."""
    forms = set(noun_forms(word))
    for f in list(forms):
        for group in SYNONYM_GROUPS:
            if f in group:
                forms |= group
        forms |= SPECIFIC.get(f, frozenset())
    return frozenset(forms)


def looks_like_verb(word: str) -> bool:
    """A listed verb form, or an -ing/-ed participle that is not a known noun."""
    if word in NOUNS_ENDING_LIKE_VERBS:
        return False
    if word in VERB_FORMS:
        return True
    return len(word) > 4 and word.endswith(("ing", "ed"))


def looks_plural(word: str) -> bool:
    return word in IRREGULAR_SINGULAR or (
        len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))
    )


def looks_like_adverb(word: str) -> bool:
    return len(word) > 5 and word.endswith("ly") and word not in ADVERB_EXCEPTIONS
