"""T2I-CompBench (Huang et al., 2023): 8 categories, official file layout, transformers-based scorers.

``categories`` (task.yaml, prompt files, file names), ``nlp`` (prompt parsing), ``rules`` (pure decisions),
``metrics`` (BLIP-VQA, CLIP, depth, detector glue; ``DEVIATIONS``), ``generate`` (its runner layout) and
``evaluate``; the command line is :mod:`reprompt.cli.compbench`. Importing this package loads no torch.
"""
