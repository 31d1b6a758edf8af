"""Per-token entropy of the frozen base (paper Eq. 2, §5.2): chunking, alignment, masks, units."""

from __future__ import annotations

import math

import torch

from rmxbench.method.entropy import decision_mask, entropy_from_hidden, score_sequences, token_entropy


def _tiny_model(seed=0, vocab=40):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg).eval()


def test_uniform_distribution_has_entropy_log_v_nats():
    V = 7
    hidden = torch.zeros(1, 5, V)
    H = entropy_from_hidden(hidden, lambda h: h, chunk_size=2)
    assert H.shape == (1, 5)
    assert torch.allclose(H, torch.full((1, 5), math.log(V)))
    # a one-hot-ish distribution has (near) zero entropy
    hidden[0, 0, 3] = 100.0
    assert float(entropy_from_hidden(hidden, lambda h: h, chunk_size=3)[0, 0]) < 1e-6


def test_chunked_entropy_equals_full_and_is_shifted_to_the_predicted_token():
    model = _tiny_model()
    ids = torch.randint(1, 40, (2, 11))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # right padding on the second row
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    logp = torch.log_softmax(logits, -1)
    full = -(logp.exp() * logp).sum(-1)  # entropy at each position (predicting the next token)
    for chunk in (1, 3, 512):
        H = token_entropy(model, ids, mask, chunk_size=chunk)
        assert H.shape == ids.shape
        assert float(H[0, 0]) == 0.0 and float(H[1, 0]) == 0.0
        # H[:, t] is the entropy of the distribution that predicted token t
        assert torch.allclose(H[0, 1:], full[0, :-1], atol=1e-5)
        assert torch.allclose(H[1, 1:8], full[1, :7], atol=1e-5)
        assert torch.all(H[1, 8:] == 0)  # padding never has entropy


def test_score_sequences_handles_ragged_lengths():
    model = _tiny_model(seed=3)
    seqs = [[5, 6, 7, 8, 9], [1, 2], [3, 4, 5, 6, 7, 8, 9, 10]]
    out = score_sequences(model, seqs, batch_size=2, chunk_size=3)
    assert [len(h) for h in out] == [5, 2, 8]
    for s, h in zip(seqs, out):
        ref = token_entropy(model, torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long))[0]
        assert torch.allclose(h, ref, atol=1e-5)


def test_decision_mask_excludes_prompt_and_padding():
    H = torch.tensor([[2.0, 2.0, 0.1, 2.0, 0.5, 3.0]])
    completion = torch.tensor([[False, False, True, True, True, False]])  # prompt 0-1, padding 5
    assert decision_mask(H, completion, 0.3).tolist() == [[False, False, False, True, True, False]]
    assert decision_mask(H, completion, 1.0).tolist() == [[False, False, False, True, False, False]]
    assert not decision_mask(H, completion, 10.0).any()


def test_peft_model_entropy_is_the_base_entropy():
    """With an adapter that has moved away from zero, entropy still comes from the frozen base."""
    from peft import LoraConfig, get_peft_model

    model = _tiny_model(seed=5)
    ids = torch.randint(1, 40, (1, 9))
    mask = torch.ones_like(ids)
    ref = token_entropy(model, ids, mask)
    pm = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)
    assert torch.allclose(token_entropy(pm, ids, mask), ref, atol=1e-6)
    with torch.no_grad():
        lg = pm(input_ids=ids).logits
    lp = torch.log_softmax(lg, -1)
    adapted = -(lp.exp() * lp).sum(-1)[0, :-1]
    assert not torch.allclose(adapted, ref[0, 1:], atol=1e-3)  # the adapter does change the model
