"""What every rewriter returns, and the shared rewrite loop over any text generator."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from reprompt.backbones.base import TokenCount
from reprompt.errors import RepromptError, check_choice, check_range
from reprompt.format import ParsedCompletion, PromptSpec, TagFormat, parse_completion
from reprompt.guard import GUARD_MODES, GuardReport, Rejected, check_intent, extract_intent
from reprompt.utils.dtypes import Placement
from reprompt.utils.endpoints import API_KEY_ENV, LOCAL_API_BASE

MAX_PROMPT_CHARS = 2000
"""User prompts longer than this are refused: T2I prompts are short, and the policy context is finite."""


@dataclass
class PolicyLoadOptions(Placement):
    """How a policy is loaded (where it runs, or which endpoint serves it); how it decodes is
    :class:`GenerationOptions`. The one home of these defaults: ``load_policy``, the loaders and the
    command-line flags read them here."""

    api_base: str = field(
        default=LOCAL_API_BASE, metadata={"help": "OpenAI-compatible base URL (policy openai)"}
    )
    api_model: str | None = field(default=None, metadata={"help": "model name at the endpoint"})
    api_key_env: str = field(
        default=API_KEY_ENV, metadata={"help": "environment variable holding the endpoint's key"}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow model repos to run their own code (off: safer)"}
    )


@dataclass
class GenerationOptions:
    """How the policy decodes. ``temperature=0`` is greedy (the paper's evaluation setting)."""

    max_new_tokens: int = field(
        default=256, metadata={"help": "tokens the policy may write (reference code: 256)"}
    )
    repetition_penalty: float = field(default=1.0, metadata={"help": ">1 discourages loops in small models"})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy; >0 samples"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass when sampling"})
    num_candidates: int = field(default=1, metadata={"help": "completions per prompt (needs sampling if >1)"})
    seed: int | None = field(default=None, metadata={"help": "sampling seed (reproducible candidates)"})
    batch_size: int = field(default=8, metadata={"help": "prompts per generate() call"})
    prompt_lookup_num_tokens: int | None = field(
        default=None,
        metadata={
            "help": "prompt-lookup decoding with N drafted tokens (same output; pays off on GPUs, one prompt "
            "at a time)",
            "metavar": "N",
        },
    )
    # --- intent guard (reprompt.guard) ---
    guard: str = field(
        default="off",
        metadata={
            "help": "intent guard: check that the rewrite keeps the prompt's objects, counts, colors, quoted "
            "text and names; warn = report only, retry = sampled candidates then the original, fallback = "
            "the original",
            "choices": GUARD_MODES,
        },
    )
    guard_candidates: int = field(
        default=4, metadata={"help": "retry: sampled candidates generated for a rewrite that violates"}
    )
    guard_temperature: float = field(
        default=0.7, metadata={"help": "retry: sampling temperature when decoding is greedy"}
    )

    def __post_init__(self) -> None:
        check_range("max_new_tokens", self.max_new_tokens, 1)
        check_range("temperature", self.temperature, 0)
        check_range("top_p", self.top_p, 0, 1, low_open=True)
        check_range("num_candidates", self.num_candidates, 1)
        if self.num_candidates > 1 and self.temperature == 0:
            raise RepromptError("num_candidates > 1 needs sampling: set temperature > 0 (e.g. 0.9)")
        check_range("batch_size", self.batch_size, 1)
        check_range("prompt_lookup_num_tokens", self.prompt_lookup_num_tokens, 1)
        if self.prompt_lookup_num_tokens is not None and self.num_candidates > 1:
            raise RepromptError("prompt lookup decodes one sequence at a time: use num_candidates 1")
        check_choice("guard", self.guard, GUARD_MODES)
        check_range("guard_candidates", self.guard_candidates, 1)
        check_range("guard_temperature", self.guard_temperature, 0, low_open=True)  # retries are sampled


@dataclass
class Rewrite:
    """One rewrite of a user prompt. ``prompt`` is what to render; it is the original on fallback."""

    original: str
    prompt: str
    reasoning: str
    completion: str
    format_ok: bool
    fallback: bool
    recovered: bool = False
    issue: str | None = None
    candidate: int = 0
    completion_tokens: int = 0
    prompt_tokens: int | None = None
    """Length of ``prompt`` in the target backbone's text-encoder tokens (None if no backbone given)."""
    token_limit: int | None = None
    truncated: bool | None = None
    """Whether the backbone's text encoder will cut ``prompt`` off."""
    seconds: float = 0.0
    """Wall time of the generate() call this rewrite came from, divided by the prompts in it (plus the
    guard's retry generation, if any)."""
    guard: GuardReport | None = None
    """The intent guard's findings (None when the guard is off). On a guard fallback ``prompt`` is the
    original, ``fallback`` is True and ``issue`` says what the rewrite dropped."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_prompt(prompt: str) -> str:
    """Reject prompts a user should fix: non-strings, empty, or absurdly long."""
    if not isinstance(prompt, str):
        raise RepromptError(f"a prompt must be a string, got {type(prompt).__name__}")
    text = prompt.strip()
    if not text:
        raise RepromptError("empty prompt: give a description of the image you want")
    if len(text) > MAX_PROMPT_CHARS:
        raise RepromptError(f"prompt is {len(text)} characters; the limit is {MAX_PROMPT_CHARS}")
    return text


TokenCounter = Callable[[str], TokenCount]


class ParsedText(str):
    """A completion text that arrives already parsed: a server that parsed it (``reprompt serve`` says
    what it made of each completion, after its own intent guard) is taken at its word instead of having
    the text parsed again. Still a ``str``, so every ``generate`` contract holds."""

    parsed: ParsedCompletion

    def __new__(cls, text: str, parsed: ParsedCompletion) -> ParsedText:
        obj = super().__new__(cls, text)
        obj.parsed = parsed
        return obj


def resolve_options(options: GenerationOptions | None, overrides: dict[str, Any]) -> GenerationOptions:
    """``options`` (default: greedy) with ``overrides`` (field names of :class:`GenerationOptions`) on top."""
    if options is None:
        return GenerationOptions(**overrides)
    return GenerationOptions(**{**asdict(options), **overrides}) if overrides else options


class Rewriter(ABC):
    """A policy: turns user prompts into :class:`Rewrite` objects.

    Subclasses implement :meth:`generate` over chat messages; parsing, fallback, length accounting and
    batching are shared here so every backend behaves the same.
    """

    spec: PromptSpec = PromptSpec()
    name: str = "rewriter"
    stop: tuple[str, ...] | None = None
    """Strings that end a completion (None: the backend's default, the close of the prompt block for a local
    model); a plain-text rewriter sets its recipe's."""
    chat_template_kwargs: dict[str, Any] = {}
    """Extra chat-template variables (``enable_thinking: false``): a plain-text rewriter sets its recipe's."""

    @property
    def fmt(self) -> TagFormat:
        return self.spec.fmt

    def parse(self, text: str, prompt: str) -> ParsedCompletion:
        """What a completion says: the reasoning and the prompt to render (``prompt`` on fallback)."""
        return parse_completion(text, prompt, self.fmt)

    def settings(self) -> dict[str, Any]:
        """The settings that decide what this rewriter writes, as recorded with benchmark runs."""
        return {"prompt_spec": asdict(self.spec)}

    @abstractmethod
    def generate(
        self, messages: list[list[dict[str, str]]], options: GenerationOptions
    ) -> list[list[tuple[str, int]]]:
        """For each conversation, ``num_candidates`` (text, n_tokens) completions."""

    def messages_for(self, prompt: str) -> list[dict[str, str]]:
        return self.spec.messages(prompt)

    def rewrite(
        self,
        prompts: str | Sequence[str],
        options: GenerationOptions | None = None,
        token_counter: TokenCounter | None = None,
        progress: bool = False,
        **overrides: Any,
    ) -> list[Rewrite]:
        """Rewrite one or many prompts. Returns ``len(prompts) * num_candidates`` rewrites, grouped
        by prompt. ``overrides`` set :class:`GenerationOptions` fields (e.g. ``temperature=0.9``)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = [check_prompt(p) for p in prompts]
        options = resolve_options(options, overrides)
        out = self._rewrite_all(prompts, options, token_counter, progress)
        if options.guard != "off":
            self._guard(out, options, token_counter)
        return out

    def _rewrite_all(
        self,
        prompts: list[str],
        options: GenerationOptions,
        token_counter: TokenCounter | None,
        progress: bool,
    ) -> list[Rewrite]:
        """``num_candidates`` rewrites of each (checked) prompt, in batches of ``options.batch_size``."""
        out: list[Rewrite] = []
        batches = range(0, len(prompts), options.batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="rewriting", unit="batch")
        for start in batches:
            chunk = prompts[start : start + options.batch_size]
            t0 = time.perf_counter()
            results = self.generate([self.messages_for(p) for p in chunk], options)
            per = (time.perf_counter() - t0) / len(chunk)
            for prompt, cands in zip(chunk, results, strict=True):
                for k, (text, n_tok) in enumerate(cands):
                    out.append(self._make(prompt, text, n_tok, k, per, token_counter))
        return out

    def _guard(
        self, rewrites: list[Rewrite], options: GenerationOptions, counter: TokenCounter | None
    ) -> None:
        """Check every rewrite against its original; in retry mode replace a violating one by the first
        passing sampled candidate, and in fallback mode (or when no candidate passes) by the original."""
        intents = {rw.original: extract_intent(rw.original) for rw in rewrites}
        for rw in rewrites:
            rw.guard = check_intent(intents[rw.original], rw.prompt)
        bad = [rw for rw in rewrites if not rw.guard.ok]  # type: ignore[union-attr]
        if not bad:
            return
        if options.guard == "warn":
            for rw in bad:
                rw.guard.action = "warned"  # type: ignore[union-attr]
            return
        spare: dict[str, list[Rewrite]] = {}
        if options.guard == "retry":
            retry = replace(
                options,
                guard="off",
                num_candidates=options.guard_candidates,
                temperature=options.temperature or options.guard_temperature,
                seed=options.seed if options.seed is not None else 0,
                prompt_lookup_num_tokens=None,
            )
            originals = list(dict.fromkeys(rw.original for rw in bad))
            for cand in self.rewrite(originals, options=retry, token_counter=counter):
                spare.setdefault(cand.original, []).append(cand)
        for rw in bad:
            report = rw.guard
            assert report is not None
            report.rejected.append(Rejected(rw.prompt, report.findings))
            for cand in spare.get(rw.original, []):
                report.attempts += 1
                verdict = check_intent(intents[rw.original], cand.prompt)
                if cand.fallback or not verdict.ok:
                    report.rejected.append(Rejected(cand.prompt, verdict.findings))
                    continue
                spare[rw.original].remove(cand)  # each candidate replaces one rewrite at most
                seconds = rw.seconds + cand.seconds
                for f in fields(Rewrite):
                    if f.name not in ("candidate", "guard"):
                        setattr(rw, f.name, getattr(cand, f.name))
                rw.seconds = seconds
                report.action = "retried"
                break
            else:
                rw.prompt, rw.fallback = rw.original, True
                rw.issue = "intent guard: " + "; ".join(str(f) for f in report.findings)
                report.action = "fallback"
                if counter is not None:
                    tc = counter(rw.prompt)
                    rw.prompt_tokens, rw.token_limit, rw.truncated = tc.tokens, tc.limit, tc.truncated

    def _make(
        self, prompt: str, text: str, n_tok: int, k: int, seconds: float, counter: TokenCounter | None
    ) -> Rewrite:
        # a server's own parse (reprompt serve's verdict) is taken at its word
        parsed = text.parsed if isinstance(text, ParsedText) else self.parse(text, prompt)
        rw = Rewrite(
            original=prompt,
            prompt=parsed.prompt,
            reasoning=parsed.reasoning,
            completion=str(text),
            format_ok=parsed.format_ok,
            fallback=parsed.fallback,
            recovered=parsed.recovered,
            issue=parsed.issue,
            candidate=k,
            completion_tokens=n_tok,
            seconds=seconds,
        )
        if counter is not None:
            tc = counter(rw.prompt)
            rw.prompt_tokens, rw.token_limit, rw.truncated = tc.tokens, tc.limit, tc.truncated
        return rw


class IdentityRewriter(Rewriter):
    """No rewriting: the baseline every comparison needs (``--policy none``). Keeps the :class:`Rewriter`
    contract: ``num_candidates`` rewrites per prompt (all the original), grouped by prompt."""

    name = "none"

    def generate(
        self, messages: list[list[dict[str, str]]], options: GenerationOptions
    ) -> list[list[tuple[str, int]]]:
        raise NotImplementedError("the identity rewriter generates nothing: rewrite() returns the originals")

    def _rewrite_all(
        self, prompts: list[str], options: GenerationOptions, token_counter: TokenCounter | None, _: bool
    ) -> list[Rewrite]:
        return [
            self.as_given(p, k, token_counter(p) if token_counter is not None else None)
            for p in prompts
            for k in range(options.num_candidates)
        ]

    @staticmethod
    def as_given(prompt: str, candidate: int = 0, length: TokenCount | None = None) -> Rewrite:
        """``prompt`` kept as it is, with its length in the target encoder's tokens when known."""
        rw = Rewrite(prompt, prompt, "", "", format_ok=True, fallback=False, candidate=candidate)
        if length is not None:
            rw.prompt_tokens, rw.token_limit, rw.truncated = length.tokens, length.limit, length.truncated
        return rw

    def _guard(
        self, rewrites: list[Rewrite], options: GenerationOptions, counter: TokenCounter | None
    ) -> None:
        """Nothing to check: every prompt is kept as given."""
