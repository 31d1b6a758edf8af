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
#: Verified verbatim against ``PROMPT_TEMPLATES["qwen-boxed"]`` of the math-eval harness that
#: simpleRL-reason ships (``examples/simplelr_math_eval/utils.py``, derived from QwenLM/Qwen2.5-Math
#: ``evaluation/utils.py``; SimpleRL-Zoo trains and evaluates with ``prompt_type=qwen-boxed``).
SIMPLERL_CHATML = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{problem}\nPlease reason step by step, and put your final answer within "
    "\\boxed{{}}.<|im_end|>\n<|im_start|>assistant\n"
)
#: Open-Reasoner-Zero's training conversation with <think>/<answer> tags. Verified against
#: Open-Reasoner-Zero ``playground/zero_setting_base.py`` (commit e008f6d9): the Jinja
#: ``prompt_template`` "...User: {{prompt}}\nAssistant: <think>" wrapped around the
#: ``prompt_instruction_template`` "You must put your answer ... \\boxed{} tag.\nThis is the
#: problem:\n{{prompt}}\n" (Jinja drops the single trailing newline, hence one "\n" before "Assistant:").
ORZ_THINK = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the User with "
    "the answer. The reasoning process is enclosed within <think> </think> and answer is enclosed within "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer "
    "here </answer>. User: You must put your answer inside <answer> </answer> tags, i.e., <answer> answer "
    "here </answer>. And your final answer will be extracted automatically by the \\boxed{{}} tag.\n"
    "This is the problem:\n{problem}\nAssistant: <think>"
)
#: PRIME-Zero (PRIME-RL/Eurus-2-7B-PRIME-Zero, RL from Qwen2.5-Math-7B without SFT): the "zero"
#: conversation prompt, no chat template, with PRIME's math instruction appended to the question.
#: The instruction "\n\nPresent the answer in LaTex format: \\boxed{Your answer}" is verified in
#: PRIME-RL/PRIME ``eval/scripts/eval/math/evaluate_math_chat_quicktest.py`` (``make_conv_hf``) and
#: the Eurus-2-SFT model card; the whole text equals ``apply_prime_zero_template`` of
#: sail-sg/understand-r1-zero ``evaluate_model.py`` (docstring: the PRIME-Zero model card,
#: huggingface.co/PRIME-RL/Eurus-2-7B-PRIME-Zero), also ``make_conv_zero`` in public eval scripts.
#: The style keeps its historical name ``prime_chat`` (the spec schema's literal).
PRIME_CHAT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: {problem}\n\nPresent the answer in LaTex format: \\boxed{{Your answer}}. Assistant:"
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
    "prime_chat": ["</answer>", "\nUser:", "<|im_end|>", "<|endoftext|>"],
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


#: Styles whose text is one user message rendered through the model's own chat template.
CHAT_STYLES = frozenset({"r1_chat"})


def task_prompt(problem: str, style: str) -> str:
    """The text lm-eval receives as the context for ``problem`` in ``style``.

    For fixed-text styles this equals :func:`build_prompt`. For chat styles (``r1_chat``) it is
    the user message only; lm-eval renders it through the tokenizer's chat template when run
    with ``apply_chat_template=True`` (``rmxbench eval`` does this for chat styles), which gives
    exactly ``build_prompt(problem, "r1_chat", tokenizer)``.

    Raises:
        ValueError: unknown style.
    """
    if style == "r1_chat":
        return R1_USER.format(problem=problem)
    return build_prompt(problem, style)


def truncate_at_stops(text: str, style: str) -> str:
    """Cut ``text`` at the first stop sequence of ``style`` (what generation with those stops returns)."""
    cut = len(text)
    for s in STOP_SEQUENCES.get(style, []):
        i = text.find(s)
        if 0 <= i < cut:
            cut = i
    return text[:cut]


def prompt_identity(style: str) -> dict[str, Any]:
    """What identifies prompt style ``style`` in content keys: its name, template text (None for the
    chat style ``r1_chat``, rendered by the model's chat template) and stop sequences, so a
    template edit re-keys every node that prompts with it."""
    return {"style": style, "template": TEMPLATES.get(style), "stop": STOP_SEQUENCES.get(style)}
