"""ReasonMaxxer loss: advantage-weighted contrastive loss at decision points plus a KL anchor to the
frozen base everywhere else (paper §5.3, Eq. 5-7; Appendix B).

- Advantage (Eq. 5): ``A_i = (r_i - mean(r)) / (std(r) + ε)`` over the K rollouts of one
  problem, clipped to ``[-c, c]`` (App. B: c = 2.5). **std is the population standard deviation**
  (divide by K, ``unbiased=False``): the paper calls σ_r "the standard deviation of the correctness
  indicators for that problem", a descriptive statistic of the K rollouts; with binary rewards and
  pass rate p it gives A = +sqrt((1-p)/p) for correct and -sqrt(p/(1-p)) for incorrect rollouts.
- Decision loss (Eq. 6): ``L_dec = mean_{t ∈ D} -A_i · log p_θ(x_t | x_<t)``.
- Anchor (Eq. 7): ``L_anchor = mean_{t ∉ D, t valid} KL(p_base(· | x_<t) ‖ p_θ(· | x_<t))`` over
  every valid prediction position that is not a decision point — prompt and completion tokens,
  never padding (App. B).
- ``L = L_dec + λ · L_anchor`` (App. B: λ = 0.2).

Each mean is over its token mask pooled across the micro-batch (App. B: "each averaged over their
respective token masks"); with the paper's batch size 1 that is per sequence. An empty mask
contributes 0.

Memory: ``log p_θ`` and the KL need the full vocabulary distribution at every position. They are
computed ``chunk_size`` positions at a time from the last hidden states through ``lm_head``, and
each chunk is wrapped in activation checkpointing, so only one ``[B, chunk, V]`` block of logits
exists at a time (forward and backward) — at V = 151,936 that is what makes a 2,048-token
sequence fit.

Collapse guard (rmxbench, not in the paper; recipe field ``negative_floor``): a negative-advantage
decision term is dropped (contributes 0; its token still counts in the mean's denominator) once
``p_θ(x_t)`` is below the floor, so the loss cannot keep pushing an already-unlikely token towards
probability 0 and spread its mass over garbage tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.checkpoint import checkpoint

Head = Callable[[torch.Tensor], torch.Tensor]


def advantages(rewards: torch.Tensor, *, clip: float = 2.5, eps: float = 1e-6) -> torch.Tensor:
    """Per-rollout normalised advantages of one problem (paper Eq. 5, clip from App. B).

    Args:
        rewards: ``[K]`` rewards r_i (0/1 correctness).
        clip: advantages are clipped to ``[-clip, clip]``.
        eps: ε in the denominator.
    Returns:
        ``[K]`` float32; ``(r - mean r) / (population std r + ε)``, clipped. All-equal rewards
        give zeros.
    """
    r = rewards.float()
    std = r.std(unbiased=False) if r.numel() > 1 else torch.zeros((), dtype=r.dtype)
    return ((r - r.mean()) / (std + eps)).clamp(-clip, clip)


@dataclass
class LossOutput:
    """Result of :func:`reasonmaxxer_loss`.

    Attributes:
        loss: scalar ``L = L_dec + λ L_anchor`` (requires grad in training).
        dec_loss: scalar ``L_dec`` (detached).
        anchor_loss: scalar ``L_anchor`` in nats (detached).
        decision_kl: mean KL(p_base ‖ p_θ) on decision tokens, nats (detached; a collapse signal).
        n_decision: decision tokens in the batch.
        n_anchor: anchor tokens in the batch.
        floored: negative-advantage decision terms dropped by the collapse guard.
    """

    loss: torch.Tensor
    dec_loss: torch.Tensor
    anchor_loss: torch.Tensor
    decision_kl: torch.Tensor
    n_decision: int
    n_anchor: int
    floored: int


def _chunk_stats(h: torch.Tensor, hb: torch.Tensor, tgt: torch.Tensor, head: Head,
                 base_head: Head) -> tuple[torch.Tensor, torch.Tensor]:
    logp = torch.log_softmax(head(h).float(), dim=-1)
    with torch.no_grad():
        blogp = torch.log_softmax(base_head(hb).float(), dim=-1)
    kl = (blogp.exp() * (blogp - logp)).sum(-1)
    lp = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    return lp, kl


def token_logp_and_kl(hidden: torch.Tensor, base_hidden: torch.Tensor, targets: torch.Tensor,
                      head: Head, base_head: Head, *, chunk_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p_θ(target)`` and ``KL(p_base ‖ p_θ)`` at every position, chunked over positions.

    Args:
        hidden: ``[B, T, D]`` hidden states of the trained model (requires grad in training).
        base_hidden: ``[B, T, D]`` hidden states of the frozen base (no grad).
        targets: ``[B, T]`` token ids predicted from each position.
        head / base_head: ``lm_head`` of the trained model / of the base (``[.., D] -> [.., V]``).
    Returns:
        ``(logp, kl)``, each ``[B, T]`` float32 (nats). In training every chunk is
        activation-checkpointed: its ``[B, chunk, V]`` logits are recomputed in backward.
    """
    lps, kls = [], []
    use_ckpt = torch.is_grad_enabled() and hidden.requires_grad
    for s in range(0, hidden.shape[1], chunk_size):
        args = (hidden[:, s:s + chunk_size], base_hidden[:, s:s + chunk_size], targets[:, s:s + chunk_size])
        if use_ckpt:
            lp, kl = checkpoint(_chunk_stats, *args, head, base_head, use_reentrant=False)
        else:
            lp, kl = _chunk_stats(*args, head, base_head)
        lps.append(lp)
        kls.append(kl)
    return torch.cat(lps, 1), torch.cat(kls, 1)


def reasonmaxxer_loss(hidden: torch.Tensor, base_hidden: torch.Tensor, input_ids: torch.Tensor,
                      attention_mask: torch.Tensor, decision: torch.Tensor, advantage: torch.Tensor, *,
                      head: Head, base_head: Head, anchor_weight: float = 0.2,
                      negative_floor: float | None = None, chunk_size: int = 256) -> LossOutput:
    """The ReasonMaxxer loss on one micro-batch (paper Eq. 6-7, App. B).

    Args:
        hidden: ``[B, T, D]`` last hidden states of the model with the adapter on.
        base_hidden: ``[B, T, D]`` the same with the adapter disabled (no grad).
        input_ids: ``[B, T]`` prompt + completion ids (any padding side).
        attention_mask: ``[B, T]`` 1 on real tokens, 0 on padding.
        decision: ``[B, T]`` bool, True where token t is a decision point (completion tokens with
            H_t > τ; see :func:`rmxbench.method.entropy.decision_mask`). Position 0 and padding are ignored.
        advantage: ``[B]`` per-sequence advantage A_i (already clipped).
        head / base_head: output projection of the trained model / of the base.
        anchor_weight: λ.
        negative_floor: collapse guard probability, or None (off).
    Returns:
        :class:`LossOutput`.
    """
    valid = attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()
    dec = decision[:, 1:].bool() & valid
    anc = valid & ~dec
    lp, kl = token_logp_and_kl(hidden[:, :-1], base_hidden[:, :-1], input_ids[:, 1:], head, base_head,
                               chunk_size=chunk_size)
    A = advantage.float().to(lp.device)[:, None].expand_as(lp)
    term = -A * lp
    floored = 0
    if negative_floor is not None and negative_floor > 0:
        drop = dec & (A < 0) & (lp.detach().exp() < negative_floor)
        floored = int(drop.sum())
        term = torch.where(drop, torch.zeros_like(term), term)
    n_dec, n_anc = int(dec.sum()), int(anc.sum())
    dec_f, anc_f = dec.float(), anc.float()
    L_dec = (term * dec_f).sum() / max(n_dec, 1)
    L_anchor = (kl * anc_f).sum() / max(n_anc, 1)
    loss = L_dec + anchor_weight * L_anchor
    with torch.no_grad():
        dkl = (kl * dec_f).sum() / max(n_dec, 1)
    return LossOutput(loss, L_dec.detach(), L_anchor.detach(), dkl.detach(), n_dec, n_anc, floored)


def model_loss(model: Any, batch: dict[str, torch.Tensor], *, anchor_weight: float = 0.2,
               negative_floor: float | None = None, chunk_size: int = 256) -> LossOutput:
    """:func:`reasonmaxxer_loss` for a peft ``PeftModel``: the base distribution comes from the same
    weights with the adapter disabled (``with model.disable_adapter():`` under ``no_grad``) — no
    second model copy.

    ``batch``: ``input_ids``, ``attention_mask``, ``decision`` (``[B, T]``) and ``advantage`` (``[B]``).
    """
    from rmxbench.method.entropy import hidden_states, output_head

    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad(), model.disable_adapter():
        base_h = hidden_states(model, ids, mask)
    h = hidden_states(model, ids, mask)
    return reasonmaxxer_loss(h, base_h, ids, mask, batch["decision"], batch["advantage"],
                             head=output_head(model), base_head=output_head(model, base=True),
                             anchor_weight=anchor_weight, negative_floor=negative_floor,
                             chunk_size=chunk_size)
