"""What rewriting costs next to rendering, and what it buys (``reprompt bench latency``).

``measure`` (rewrite and render timings, the accuracy/latency table) and ``iterative`` (the Idea2Img-style
render -> judge -> revise baseline). Not to be confused with the repository's ``benchmarks/`` scripts, which
produce the numbers in ``benchmarks/RESULTS.md``. Nothing heavy is imported here.
"""
