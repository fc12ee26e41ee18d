"""What a prompt asks for: objects (with count and colors), quoted text and capitalised names.

A deliberately small, rule-based reader (no tagger, no model): the prompt is split into quoted spans and
words, the words into noun chunks at function words, verbs and determiners, and the last content word of a
chunk is the object it names; numbers and colors inside the chunk (or a color stated after it: "the car is
red") belong to that object. A verb-looking word inside a noun phrase is an adjective ("a red knitted scarf",
"five lit candles"), and words that only carry quoted text ("the words", "the slogan") are not objects. The same reader reads the original and the rewrite, so its blind spots mostly
cancel out: a rewrite that keeps a phrase keeps whatever the reader made of it. Pure functions, cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from reprompt.guard import lexicon as lx

_QUOTE_RE = re.compile(r"“([^”]+)”|\"([^\"]+)\"|‘([^’]+)’|(?<!\w)'([^']+)'(?!\w)")
_TOKEN_RE = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?|\d+|[^\sA-Za-z\d]")
_SENTENCE_END = {".", "!", "?", ";", ":", "\n"}
_NAME_LINKS = {"of", "de", "da", "van", "von", "der", "del", "la", "le", "du", "st"}
_QUOTE_MARK = "\x00"  # stands in for a quoted span: a boundary, never a word


@dataclass(frozen=True)
class Mention:
    """A content word of a chunk. Only a chunk's head carries the chunk's count and colors."""

    word: str  # lower case, as written
    head: bool
    count: int | None = None  # explicit number (digits, number words, "a pair of")
    singular: bool = False  # "a"/"an"/"one" before it: an implicit count of one
    colors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectIntent:
    """One object the prompt names: ``text`` is the phrase shown in reports ("three cats")."""

    word: str
    text: str
    count: int | None = None
    singular: bool = False
    colors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Intent:
    """Everything the guard checks a rewrite against."""

    objects: tuple[ObjectIntent, ...] = ()
    quoted: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    """Colors not bound to any object ("in red and gold"): each must appear somewhere."""


@dataclass
class Reading:
    """The reader's view of one text (kept for the checker: mentions, words, colors, quotes)."""

    mentions: list[Mention] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # lower-cased words, quotes removed
    free_colors: list[str] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    names: list[tuple[str, ...]] = field(default_factory=list)  # lower-cased word sequences


@dataclass
class _Chunk:
    words: list[str] = field(default_factory=list)  # content words, lower case
    numbers: list[int] = field(default_factory=list)
    singular: bool = False
    colors: list[str] = field(default_factory=list)
    det: str | None = None
    predicate: bool = False  # right after a copula without a determiner ("is red", "is fluffy")
    sentence: int = 0
    group_count: int | None = None  # carried from "a pair of"
    before_name: bool = False  # "a vintage red | Vespa": the name is the head, not "vintage"


def _strip_quotes(text: str) -> tuple[str, list[str]]:
    quoted: list[str] = []

    def repl(m: re.Match[str]) -> str:
        inner = next(g for g in m.groups() if g is not None).strip()
        if any(ch.isalnum() for ch in inner):
            quoted.append(" ".join(inner.split()))
        return f" {_QUOTE_MARK} "

    return _QUOTE_RE.sub(repl, text), quoted


def _names(tokens: list[str]) -> tuple[list[tuple[str, ...]], set[int]]:
    """Runs of capitalised words that are not just a capitalised sentence start (title case is skipped)."""
    words = [i for i, t in enumerate(tokens) if t[:1].isalpha()]
    long_words = [i for i in words if len(tokens[i]) >= 4]
    capitalised = [i for i in long_words if tokens[i][:1].isupper()]
    shouting = not any(ch.islower() for t in tokens for ch in t)
    if shouting or (len(long_words) >= 3 and len(capitalised) >= 0.7 * len(long_words)):
        return [], set()  # "A Cat On A Red Couch", "A CAT": every word looks like a name
    starts = {0} | {i + 1 for i, t in enumerate(tokens) if t in _SENTENCE_END or t == _QUOTE_MARK}

    def cap(i: int) -> bool:
        t = tokens[i] if 0 <= i < len(tokens) else ""
        return t[:1].isupper() and t != "I" and (len(t) > 1 or t.isupper())

    def plain_start(i: int) -> bool:  # "The", "Three", "Red" at a sentence start are not names
        low = tokens[i].lower()
        return (
            low in lx.DETERMINERS
            or low in lx.FUNCTION_WORDS
            or lx.is_number(low)
            or low in lx.COLORS
            or low in lx.SKIP_WORDS
            or low in lx.NOT_OBJECTS
        )

    def cont(j: int) -> bool:  # the name goes on at j ("Leonardo da Vinci", "Spider-Man")
        link = tokens[j].lower() in _NAME_LINKS or tokens[j] == "-" if j < len(tokens) else False
        return cap(j) or (link and cap(j + 1))

    names: list[tuple[str, ...]] = []
    used: set[int] = set()
    i = 0
    while i < len(tokens):
        if not cap(i) or (i in starts and (plain_start(i) or not cont(i + 1))):
            i += 1
            continue
        j = i + 1
        while j < len(tokens) and cont(j):
            j += 1
        run = [t.lower() for t in tokens[i:j] if t[:1].isalpha()]
        names.append(tuple(w.removesuffix("'s").removesuffix("’s") for w in run))
        used |= set(range(i, j))
        i = j
    return names, used


def _chunks(tokens: list[str], skip: set[int]) -> list[_Chunk]:
    chunks: list[_Chunk] = []
    cur = _Chunk()
    sentence = 0
    after_copula = False
    carry: int | None = None  # "a pair of" -> the count of the next chunk

    def close() -> None:
        nonlocal cur, carry
        if cur.words or cur.colors:
            if carry is not None and not cur.numbers:
                cur.group_count = carry
            carry = None
            if cur.words and cur.words[-1] in lx.GROUP_NOUNS and (cur.det or not cur.numbers):
                carry = lx.GROUP_NOUNS[cur.words[-1]]
            chunks.append(cur)
        cur = _Chunk(sentence=sentence)

    for i, raw in enumerate(tokens):
        low = raw.lower()
        if i in skip:  # a name: ends the chunk, names are checked on their own
            cur.before_name = True
            close()
            continue
        if not low[:1].isalnum():
            if low in _SENTENCE_END:
                close()
                sentence += 1
                cur.sentence = sentence
                carry, after_copula = None, False
            elif low not in ("-", "'", "’"):
                close()
            continue
        if low == "of" and carry is not None and not cur.words:
            continue
        if low in lx.DETERMINERS or low in ("one", "single"):
            if cur.words or cur.numbers:
                close()
            if low in ("one", "single"):
                cur.numbers.append(1)
            cur.det = cur.det or low
            cur.singular |= low in lx.SINGULAR_DETERMINERS
            after_copula = False
            continue
        if lx.is_number(low):
            if cur.words:
                close()
            value = lx.number_value(low) or 0
            if low in ("dozen", "hundred") and cur.numbers:
                cur.numbers[-1] *= value  # "two dozen" is 24
            else:
                cur.numbers.append(value)
            continue
        if low in lx.SKIP_WORDS or lx.looks_like_adverb(low):
            continue
        if low in lx.FUNCTION_WORDS:
            close()
            after_copula = low in lx.COPULAS
            continue
        prev = tokens[i - 1].lower() if i else ""
        after_plural = bool(cur.words) and lx.looks_plural(cur.words[-1])
        verb = lx.looks_like_verb(low) or (
            after_plural
            and (low in lx.NOUN_VERB_BASES or (low in lx.NOUNS_ENDING_LIKE_VERBS and low.endswith("ing")))
        )  # ("four people walk", "three children building a sandcastle")
        if prev in lx.RELATIVE_PRONOUNS and lx.looks_plural(low):
            verb = True  # "a sign that reads ..."
        if verb and _modifies_next(cur, low, tokens, i):
            verb = False  # "a red knitted scarf", "5 lit candles", "a large folded map"
        if (
            verb
            and prev not in lx.ARTICLES
            and (cur.words or low in lx.VERB_FORMS or prev in lx.RELATIVE_PRONOUNS)
        ):
            close()
            after_copula = False
            continue
        if (
            low.endswith("s")
            and not low.endswith(("ss", "us", "is"))
            and cur.singular
            and cur.words
            and not cur.words[-1].endswith("s")
            and cur.words[-1] not in lx.COLORS
            and (low in lx.VERB_FORMS or not _content_word(tokens, i + 1))
        ):
            close()  # "a man holds a cup": a singular subject, then a verb (not "a wooden canvas bag")
            continue
        if not cur.words and not cur.colors and not cur.numbers and cur.det is None:
            cur.predicate = after_copula or lx.looks_like_verb(low)  # "... printed on it"
        after_copula = False
        if low in lx.COLORS and not (low in ("orange", "gold", "silver") and _is_head(tokens, i)):
            cur.colors.append(lx.same_color(low))
        elif low not in lx.COLOR_SHADES or not _next_is_color(tokens, i):
            cur.words.append(low.removesuffix("'s").removesuffix("’s"))
    close()
    return chunks


def _is_head(tokens: list[str], i: int) -> bool:
    """Is the word at ``i`` the last word of its chunk ("an orange" the fruit, "an orange cat" a color)?"""
    nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
    return not nxt[:1].isalpha() or nxt in lx.FUNCTION_WORDS or lx.looks_like_verb(nxt)


def _content_word(tokens: list[str], j: int) -> bool:
    """Is the token at ``j`` a word that can go on a noun phrase (not a function word, determiner, number,
    verb form or boundary)?"""
    if j >= len(tokens) or not tokens[j][:1].isalpha():
        return False
    low = tokens[j].lower()
    return not (
        low in lx.FUNCTION_WORDS
        or low in lx.DETERMINERS
        or lx.is_number(low)
        or (low in lx.VERB_FORMS and low not in lx.NOUNS_ENDING_LIKE_VERBS)
    )


def _modifies_next(cur: _Chunk, word: str, tokens: list[str], i: int) -> bool:
    """A verb-looking word used as an adjective inside a noun phrase: it comes after the phrase's
    determiner, number or color and before more of the phrase ("a red knitted scarf", "five lit candles",
    "two sleeping kittens"); a past participle also after an adjective ("a large folded map"), but not
    after a noun, where it is a verb ("a man holding flowers", "a car parked near a tree")."""
    if not _content_word(tokens, i + 1):
        return False
    started = cur.det is not None or bool(cur.numbers) or bool(cur.colors)
    if not cur.words:
        return started
    participle = word.endswith("ed") or word in lx.IRREGULAR_PARTICIPLES
    return started and participle and cur.words[-1] in lx.ADJECTIVES


def _next_is_color(tokens: list[str], i: int) -> bool:
    return i + 1 < len(tokens) and tokens[i + 1].lower() in lx.COLORS


def _head_ok(word: str, prev: str | None) -> bool:
    if prev is not None and (prev, word) in lx.COMPOUND_OBJECTS:
        return True
    return len(word) >= 2 and word.isalpha() and word not in lx.NOT_OBJECTS and not lx.looks_like_adverb(word)


@lru_cache(maxsize=8192)
def read(text: str) -> Reading:
    """Read ``text``: its mentions, words, unbound colors, quoted spans and names."""
    stripped, quoted = _strip_quotes(text)
    tokens = [t for line in stripped.split("\n") for t in (*_TOKEN_RE.findall(line), "\n")][:-1]
    names, name_tokens = _names(tokens)
    reading = Reading(quoted=quoted, names=names)
    reading.words = [t.lower() for t in tokens if t[:1].isalpha()]
    last_head: dict[int, int] = {}  # sentence -> index of its latest object mention
    for chunk in _chunks(tokens, name_tokens):
        words = chunk.words
        head_at = len(words) - 1
        if words and not _head_ok(words[head_at], words[head_at - 1] if head_at else None):
            head_at = -1
        if chunk.before_name or (chunk.predicate and chunk.det is None and not chunk.numbers):
            head_at = -1  # "the cat is fluffy": not an object
        if quoted and head_at >= 0 and words[head_at] in lx.TEXT_NOUNS:
            head_at = -1  # 'the words "OPEN"': the quote is the requirement, checked verbatim
        for k, w in enumerate(words):
            if k != head_at:
                reading.mentions.append(Mention(w, head=False))
        if head_at >= 0:
            count = chunk.numbers[-1] if chunk.numbers else chunk.group_count
            reading.mentions.append(
                Mention(words[head_at], True, count, chunk.singular and count is None, tuple(chunk.colors))
            )
            last_head[chunk.sentence] = len(reading.mentions) - 1
        elif chunk.colors:
            target = last_head.get(chunk.sentence)
            if not words and target is not None:  # "the car is red", "a woman dressed in red"
                m = reading.mentions[target]
                reading.mentions[target] = Mention(
                    m.word, True, m.count, m.singular, tuple(dict.fromkeys(m.colors + tuple(chunk.colors)))
                )
            else:
                reading.free_colors += chunk.colors
    return reading


def _phrase(m: Mention) -> str:
    number = "" if m.count is None else f"{m.count} "
    colors = " ".join(m.colors)
    return " ".join(p for p in (number.strip(), colors, m.word) if p)


@lru_cache(maxsize=8192)
def extract_intent(text: str) -> Intent:
    """What ``text`` asks for; mentions of the same noun are merged (their colors together)."""
    reading = read(text)
    merged: dict[frozenset[str], ObjectIntent] = {}
    for m in reading.mentions:
        if not m.head:
            continue
        key = next((k for k in merged if k & lx.noun_forms(m.word)), None)
        if key is None:
            merged[lx.noun_forms(m.word)] = ObjectIntent(m.word, _phrase(m), m.count, m.singular, m.colors)
            continue
        old = merged[key]
        count = old.count if old.count is not None else m.count
        merged[key] = ObjectIntent(
            old.word,
            old.text if old.count is not None or m.count is None else _phrase(m),
            count,
            old.singular and count is None,
            tuple(dict.fromkeys(old.colors + m.colors)),
        )
    return Intent(
        objects=tuple(merged.values()),
        quoted=tuple(dict.fromkeys(reading.quoted)),
        names=tuple(dict.fromkeys(" ".join(n) for n in reading.names)),
        colors=tuple(dict.fromkeys(reading.free_colors)),
    )
