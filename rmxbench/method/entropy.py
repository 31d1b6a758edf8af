"""Per-token entropy of the frozen base model and entropy-gated decision points (paper §2.2 Eq. 2,
§5.2).

``H_t = -Σ_v p(v | x_<t) log p(v | x_<t)`` in nats, teacher-forced over prompt + completion.
``H[:, t]`` is the entropy of the distribution that *predicted token t* (computed from the
hidden state at position t-1); ``H[:, 0] = 0`` (nothing predicts the first token).

Memory: logits are never materialised for the whole sequence. The model returns only its last
hidden state ``[B, T, D]``; ``lm_head`` is applied to ``chunk_size`` positions at a time, so the
live float32 temporaries are two ``[B, chunk_size, V]`` blocks (at the default 256 positions and
V = 151,936: 2 x 156 MB) instead of ``[B, T, V]`` (2,048 positions: 1.2 GB each).

Entropy does not depend on τ: it is computed once per rollout set and stored (``entropy.pt``);
the gate ``H_t > τ`` is applied later, per τ (:func:`decision_mask`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch

DEFAULT_CHUNK = 256


def backbone(model: Any):
    """The transformer body of a causal LM (``model.model`` for Qwen2/Llama), through a PeftModel.

    Its forward returns ``last_hidden_state`` without computing logits.
    """
    m = model
    if hasattr(m, "get_base_model"):
        m = m.get_base_model()
    body = getattr(m, getattr(m, "base_model_prefix", "model"), None)
    if body is None:
        raise TypeError(f"cannot find the transformer body of {type(m).__name__}")
    return body


def output_head(model: Any, *, base: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """``lm_head`` of ``model`` (with ``base=True`` the frozen base layer if LoRA wraps it)."""
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = m.get_output_embeddings()
    if base and hasattr(head, "base_layer"):
        head = head.base_layer
    return head


def hidden_states(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last hidden state ``[B, T, D]`` of ``model`` (no logits computed)."""
    out = backbone(model)(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def entropy_from_hidden(hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
                        chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Entropy in nats of ``softmax(head(hidden))`` at every position, chunked over positions.

    Args:
        hidden: ``[B, T, D]``.
        head: maps ``[B, c, D]`` to logits ``[B, c, V]``.
    Returns:
        ``[B, T]`` float32: entropy of the next-token distribution *at* each position.
    """
    B, T, _ = hidden.shape
    out = torch.empty(B, T, dtype=torch.float32, device=hidden.device)
    for s in range(0, T, chunk_size):
        logits = head(hidden[:, s:s + chunk_size]).float()
        logp = torch.log_softmax(logits, dim=-1)
        del logits  # at most two [B, chunk, V] float32 blocks are alive at any time
        p = logp.exp()
        out[:, s:s + chunk_size] = -p.mul_(logp).sum(-1)
        del logp, p
    return out


@torch.no_grad()
def token_entropy(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                  chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Teacher-forced per-token entropy of ``model`` (adapter disabled if it is a PeftModel).

    Args:
        input_ids, attention_mask: ``[B, T]`` (right or left padded).
    Returns:
        ``H``: ``[B, T]`` float32 nats; ``H[:, t]`` is the entropy of ``p(· | x_<t)``;
        ``H[:, 0] = 0`` and padding positions are 0.
    """
    import contextlib

    ctx = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
    with ctx:
        h = hidden_states(model, input_ids, attention_mask)
        ent = entropy_from_hidden(h, output_head(model, base=True), chunk_size)
    H = torch.zeros_like(ent)
    H[:, 1:] = ent[:, :-1]
    valid = attention_mask.bool()
    H[:, 1:] *= (valid[:, 1:] & valid[:, :-1]).float()
    H[:, 0] = 0
    return H


def decision_mask(entropy: torch.Tensor, completion_mask: torch.Tensor, tau: float) -> torch.Tensor:
    """Decision points ``D = {t : H_t > τ}`` restricted to completion tokens (paper §5.2, App. B).

    Args:
        entropy: ``[B, T]`` or ``[T]`` nats (as from :func:`token_entropy`).
        completion_mask: same shape, True on generated completion tokens only (never prompt or
            padding).
        tau: threshold in nats.
    Returns:
        bool tensor of the same shape.
    """
    return (entropy > tau) & completion_mask.bool()


def padded_batches(sequences: Sequence[Sequence[int]], *, batch_size: int,
                   pad_id: int = 0) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Length-sorted, right-padded batches of unpadded token-id ``sequences`` (limits padding).

    Yields ``(idx, input_ids [b, W] long, attention_mask [b, W] long)`` on CPU, ``idx`` the
    positions in ``sequences`` of the b rows, W the longest of them.
    """
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        width = max(len(sequences[i]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(sequences[i])] = torch.as_tensor(list(sequences[i]))
            mask[r, :len(sequences[i])] = 1
        yield idx, ids, mask


def score_sequences(model: Any, sequences: list[list[int]], *, batch_size: int = 8,
                    chunk_size: int = DEFAULT_CHUNK, progress: Callable[[int], None] | None = None,
                    pad_id: int = 0) -> list[torch.Tensor]:
    """Per-token entropy for unpadded token-id ``sequences`` (batched, right-padded).

    Returns one float32 tensor ``[len(seq)]`` per sequence (entropy[0] = 0). Sequences are
    processed in length-sorted batches to limit padding.
    """
    device = next(model.parameters()).device
    out: list[torch.Tensor | None] = [None] * len(sequences)
    for idx, ids, mask in padded_batches(sequences, batch_size=batch_size, pad_id=pad_id):
        H = token_entropy(model, ids.to(device), mask.to(device), chunk_size=chunk_size).cpu()
        for r, i in enumerate(idx):
            out[i] = H[r, :len(sequences[i])].clone()
        if progress is not None:
            progress(len(idx))
    return out  # type: ignore[return-value]
