"""Benchmarks of the toolkit itself: latency of rewriting vs rendering, and the iterative baseline.

``latency`` (timings, the accuracy/latency table) and ``iterative`` (render -> judge -> revise). Nothing
heavy is imported here.
"""
