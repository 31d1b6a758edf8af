"""Prompt styles (paper Appendix C, plus the formats the RL baselines were trained with).

Within a family the same prompt is used for the base model, the ReasonMaxxer adapter and (unless
a baseline declares the prompt it was trained with) the RL baselines (App. C: "ensuring a fair
comparison"). The lm-eval tasks in ``tasks/`` render prompts through :func:`build_prompt` so the
text is defined once.
"""

from __future__ import annotations

from typing import Any

#: Paper App. C, "Qwen2.5 and Qwen3": raw completion prompt, no chat template.
QWEN_RAW = (
    "Solve the following math problem step by step. Put your final answer in \\boxed{{}}.\n\n"
    "Problem: {problem}\n\nSolution:"
)
#: Paper App. C, "Mistral-7B": instruction-answer format, no chat template.
MISTRAL_QA = "Question:\n{problem}\nAnswer:\nLet's think step by step."
#: Paper App. C, "DeepSeek-R1-Distill": one user message through the native chat template.
R1_USER = (
    "Solve the following math problem step by step. Give a concise solution and put your final "
    "answer in \\boxed{{}}.\n\nProblem: {problem}"
)
#: SimpleRL-Zoo (hkust-nlp/simpleRL-reason) Qwen prompt: ChatML with a step-by-step/\\boxed{} instruction.
SIMPLERL_CHATML = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{problem}\nPlease reason step by step, and put your final answer within "
    "\\boxed{{}}.<|im_end|>\n<|im_start|>assistant\n"
)
#: Open-Reasoner-Zero's training conversation with <think>/<answer> tags.
ORZ_THINK = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the User with "
    "the answer. The reasoning process is enclosed within <think> </think> and answer is enclosed within "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer "
    "here </answer>. User: You must put your answer inside <answer> </answer> tags, i.e., <answer> answer "
    "here </answer>. And your final answer will be extracted automatically by the \\boxed{{}} tag.\n"
    "This is the problem:\n{problem}\nAssistant: <think>"
)
#: PRIME-Zero (Eurus-2-7B-PRIME-Zero) prompt, Qwen ChatML with the step-by-step/\\boxed{} instruction.
PRIME_CHAT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{problem}\n\nPresent the answer in LaTex format: \\boxed{{Your answer}}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
#: The embedded synthetic benchmark (rmxbench/embedded): plain completion prompt.
TINY_STORY = "Problem: {problem}\nSolution:"

TEMPLATES: dict[str, str] = {
    "qwen_raw": QWEN_RAW,
    "mistral_qa": MISTRAL_QA,
    "simplerl_chatml": SIMPLERL_CHATML,
    "orz_think": ORZ_THINK,
    "prime_chat": PRIME_CHAT,
    "tiny_story": TINY_STORY,
}

#: Strings that end a completion early, per style (in addition to the tokenizer's EOS).
STOP_SEQUENCES: dict[str, list[str]] = {
    "qwen_raw": ["\n\nProblem:", "<|endoftext|>", "<|im_end|>"],
    "mistral_qa": ["\n\nQuestion:", "</s>"],
    "r1_chat": [],
    "simplerl_chatml": ["<|im_end|>", "<|endoftext|>"],
    "orz_think": ["</answer>", "User:"],
    "prime_chat": ["<|im_end|>", "<|endoftext|>"],
    "tiny_story": ["\nProblem:"],
}


def build_prompt(problem: str, style: str, tokenizer: Any | None = None) -> str:
    """Return the exact prompt text for ``problem`` in ``style``.

    ``r1_chat`` renders one user message with ``tokenizer.apply_chat_template(...,
    add_generation_prompt=True, tokenize=False)`` (paper App. C), so it needs the model's
    tokenizer. The other styles are fixed text.

    Raises:
        ValueError: unknown style, or ``r1_chat`` without a tokenizer that has a chat template.
    """
    if style == "r1_chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt style 'r1_chat' needs a tokenizer with a chat template")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": R1_USER.format(problem=problem)}],
            tokenize=False,
            add_generation_prompt=True,
        )
    try:
        template = TEMPLATES[style]
    except KeyError:
        raise ValueError(f"unknown prompt style {style!r}; known: {sorted([*TEMPLATES, 'r1_chat'])}") from None
    return template.format(problem=problem)
