"""The tokenization contract: prompt text → token ids, the same for every backend and stage.

Rollouts (HF and vLLM), entropy scoring and training (which reuse the rollouts' ids) and
lm-eval evaluation (HF and vLLM) must feed the model the same ids for the same prompt text.
The rule, defined once here (:func:`prompt_ids`):

1. encode the text with ``add_special_tokens=False`` (the text is exactly what
   :func:`rmxbench.evaluation.prompts.build_prompt` returns; chat templates already put their own BOS
   *text* in it);
2. if the tokenizer's configuration adds a BOS token (:func:`adds_bos`: encoding with special
   tokens puts ``bos_token_id`` first — Llama/Mistral-style tokenizers, ``add_bos_token: true``)
   and the ids do not already start with it, prepend ``bos_token_id``.

So BOS appears exactly once where the tokenizer asks for it, and never for tokenizers that do not
use one (Qwen2, the embedded tiny model). lm-eval's HF and vLLM models apply the same rule with
their default ``add_bos_token=None`` (encode with the tokenizer's special tokens unless the text
already starts with the BOS text), which ``tests/test_tokenization.py`` checks against the real
lm-eval classes; rmxbench never passes ``add_bos_token`` to lm-eval.
"""

from __future__ import annotations

from typing import Any, Sequence


def adds_bos(tokenizer: Any) -> bool:
    """True if ``tokenizer`` puts its BOS token first when asked for special tokens.

    Probed on a short text, so it follows the tokenizer's own configuration (``add_bos_token``,
    the fast tokenizer's post-processor) rather than a list of model families.
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def prompt_ids(tokenizer: Any, text: str, *, bos: bool | None = None) -> list[int]:
    """Token ids of prompt ``text`` under the contract (module docstring): BOS exactly once if the
    tokenizer uses one, no other special tokens.

    Args:
        tokenizer: a transformers tokenizer (or vLLM's wrapper of one).
        text: the exact prompt text.
        bos: :func:`adds_bos` of the tokenizer, if already known (saves the probe per prompt).
    Returns:
        ``list[int]`` of length P.
    """
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if bos is None:
        bos = adds_bos(tokenizer)
    if bos and not (ids and ids[0] == tokenizer.bos_token_id):
        ids = [int(tokenizer.bos_token_id)] + ids
    return ids


def batch_prompt_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """:func:`prompt_ids` for each text (one BOS probe for the batch)."""
    bos = adds_bos(tokenizer)
    return [prompt_ids(tokenizer, t, bos=bos) for t in texts]
