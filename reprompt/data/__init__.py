"""Training data: GenEval-style prompts with metadata, teachers, and the SFT JSONL builder.

Importing this package loads no model; the teachers import torch only when a policy teacher is built.
"""

from reprompt.data.prompts import (
    PromptGenConfig,
    generate_prompts,
    load_exclusions,
    load_prompts,
    split_prompts,
)
from reprompt.data.sft_data import SFTDataReport, build_sft_data, sft_examples
from reprompt.data.teachers import GroundedTeacher, PolicyTeacher, TeacherOutput, load_teacher
from reprompt.data.templates import load_vocabulary, meaning_key, parse_template

__all__ = [
    "GroundedTeacher",
    "PolicyTeacher",
    "PromptGenConfig",
    "SFTDataReport",
    "TeacherOutput",
    "build_sft_data",
    "generate_prompts",
    "load_exclusions",
    "load_prompts",
    "load_teacher",
    "load_vocabulary",
    "meaning_key",
    "parse_template",
    "sft_examples",
    "split_prompts",
]
