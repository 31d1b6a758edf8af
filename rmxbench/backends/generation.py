"""Generation helpers shared by the two engine sessions (:mod:`rmxbench.backends.hf_session`,
:mod:`rmxbench.backends.vllm_session`): cutting completions at EOS and stop strings the same way,
and the LoRA rank an adapter needs from an engine.

Both sessions encode prompts with :func:`rmxbench.backends.tokenization.prompt_ids` (the
tokenization contract: the same ids for every backend and for lm-eval), and both return text cut
before the first stop string (the completion ids keep the token that completed it). Samples keep
the *token ids* the model produced (prompt ids + completion ids): training uses these ids
directly, text is never decoded and re-encoded for training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rmxbench.errors import UserError


def truncate_at_stop(ids: list[int], eos_ids: set[int], pad_id: int | None, tokenizer: Any,
                      stop: Sequence[str]) -> tuple[list[int], str]:
    """Cut ``ids`` after the first EOS (kept) and at the end of the first stop string; strip padding.

    Returns ``(ids, finish_reason)``.
    """
    for i, t in enumerate(ids):
        if t in eos_ids:
            return ids[: i + 1], "stop"
    if stop:
        # find the earliest token boundary whose decoded prefix contains a stop string
        def has_stop(n: int) -> bool:
            text = tokenizer.decode(ids[:n], skip_special_tokens=True)
            return any(s in text for s in stop)

        if has_stop(len(ids)):
            lo, hi = 1, len(ids)  # "prefix contains a stop string" is monotone in n: binary search
            while lo < hi:
                mid = (lo + hi) // 2
                if has_stop(mid):
                    hi = mid
                else:
                    lo = mid + 1
            return ids[:lo], "stop"
    if pad_id is not None:
        while ids and ids[-1] == pad_id and pad_id not in eos_ids:
            ids = ids[:-1]
    return ids, "length"


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the first stop string, as vLLM and lm-eval return it."""
    cut = min([i for i in (text.find(s) for s in stop) if i >= 0], default=len(text))
    return text[:cut]


def adapter_rank(adapter_dir: str | Path) -> int:
    """The largest LoRA rank in the PEFT adapter in ``adapter_dir``: its ``r`` and every
    ``rank_pattern`` value (a per-module rank may exceed ``r``; an engine must hold the largest).
    The config is read by :func:`rmxbench.backends.adapters.read_config` (the pre-flight's reader).

    Raises:
        UserError: no readable ``adapter_config.json`` with a positive integer ``r``.
    """
    from rmxbench.backends.adapters import read_config

    cfg = read_config(adapter_dir)
    return max([cfg["r"], *(cfg.get("rank_pattern") or {}).values()])


#: ``max_lora_rank`` values vLLM accepts (``vllm.config.lora.MaxLoRARanks``).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_lora_size(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds LoRA rank ``rank`` (smaller LoRA
    buffers decode faster).

    Raises:
        UserError: ``rank`` is above every size vLLM accepts.
    """
    fits = [x for x in VLLM_LORA_RANKS if x >= rank]
    if not fits:
        raise UserError(f"LoRA rank {rank} is above the largest rank vLLM serves ({VLLM_LORA_RANKS[-1]})",
                        hint="use `backend: hf` for this adapter")
    return fits[0]


def engine_lora_rank(adapter_dir: str | Path, max_lora_rank: int) -> int:
    """vLLM's ``max_lora_rank`` for one adapter: :func:`vllm_lora_size` of its :func:`adapter_rank`,
    within the protocol's cap ``max_lora_rank`` (``protocol.vllm.max_lora_rank``).

    Raises:
        UserError: the adapter's rank exceeds the cap or every size vLLM accepts.
    """
    r = adapter_rank(adapter_dir)
    if r > max_lora_rank:
        raise UserError(f"adapter {adapter_dir} has LoRA rank {r}, above protocol.vllm.max_lora_rank={max_lora_rank}",
                        hint=f"set `protocol.vllm.max_lora_rank` to one of {VLLM_LORA_RANKS} that is >= {r}")
    return vllm_lora_size(r)
