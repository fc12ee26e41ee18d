"""Training: SFT (``reprompt.train.sft``) then GRPO (``reprompt.train.grpo``) with TRL.

Configs live in ``config.py`` (TRL's SFTConfig/GRPOConfig plus reprompt's fields), recipes in ``configs/``.
Importing this package imports nothing heavy; the stage modules import TRL.
"""
