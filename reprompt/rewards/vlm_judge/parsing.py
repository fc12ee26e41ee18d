"""Reading a judge's reply: the one marked 0-10 score, or None when there is none or the reply is ambiguous
(:func:`parse_score`), and its mapping to a reward in [-1, 1] (:func:`to_reward`). Pure functions."""

from __future__ import annotations

import json
import re

_NUM = r"(-?\d+(?:\.\d+)?)"  # signed, so "-3" is read (and refused) rather than taken as 3
_MD = r"[\s*_`\"']*"  # markdown and quotes around labels and numbers ("**Score:** `7`")
_OUT_OF_TEN = r"(?:\s*(?:/|out\s+of)\s*10(?!\d))?"
# Marked final scores: "Final score: 7", "Overall: 7/10", "Total score = 7", "<score>7</score>".
_FINAL_RE = re.compile(
    rf"\b(?:(?:final|overall)(?:\s+(?:score|rating|grade|verdict|answer))?|total\s+(?:score|rating))"
    rf"{_MD}(?:[:=]|\bis\b){_MD}{_NUM}",
    re.IGNORECASE,
)
_TAG_RE = re.compile(rf"<(score|rating|answer)>\s*{_NUM}{_OUT_OF_TEN}\s*</\1>", re.IGNORECASE)
# Labelled scores: "Score: 7", "**Rating:** 7/10", "score = 7.5".
_LABEL_RE = re.compile(rf"\b(?:score|rating){_MD}[:=]{_MD}{_NUM}", re.IGNORECASE)
# Loose mentions: "score 3 for counting", "I'd rate it 8 out of 10", "6/10".
_LOOSE_RE = re.compile(
    rf"\b(?:scores?|rating|rate[sd]?\s+(?:it|this|the\s+image)|give\s+it)(?:\s+(?:of|is|at|a|an))?"
    rf"{_MD}[:=]?{_MD}{_NUM}"
    rf"|{_NUM}\s*(?:/|out\s+of)\s*10(?!\d)",
    re.IGNORECASE,
)
_BARE_RE = re.compile(rf"^[\s*\"'`]*{_NUM}{_OUT_OF_TEN}[\s.*\"'`]*$", re.IGNORECASE)
_JSON_KEYS = ("final_score", "overall_score", "score", "rating", "overall")


def _json_scores(text: str) -> list[float]:
    """The score of a JSON object reply ('{"score": 7}', also inside a ```json fence)."""
    spans = [text[text.find("{") : text.rfind("}") + 1], *re.findall(r"\{[^{}]*\}", text)]
    for span in spans:
        try:
            obj = json.loads(span)
        except ValueError:
            continue
        if isinstance(obj, dict):
            lower = {str(k).lower(): v for k, v in obj.items()}
            raw = next((lower[k] for k in _JSON_KEYS if k in lower), None)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return [float(raw)]
            bare = _BARE_RE.match(raw) if isinstance(raw, str) else None  # "7", "7/10"
            return [float(bare.group(1))] if bare else []
    return []


def _line_start(text: str, match: re.Match[str]) -> bool:
    """Whether a labelled score opens its line or clause ('Score: 7', '- Score: 7', '..., score: 7'),
    rather than qualifying a sub-score ('counting score: 3')."""
    before = text[text.rfind("\n", 0, match.start()) + 1 : match.start()].rstrip(" *_`\"'#>-")
    return not before or not before[-1].isalnum()


def parse_score(text: str | None) -> float | None:
    """A 0-10 score from a judge's reply, or None when there is none, it is out of range, or the reply is
    ambiguous.

    Reads, from most to least explicit, the first kind present: a marked final score ("Final score: 7",
    "Overall: 7/10", "<score>7</score>", JSON {"score": 7}); a labelled score opening a line or clause
    ("Score: 7", "**Rating:** 7/10"), or a reply that is only a number ("7", "7/10", "7 out of 10");
    loose mentions ("I'd rate it 8 out of 10", "score 3 for counting"). The scores of that kind must
    agree: "Score: 2 ... Score: 6" or two loose sub-scores give None rather than a guess, while a
    marked or labelled score outranks loose sub-scores ("Score: 7 (score 3 for counting)" reads 7).
    """
    if not text or not text.strip():
        return None
    text = text.strip()
    labelled = [m for m in _LABEL_RE.finditer(text) if _line_start(text, m)]
    bare = _BARE_RE.match(text)
    kinds = (
        [float(v) for v in _FINAL_RE.findall(text)]
        + [float(v) for _, v in _TAG_RE.findall(text)]
        + _json_scores(text),
        [float(m.group(1)) for m in labelled] + ([float(bare.group(1))] if bare else []),
        [float(a or b) for a, b in _LOOSE_RE.findall(text)],
    )
    for scores in kinds:
        if scores:
            if len(set(scores)) > 1:
                return None  # several different scores of the same standing: refuse to guess
            return scores[0] if 0.0 <= scores[0] <= 10.0 else None
    return None


def to_reward(score: float | None) -> float | None:
    """0..10 -> -1..1."""
    return None if score is None else score / 5.0 - 1.0


Judgement = tuple[float | None, str | None]
"""One judgement: (0-10 score, failure reason); the score is None when the judgement failed."""
