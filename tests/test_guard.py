"""The intent guard's reading and checking (pure text), and the ``faithful`` reward component."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from reprompt.errors import ConfigError
from reprompt.format import parse_completion
from reprompt.guard import check_rewrite, extract_intent
from reprompt.guard.lexicon import accepted_forms, noun_forms
from reprompt.rewards import build_component
from reprompt.rewards.base import RewardBatch

FREEFORM = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "guard_prompts.txt"
CATS = "three cats sleeping on a red couch next to a laptop"
CATS_SMOLLM2_SKETCH = (  # what `reprompt rewrite` with the shipped smollm2-sketch adapter writes (greedy)
    "A solid red couch next to a laptop. A solid red couch on the left side of the image. A solid laptop on "
    "the right side of the image. Plain light background, sharp focus, realistic photo."
)


def kinds(original: str, rewrite: str) -> list[tuple[str, str]]:
    return [(f.kind, f.problem) for f in check_rewrite(original, rewrite).findings]


@pytest.mark.parametrize(
    ("original", "rewrite", "expected"),
    [
        # what smollm2-sketch writes today for the issue's example: no cats at all
        (CATS, CATS_SMOLLM2_SKETCH, [("object", "dropped")]),
        (CATS, "Exactly three cats are sleeping on a red sofa next to a laptop.", []),
        (CATS, "3 cats asleep on a red couch beside a laptop, soft light.", []),
        (CATS, "Two cats sleeping on a red couch next to a laptop.", [("count", "changed")]),
        (CATS, "Cats sleeping on a red couch next to a laptop.", [("count", "dropped")]),
        (CATS, "Three cats sleeping on a blue couch next to a laptop.", [("color", "changed")]),
        (CATS, "Three cats sleeping on a couch next to a laptop.", [("color", "dropped")]),
        (CATS, "Three cats sleeping on a red couch.", [("object", "dropped")]),
        # colors bound to the right object; a color on a new object is fine
        (
            "a photo of a red car and a blue bench",
            "A photo of a blue car and a red bench.",
            [("color", "changed"), ("color", "changed")],
        ),
        (
            "a photo of a red car and a blue bench",
            "A red car on the left. A bench on the right, painted blue.",
            [],
        ),
        ("a photo of a red car and a blue bench", "A car on the left and a blue bench; red tones.", []),
        ("a woman dressed in red walking a dog", "A woman in a red dress walks her puppy.", []),
        ("a photo of a grey cat", "A gray cat.", []),
        # counts: words, digits, "a pair of", implicit one
        ("a pair of red sneakers", "Two red sneakers on a white floor.", []),
        ("a pair of red sneakers", "Three red sneakers.", [("count", "changed")]),
        ("a photo of a dog", "Two dogs playing.", [("count", "changed")]),
        ("a single orange sailboat", "An orange sailboat on the bay.", []),
        ("twelve donuts in a pink box", "12 donuts in a pink box.", []),
        ("twelve donuts in a pink box", "A dozen donuts in a pink box.", []),
        ("twelve donuts in a pink box", "Two dozen donuts in a pink box.", [("count", "changed")]),
        # plurals, synonyms, general -> specific
        ("a photo of three buses", "Exactly three buses parked in a row.", []),
        ("two knives on a table", "Two knives lying on a wooden table.", []),
        ("four people crossing a street", "Exactly four people walk across the street.", []),
        ("a person on a skateboard", "A young woman riding a skateboard.", []),
        ("a woman on a skateboard", "A person riding a skateboard.", [("object", "dropped")]),
        ("a photo of a tv and a cell phone", "A television next to a smartphone.", []),
        # quoted text and names
        ('a neon sign that says "OPEN"', 'A glowing neon sign that says "OPEN" above a door.', []),
        ('a neon sign that says "OPEN"', 'A glowing neon sign that says "Open".', [("quoted", "changed")]),
        ('a neon sign that says "OPEN"', "A glowing neon sign above a door.", [("quoted", "dropped")]),
        ("a mug with 'Monday' printed on it", "A white mug printed with the word “Monday”.", []),
        ("Albert Einstein riding a bicycle", "A man riding a bike on the beach.", [("name", "dropped")]),
        ("Albert Einstein riding a bicycle", "albert einstein rides a vintage bicycle.", []),
        ("Leonardo da Vinci in his workshop", "Leonardo da Vinci sketching in a workshop.", []),
        ("Spider-Man eating a hot dog", "Spider-Man eats a hot dog on a rooftop.", []),
        ("A Cat On A Red Couch", "A cat on a red couch.", []),  # title case is not a list of names
        # more detail, style and layout never count against the rewrite
        (
            "a photo of a bird left of a couch",
            "A bird on the left side of the image, a brown couch on the right side. Soft light, high detail.",
            [],
        ),
    ],
)
def test_check_rewrite(original, rewrite, expected):
    assert kinds(original, rewrite) == expected


@pytest.mark.parametrize(
    ("original", "rewrite", "expected"),
    [
        # a verb-looking adjective between a color or number and its noun (issue 19): before, the color
        # moved to the previous object and the count was lost
        ("a cat and a red scarf", "A gray cat curled up beside a red knitted scarf.", []),
        (
            "a cat next to a red knitted scarf",
            "A red cat curled up beside a knitted scarf.",
            [("color", "changed")],
        ),
        ("five candles on a birthday cake", "A birthday cake with 5 lit candles.", []),
        ("a bowl of ramen with two eggs", "A bowl of ramen topped with two soft-boiled eggs.", []),
        ("two large maps", "Two large folded maps on a desk.", []),
        ("a man holding flowers", "A man holding a bunch of flowers.", []),  # after a noun, still a verb
        # an adjective ending in -s is not a singular subject's verb ("a man holds ...")
        ("a red wooden canvas bag", "A canvas bag, red, made of wood and cloth.", []),
        # words that carry quoted text are not objects (issue 19): the quote is checked verbatim
        ('a cake with the words "happy birthday"', 'A cake with "happy birthday" piped in icing.', []),
        ('a sign with the text "NO PARKING"', 'A metal sign reading "NO PARKING".', []),
        ('a shirt with the slogan "Stay Curious"', 'A white shirt printed with "Stay Curious".', []),
        ('a cake with the words "happy birthday"', "A chocolate cake on a plate.", [("quoted", "dropped")]),
        ("a letter on a desk", "A desk.", [("object", "dropped")]),  # no quote: a letter is a thing
        # a more specific word keeps a general one, for common kinds of things
        ("a blue car left of a hydrant", "A blue sedan parked left of a hydrant.", []),
        ("a bird on a branch", "A robin on a branch.", []),
        ("a robin on a branch", "A bird on a branch.", [("object", "dropped")]),  # not the other way round
    ],
)
def test_precision_classes(original, rewrite, expected):
    assert kinds(original, rewrite) == expected


def test_the_labelled_pairs_keep_their_measured_precision_and_recall():
    """benchmarks/guard_pairs.py on both labelled sets: no false alarm, and within what the guard claims
    to check it misses at most one unfaithful rewrite (RESULTS.md §10)."""
    from benchmarks.guard_pairs import SETS, evaluate, read_pairs

    for name, path in SETS.items():
        result = evaluate(read_pairs(path))
        assert result["false_alarms"] == [], name
        assert result["within_claims"]["false_negatives"] <= 1, name
    assert sum(len(read_pairs(p)) for p in SETS.values()) >= 100


def test_intent_of_the_issue_example():
    intent = extract_intent(CATS)
    assert [(o.word, o.count, o.colors) for o in intent.objects] == [
        ("cats", 3, ()),
        ("couch", None, ("red",)),
        ("laptop", None, ()),
    ]
    report = check_rewrite(CATS, CATS_SMOLLM2_SKETCH)
    assert not report.ok and report.findings[0].item == "3 cats"
    assert report.checked == 7 and report.failed == 2  # the cats and their count
    assert report.score == pytest.approx(5 / 7)
    assert "3 cats" in report.summary()


def test_quotes_names_and_free_colors_are_read():
    intent = extract_intent('A poster reading "SALE 50%" in New York')
    assert intent.quoted == ("SALE 50%",)
    assert intent.names == ("new york",)
    assert extract_intent("a black and white photo of a horse").colors == ("black", "white")


def test_a_prompt_always_keeps_itself(shared_benchmarks):
    prompts = [
        json.loads(ln)["prompt"] for ln in (shared_benchmarks / "geneval/evaluation_metadata.jsonl").open()
    ]
    prompts += [ln.strip() for ln in FREEFORM.open() if ln.strip() and not ln.startswith("#")]
    assert len(prompts) > 600
    for p in prompts:
        assert check_rewrite(p, p).ok, p
        assert check_rewrite(p, p.upper()).ok or extract_intent(p).quoted, p  # case only matters in quotes


def test_faithful_rewrites_of_every_geneval_prompt_pass(shared_benchmarks):
    """The grounded teacher restates every object, count and color in its own words: no finding."""
    from reprompt.data.teachers import GroundedTeacher

    metas = [json.loads(ln) for ln in (shared_benchmarks / "geneval/evaluation_metadata.jsonl").open()]
    outs = GroundedTeacher().write(metas)
    failures = []
    for meta, out in zip(metas, outs, strict=True):
        prompt = parse_completion(out.completion, meta["prompt"], out.fmt).prompt
        assert prompt != meta["prompt"]
        report = check_rewrite(meta["prompt"], prompt)
        if not report.ok:
            failures.append((meta["prompt"], prompt, [str(f) for f in report.findings]))
    assert failures == []


def test_lexicon_covers_the_simulators_synonyms_and_plurals():
    """The guard accepts every word the sketch simulator maps onto a class, and every irregular plural of the
    shared English table (reprompt.utils.english, which the simulator writes and reads with)."""
    from reprompt.backbones import sketch_text
    from reprompt.utils.english import IRREGULAR_PLURALS

    for cls, synonyms in sketch_text._SYNONYMS.items():
        for syn in synonyms:
            assert check_rewrite(f"a photo of a {cls}", f"a photo of a {syn}").ok, (cls, syn)
    for singular, plural in IRREGULAR_PLURALS.items():
        assert noun_forms(singular) & noun_forms(plural), (singular, plural)
    assert "sofa" in accepted_forms("couches") and "woman" in accepted_forms("people")


# ------------------------------------------------------------------------------------- faithful reward


def batch(originals, completions) -> RewardBatch:
    parsed = [parse_completion(c, o) for c, o in zip(completions, originals, strict=True)]
    n = len(completions)
    return RewardBatch(
        originals=list(originals),
        completions=list(completions),
        parsed=parsed,
        prompts=[p.prompt for p in parsed],
        metadata=[None] * n,
        seeds=[[0]] * n,
        groups=[0] * n,
    )


def test_faithful_reward_scores_against_the_original():
    reward = build_component("faithful")
    assert reward.name == reward.__name__ == "faithful" and reward.needs_images is False
    completions = [
        "<reason>Objects and colors as asked.</reason><prompt>Exactly three cats sleeping on a red couch next to a laptop.</prompt>",
        f"<reason>Objects and colors as asked.</reason><prompt>{CATS_SMOLLM2_SKETCH}</prompt>",
        "no tags at all",  # falls back to the original: nothing to judge
        "<reason>Objects and colors as asked.</reason><prompt>A bowl of fruit.</prompt>",
    ]
    scores = reward(batch([CATS] * 4, completions))
    assert len(scores) == 4
    assert scores[0] == 1.0 and scores[1] == pytest.approx(5 / 7) and scores[2] is None and scores[3] == 0.0


def test_faithful_reward_options_and_pickle():
    reward = build_component("faithful", {"low": -1.0, "high": 1.0, "on_fallback": -1.0})
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "faithful"
    scores = clone(
        batch(
            [CATS, CATS], [f"<reason>Objects and colors as asked.</reason><prompt>{CATS}</prompt>", "garbage"]
        )
    )
    assert scores == [1.0, -1.0]
    with pytest.raises(ConfigError):
        build_component("faithful", {"low": 1.0, "high": 0.0})
    with pytest.raises(ConfigError):
        build_component("faithful", {"weight_of_cats": 2})
