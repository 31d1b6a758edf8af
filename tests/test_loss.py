"""ReasonMaxxer loss (paper Eq. 5-7, App. B): hand-computed values, masks, KL anchor at init,
and the direction of one optimiser step."""

from __future__ import annotations

import math

import pytest
import torch

from rmxbench.method.loss import advantages, model_loss, reasonmaxxer_loss


def _logsoftmax(v):
    m = max(v)
    z = math.log(sum(math.exp(x - m) for x in v)) + m
    return [x - z for x in v]


def _kl(base_logits, theta_logits):
    lb, lt = _logsoftmax(base_logits), _logsoftmax(theta_logits)
    return sum(math.exp(b) * (b - t) for b, t in zip(lb, lt))


def test_advantages_population_std_and_clip():
    # rewards 1,0,0,0: mean 0.25, population std sqrt(0.25*0.75)
    a = advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), clip=2.5, eps=0.0)
    sd = math.sqrt(0.25 * 0.75)
    assert a.tolist() == pytest.approx([0.75 / sd, -0.25 / sd, -0.25 / sd, -0.25 / sd], rel=1e-6)
    # 1 of 8 correct: (1-1/8)/sqrt(1/8*7/8) = sqrt(7) = 2.645... -> clipped to 2.5
    a = advantages(torch.tensor([1.0] + [0.0] * 7), clip=2.5, eps=1e-6)
    assert float(a[0]) == pytest.approx(2.5)
    assert float(a[1]) == pytest.approx(-1 / math.sqrt(7), rel=1e-4)
    # all equal -> zero advantage
    assert advantages(torch.tensor([1.0, 1.0, 1.0])).abs().max() == 0


# Hand example: vocabulary of 3 tokens, two rollouts of one problem (batch of 2), T = 3.
# head = identity, so the "hidden states" are the logits themselves.
THETA = [[[0.2, -0.1, 0.5], [1.0, 0.0, -1.0], [0.0, 0.0, 0.0]],
         [[0.3, 0.3, -0.2], [-0.5, 0.7, 0.1], [2.0, 2.0, 2.0]]]
BASE = [[[0.0, 0.0, 0.4], [0.9, 0.1, -1.2], [0.0, 0.0, 0.0]],
        [[0.1, 0.5, -0.2], [-0.4, 0.6, 0.0], [1.0, 1.0, 1.0]]]
IDS = [[0, 1, 2], [0, 2, 0]]
MASK = [[1, 1, 1], [1, 1, 0]]  # rollout 1 ends with padding
# decision points: rollout 0 token t=2; rollout 1 token t=1; also (wrongly) flagged on the padding
# position of rollout 1 and on position 0 -> both must be ignored
DEC = [[True, False, True], [False, True, True]]
REWARDS = [1.0, 0.0]


def _hand(anchor_weight=0.2, floor=None):
    mean = sum(REWARDS) / 2
    sd = math.sqrt(sum((r - mean) ** 2 for r in REWARDS) / 2)  # population std = 0.5
    A = [(r - mean) / (sd + 1e-6) for r in REWARDS]
    # token x_t is predicted from position t-1
    lp0 = _logsoftmax(THETA[0][1])[IDS[0][2]]  # rollout 0, decision token t=2
    lp1 = _logsoftmax(THETA[1][0])[IDS[1][1]]  # rollout 1, decision token t=1
    terms = [-A[0] * lp0, -A[1] * lp1]
    if floor is not None and A[1] < 0 and math.exp(lp1) < floor:
        terms[1] = 0.0
    l_dec = sum(terms) / 2
    # anchor: valid non-decision positions: only rollout 0 token t=1 (prompt/completion alike)
    l_anchor = _kl(BASE[0][0], THETA[0][0]) / 1
    return l_dec + anchor_weight * l_anchor, l_dec, l_anchor, A


def _code(floor=None):
    A = advantages(torch.tensor(REWARDS), clip=2.5, eps=1e-6)
    return reasonmaxxer_loss(torch.tensor(THETA), torch.tensor(BASE), torch.tensor(IDS), torch.tensor(MASK),
                             torch.tensor(DEC), A, head=lambda h: h, base_head=lambda h: h,
                             anchor_weight=0.2, negative_floor=floor, chunk_size=2)


def test_loss_matches_hand_computation():
    total, l_dec, l_anchor, _ = _hand()
    out = _code()
    assert out.n_decision == 2 and out.n_anchor == 1
    assert float(out.dec_loss) == pytest.approx(l_dec, rel=1e-5)
    assert float(out.anchor_loss) == pytest.approx(l_anchor, rel=1e-5, abs=1e-6)
    assert float(out.loss) == pytest.approx(total, rel=1e-5)
    # mean KL on decision tokens: rollout 0 position 1, rollout 1 position 0
    dkl = (_kl(BASE[0][1], THETA[0][1]) + _kl(BASE[1][0], THETA[1][0])) / 2
    assert float(out.decision_kl) == pytest.approx(dkl, rel=1e-5, abs=1e-6)


def test_negative_floor_drops_unlikely_negative_terms():
    lp1 = _logsoftmax(THETA[1][0])[IDS[1][1]]
    floor = math.exp(lp1) + 0.01  # p_theta of the negative decision token is below this floor
    total, l_dec, _, _ = _hand(floor=floor)
    out = _code(floor=floor)
    assert out.floored == 1
    assert float(out.loss) == pytest.approx(total, rel=1e-5)
    assert float(out.dec_loss) == pytest.approx(l_dec, rel=1e-5)
    # a floor below p keeps the term
    out = _code(floor=math.exp(lp1) / 2)
    assert out.floored == 0 and float(out.loss) == pytest.approx(_hand()[0], rel=1e-5)


def test_no_decision_tokens_gives_pure_anchor():
    dec = torch.zeros(2, 3, dtype=torch.bool)
    out = reasonmaxxer_loss(torch.tensor(THETA), torch.tensor(BASE), torch.tensor(IDS), torch.tensor(MASK), dec,
                            torch.tensor([1.0, -1.0]), head=lambda h: h, base_head=lambda h: h, anchor_weight=0.5)
    # anchor positions: rollout 0 t=1,2; rollout 1 t=1 (t=2 is padding)
    kl = (_kl(BASE[0][0], THETA[0][0]) + _kl(BASE[0][1], THETA[0][1]) + _kl(BASE[1][0], THETA[1][0])) / 3
    assert out.n_decision == 0 and out.n_anchor == 3
    assert float(out.dec_loss) == 0.0
    assert float(out.loss) == pytest.approx(0.5 * kl, rel=1e-5, abs=1e-6)


def _tiny_lora_model(seed=0):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    base = Qwen2ForCausalLM(cfg)
    return get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                           lora_dropout=0.0, task_type="CAUSAL_LM"))


def _batch():
    ids = torch.tensor([[3, 4, 5, 6, 7, 8], [3, 4, 5, 9, 7, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    dec = torch.zeros(2, 6, dtype=torch.bool)
    dec[:, 3] = True  # same context "3 4 5": rollout 0 chose 6 (correct), rollout 1 chose 9 (incorrect)
    return {"input_ids": ids, "attention_mask": mask, "decision": dec, "advantage": torch.tensor([1.0, -1.0])}


def test_kl_anchor_is_exactly_zero_at_init():
    model = _tiny_lora_model()
    out = model_loss(model, _batch(), anchor_weight=0.2)
    assert out.n_anchor > 0
    assert float(out.anchor_loss) == 0.0
    assert float(out.decision_kl) == 0.0


def _decision_logp(model, batch):
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    lp = torch.log_softmax(logits[:, 2].float(), -1)  # position 2 predicts token 3
    return float(lp[0, batch["input_ids"][0, 3]]), float(lp[1, batch["input_ids"][1, 3]])


def test_one_step_moves_decision_logprobs_in_the_right_direction():
    model = _tiny_lora_model(seed=1)
    batch = _batch()
    before = _decision_logp(model, batch)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    out = model_loss(model, batch, anchor_weight=0.2)
    out.loss.backward()
    opt.step()
    model.eval()
    after = _decision_logp(model, batch)
    assert after[0] > before[0] + 1e-4, (before, after)  # correct rollout's decision token: up
    assert after[1] < before[1] - 1e-4, (before, after)  # incorrect rollout's decision token: down


def _fake_rollouts():
    # one problem, K=4: rewards 1,0,0,1; prompt of 3 tokens, completions of 5 tokens
    samples = [{"completion_ids": [10 + j, 11, 12, 13, 0], "reward": r} for j, r in enumerate([1.0, 0.0, 0.0, 1.0])]
    ent = [torch.tensor([0.0, 2.0, 2.0, 0.1, 0.9, 0.05, 0.7, 0.0]) for _ in samples]  # prompt 0-2 high: ignored
    return [{"id": "p", "prompt_ids": [1, 2, 3], "samples": samples}], {"p": ent}


def test_training_set_objectives():
    from rmxbench.method.trainer import build_training_set

    roll, ent = _fake_rollouts()
    kw = dict(max_seq_len=64, advantage_clip=2.5, advantage_eps=1e-6, seed=0)
    items, st = build_training_set(roll, ["p"], ent, tau=0.5, objective="contrastive", **kw)
    assert len(items) == 4
    # decision points: completion positions 3..7 with H > 0.5 -> positions 4 and 6 (prompt never)
    assert all(x["decision"].nonzero().flatten().tolist() == [4, 6] for x in items)
    assert [round(x["advantage"], 4) for x in items] == [1.0, -1.0, -1.0, 1.0]
    assert st["decision_fraction"] == pytest.approx(2 / 5)
    pos, _ = build_training_set(roll, ["p"], ent, tau=0.5, objective="positive_only", **kw)
    assert len(pos) == 2 and all(x["advantage"] > 0 for x in pos)
    rnd, st_r = build_training_set(roll, ["p"], ent, tau=0.5, objective="random_positions", **kw)
    assert st_r["decision_fraction"] == st["decision_fraction"]
    for x in rnd:  # same count per sequence, only completion positions
        idx = x["decision"].nonzero().flatten().tolist()
        assert len(idx) == 2 and all(3 <= i <= 7 for i in idx)
    assert len({tuple(x["decision"].nonzero().flatten().tolist()) for x in rnd}) > 1  # random, not the gate
    rnd2, _ = build_training_set(roll, ["p"], ent, tau=0.5, objective="random_positions", **kw)
    assert [x["decision"].tolist() for x in rnd] == [x["decision"].tolist() for x in rnd2]  # seeded
    trunc, _ = build_training_set(roll, ["p"], ent, tau=0.5, objective="contrastive", **{**kw, "max_seq_len": 5})
    assert all(len(x["input_ids"]) == 5 and x["decision"].nonzero().flatten().tolist() == [4] for x in trunc)
