"""A transformers causal LM as the policy (Qwen2.5-Instruct by default, any chat model works)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from reprompt.errors import ModelNotFoundError, RepromptError
from reprompt.format import PromptSpec
from reprompt.policy.base import GenerationOptions, PolicyLoadOptions, Rewriter
from reprompt.utils.dtypes import resolve_dtype
from reprompt.utils.hub import not_found

logger = logging.getLogger(__name__)

DEFAULT_POLICY = "Qwen/Qwen2.5-3B-Instruct"


def _load_error(id_or_path: str, err: Exception) -> ModelNotFoundError:
    return not_found("policy", id_or_path, err)


class RePrompter(Rewriter):
    """The reasoning rewriter over a transformers causal LM.

    Batched generation pads on the left so every row's completion starts at the same column; greedy by
    default, so batched and one-by-one rewriting agree.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        spec: PromptSpec | None = None,
        name: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec or PromptSpec()
        self.name = str(name or getattr(model.config, "_name_or_path", None) or "policy")
        if tokenizer.chat_template is None:
            raise RepromptError(f"{self.name!r} has no chat template: use an instruct/chat model")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_pretrained(
        cls,
        id_or_path: str = DEFAULT_POLICY,
        *,
        device: str = PolicyLoadOptions.device,
        dtype: str | Any | None = PolicyLoadOptions.dtype,
        spec: PromptSpec | None = None,
        base_model: str | None = None,
        trust_remote_code: bool = PolicyLoadOptions.trust_remote_code,
        subfolder: str | None = None,
        **model_kwargs: Any,
    ) -> RePrompter:
        """Load a local folder, a hub id, or a PEFT adapter folder (its base from the adapter config
        or ``base_model``); ``subfolder``: the model's folder inside it (PromptEnhancer-7B is
        ``tencent/HunyuanImage-2.1``, ``reprompt``). ``trust_remote_code`` stays off unless you ask for it.

        The prompt spec saved with a reprompt checkpoint (``reprompt_format.json``) is used unless
        ``spec`` is given, so a trained model is prompted exactly as in training."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch_dtype = resolve_dtype(dtype, device)
        where: dict[str, Any] = {"subfolder": subfolder} if subfolder else {}
        path = Path(id_or_path)
        adapter = path.is_dir() and (path / "adapter_config.json").exists()
        if path.exists() and not path.is_dir():
            raise ModelNotFoundError(f"{id_or_path!r} is a file; pass the model folder")
        base = id_or_path
        if adapter:
            cfg = json.loads((path / "adapter_config.json").read_text())
            base = base_model or cfg.get("base_model_name_or_path")
            if not base:
                raise RepromptError(f"adapter {id_or_path!r} names no base model: pass base_model=")
        try:
            model = AutoModelForCausalLM.from_pretrained(
                base,
                dtype=torch_dtype,
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
                **where,
                **model_kwargs,
            )
        except (OSError, ValueError) as e:
            raise _load_error(base, e) from e
        tok_src = id_or_path if (adapter and (path / "tokenizer_config.json").exists()) else base
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                tok_src, trust_remote_code=trust_remote_code, **({} if tok_src != base else where)
            )
        except (OSError, ValueError) as e:
            raise _load_error(tok_src, e) from e
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, id_or_path).merge_and_unload()
        if spec is None and path.is_dir():
            spec = PromptSpec.load(path)
        name = f"{id_or_path}/{subfolder}" if subfolder else str(id_or_path)
        return cls(model.to(device), tokenizer, spec=spec, name=name)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def encode(self, messages: list[list[dict[str, str]]]) -> Any:
        """Tokenize conversations exactly as training does (chat template + generation prompt)."""
        texts = [
            self.tokenizer.apply_chat_template(
                m, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
            )
            for m in messages
        ]
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)

    def generate(
        self, messages: list[list[dict[str, str]]], options: GenerationOptions
    ) -> list[list[tuple[str, int]]]:
        import torch

        enc = self.encode(messages).to(self.device)
        sample = options.temperature > 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=options.max_new_tokens,
            do_sample=sample,
            num_return_sequences=options.num_candidates,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id,
        )
        # Stop at the close of the prompt block: nothing after it is used (a plain-text rewriter: its own stops).
        stops = [self.fmt.prompt_close] if self.stop is None else list(self.stop)
        if stops:
            kwargs.update(stop_strings=stops, tokenizer=self.tokenizer)
        if options.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = options.repetition_penalty
        if sample:
            kwargs.update(temperature=options.temperature, top_p=options.top_p)
        else:  # silence model-card sampling defaults (e.g. Qwen ships temperature 0.7)
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if options.seed is not None:
            torch.manual_seed(options.seed)
        with torch.inference_mode():
            if options.prompt_lookup_num_tokens is None:
                out = self.model.generate(**enc, **kwargs)
            else:  # assisted decoding runs one sequence at a time: rows one by one, padding removed
                kwargs["prompt_lookup_num_tokens"] = options.prompt_lookup_num_tokens
                out = self._generate_rows(enc, kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        eos = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
        eos |= set(_as_list(self.model.generation_config.eos_token_id))
        results: list[list[tuple[str, int]]] = []
        for i in range(len(messages)):
            cands = []
            for row in new[i * options.num_candidates : (i + 1) * options.num_candidates].tolist():
                n = next((j for j, t in enumerate(row) if t in eos), len(row))
                cands.append((self.tokenizer.decode(row[:n], skip_special_tokens=True), n))
            results.append(cands)
        return results

    def _generate_rows(self, enc: Any, kwargs: dict[str, Any]) -> Any:
        """``generate`` row by row (prompt lookup needs batch 1), re-padded on the left to one tensor."""
        import torch

        pad = self.tokenizer.pad_token_id
        width = enc["input_ids"].shape[1]
        rows = []
        for ids, mask in zip(enc["input_ids"], enc["attention_mask"], strict=True):
            keep = mask.bool()
            out = self.model.generate(input_ids=ids[keep][None], attention_mask=mask[keep][None], **kwargs)[
                0, int(keep.sum()) :
            ]
            rows.append(out)
        longest = max(len(r) for r in rows)
        full = torch.full((len(rows), width + longest), pad, dtype=enc["input_ids"].dtype, device=self.device)
        full[:, :width] = enc["input_ids"]
        for i, r in enumerate(rows):
            full[i, width : width + len(r)] = r
        return full


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]
