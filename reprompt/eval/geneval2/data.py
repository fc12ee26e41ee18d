"""GenEval 2's data file and the official Soft-TIFA conventions for asking its questions.

Each line of ``geneval2_data.jsonl`` is ``{"prompt", "atom_count", "vqa_list": [[question, answer], ...],
"skills": [skill, ...]}`` with one skill per question (object, attribute, count, position, verb). The file is
CC BY-NC 4.0: reprompt never ships it; the user points at their copy (tests and benchmarks read it under
``$REPROMPT_BENCHMARKS/geneval2``).

How the official ``evaluation.py`` (facebookresearch/GenEval2) asks a question, reproduced here: the question
plus " Answer in one word." as one user turn after the image; the score of a question is the judge's
probability, for its first answer token, of the expected answer written any of a few ways — "Yes", "yes",
" yes", " Yes" for yes/no questions; for "How many" questions the number word, capitalised, with a leading
space, and its digits (one .. ten; the official code writes "other" for any other number).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprompt.errors import RepromptError
from reprompt.utils.english import CARDINALS

SKILLS: tuple[str, ...] = ("object", "attribute", "count", "position", "verb")
"""The skills of GenEval 2's atoms, in the order the official per-skill analysis prints them."""

QUESTION_SUFFIX = " Answer in one word."
"""Appended to every question (official ``evaluation.py``)."""

YES_ANSWERS: tuple[str, ...] = ("Yes", "yes", " yes", " Yes")
"""The spellings of "yes" whose first-token probabilities are summed (official)."""


def number_digits(word: str) -> str:
    """The digits of a number word up to ten ("seven" -> "7"); "other" beyond, as the official code writes."""
    value = CARDINALS.get(word.lower())
    return str(value) if value is not None and value <= 10 else "other"


@dataclass(frozen=True)
class Atom:
    """One VQA question of a prompt with its expected answer and skill."""

    question: str
    answer: str
    skill: str

    @property
    def is_count(self) -> bool:
        return self.question.startswith("How many")

    def vqa_text(self) -> str:
        """The text the judge is asked (the question plus the official suffix)."""
        return self.question + QUESTION_SUFFIX

    def answers(self) -> tuple[str, ...]:
        """The spellings of the expected answer whose probabilities make the atom's soft score (official, in
        its order; repeats are kept, as the official sum keeps them)."""
        if not self.is_count:
            return YES_ANSWERS
        a, digits = self.answer, number_digits(self.answer)
        return (a, a.capitalize(), " " + a, " " + a.capitalize(), digits, " " + digits)


@dataclass(frozen=True)
class Geneval2Prompt:
    """One line of the data file (``index``: its 0-based line number among the prompts)."""

    index: int
    prompt: str
    atom_count: int
    atoms: tuple[Atom, ...]

    @property
    def skills(self) -> list[str]:
        return [a.skill for a in self.atoms]

    def line(self) -> dict[str, Any]:
        """The data line as the file writes it."""
        return {
            "prompt": self.prompt,
            "atom_count": self.atom_count,
            "vqa_list": [[a.question, a.answer] for a in self.atoms],
            "skills": self.skills,
        }


def parse_line(data: Any, index: int, where: str) -> Geneval2Prompt:
    """One data line, checked: the four keys, one skill per question, known skills, strings everywhere."""
    if not isinstance(data, dict):
        raise RepromptError(f"{where}: a GenEval 2 line must be a JSON object, got {type(data).__name__}")
    missing = [k for k in ("prompt", "atom_count", "vqa_list", "skills") if k not in data]
    if missing:
        raise RepromptError(
            f"{where}: missing {', '.join(missing)} (is this GenEval 2's geneval2_data.jsonl?)"
        )
    prompt, count, vqa, skills = data["prompt"], data["atom_count"], data["vqa_list"], data["skills"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise RepromptError(f"{where}: 'prompt' must be a non-empty string")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise RepromptError(f"{where}: 'atom_count' must be a whole number >= 1, got {count!r}")
    if not isinstance(vqa, list) or not isinstance(skills, list) or len(vqa) != len(skills) or not vqa:
        raise RepromptError(f"{where}: 'vqa_list' and 'skills' must be lists of the same, non-zero length")
    atoms = []
    for i, (pair, skill) in enumerate(zip(vqa, skills, strict=True)):
        ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) and x for x in pair)
        if not ok:
            raise RepromptError(f"{where}: vqa_list[{i}] must be a [question, answer] pair of strings")
        if skill not in SKILLS:
            raise RepromptError(
                f"{where}: skills[{i}] is {skill!r}; GenEval 2's skills are {', '.join(SKILLS)}"
            )
        atoms.append(Atom(pair[0], pair[1], skill))
    return Geneval2Prompt(index, prompt, count, tuple(atoms))


def read_data_file(path: str | Path) -> list[Geneval2Prompt]:
    """Every prompt of a GenEval 2 data file, checked line by line (errors name the file and line)."""
    path = Path(path)
    if not path.is_file():
        raise RepromptError(
            f"GenEval 2 data file {str(path)!r} not found: pass your copy of geneval2_data.jsonl "
            "(github.com/facebookresearch/GenEval2, CC BY-NC 4.0) with --data"
        )
    prompts: list[Geneval2Prompt] = []
    with path.open(encoding="utf-8") as f:
        for lineno, text in enumerate(f, 1):
            if not text.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                data = json.loads(text)
            except ValueError as e:
                raise RepromptError(f"{where}: not JSON ({e})") from e
            prompts.append(parse_line(data, len(prompts), where))
    if not prompts:
        raise RepromptError(f"{path} holds no prompts")
    return prompts
