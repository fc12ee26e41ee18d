"""The GenEval benchmark run: ``generate`` writes the official folder layout (resumable, shardable) and
``evaluate`` scores a run folder. GenEval's definitions and scorer (vocabulary, rules, detectors, colour
classifier) are :mod:`reprompt.geneval`, below every layer that uses them.
"""
