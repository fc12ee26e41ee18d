"""GenEval 2 (Kamath et al., 2025; facebookresearch/GenEval2, data CC BY-NC 4.0) on the shared benchmark runner.

``data`` reads the user's ``geneval2_data.jsonl`` (never shipped with reprompt) and holds the official Soft-TIFA
conventions (question suffix, accepted answers); ``generate`` is the task's runner layout; a *judge* answers
each atom's question with the probability of the expected answer: ``vqa`` (a local transformers VLM, by
default the official Qwen/Qwen3-VL-8B-Instruct, or an OpenAI-compatible endpoint) or ``oracle`` (the ``sketch``
simulator's drawn scene, for the questions a scene can answer); ``judges`` builds one by name;
``evaluate`` scores a run folder into Soft-TIFA AM/GM, per skill and per atomicity (the metrics of
``task.yaml``).
"""
