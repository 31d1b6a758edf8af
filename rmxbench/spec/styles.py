"""The prompt styles a spec may name (paper Appendix C, plus the formats the RL baselines were
trained with). Their templates and stop sequences are :mod:`rmxbench.evaluation.prompts`, keyed by
these names (``tests/test_tasks.py`` checks both name the same styles).

- ``qwen_raw``: Qwen2.5 / Qwen3 raw completion prompt, no chat template (App. C).
- ``mistral_qa``: "Question: ... Answer: Let's think step by step." (App. C).
- ``r1_chat``: DeepSeek-R1-Distill, one user message through the native chat template (App. C).
- ``simplerl_chatml``: SimpleRL-Zoo's Qwen ChatML prompt with a step-by-step/\\boxed{} instruction.
- ``orz_think``: Open-Reasoner-Zero's conversation with <think>/<answer> tags.
- ``prime_chat``: PRIME-Zero's (Eurus-2) system+user chat prompt.
- ``tiny_story``: the embedded synthetic benchmark's plain prompt.
"""

from __future__ import annotations

import typing
from typing import Literal

PromptStyle = Literal[
    "qwen_raw", "mistral_qa", "r1_chat", "simplerl_chatml", "orz_think", "prime_chat", "tiny_story"
]
#: Every prompt style, in the order above.
PROMPT_STYLES: tuple[str, ...] = typing.get_args(PromptStyle)
