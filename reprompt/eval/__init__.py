"""Evaluation: benchmark scorers (GenEval, T2I-CompBench). Submodules load lazily; nothing heavy here."""
