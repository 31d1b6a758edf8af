"""Adapter pre-flight (issue 18, item 5): an adapter that is not what it claims is refused with a
clear exit-1 error before anything is scored; one that is what it claims is served correctly.

Every adapter here is made with PEFT on the embedded tiny model (Qwen2, tied embeddings), then, for
the bad ones, changed the way the public bug reports describe (PEFT PR #2118, vLLM #9280,
LlamaFactory #9545): tensor names with another prefix, another architecture or size, a truncated
or empty file, a config without ``target_modules``, ranks that disagree with the config, full
copies of a resized vocabulary, DoRA/``modules_to_save``/embedding LoRA on vLLM, inits and biases
that rewrite the base. The issue's examples run as a user runs them (``rmxbench eval --adapter``;
a spec run for a recipe vLLM cannot serve). "Correct result" means: the served adapter's greedy
completions equal those of the adapter merged into the base (HF), and vLLM's equal HF's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rmxbench.backends.select import vllm_usable
from rmxbench.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
STOP = ("\nProblem:",)
_VLLM_OK, _VLLM_WHY = vllm_usable()


def vllm_test(f):
    """Marks a test that starts a vLLM engine (slow; skipped, with the reason, where vLLM is not usable)."""
    return pytest.mark.slow(pytest.mark.skipif(not _VLLM_OK, reason=f"vLLM backend not usable here: {_VLLM_WHY}")(f))


os.environ.setdefault("RMXBENCH_THREADS", "1")


def _tiny():
    from transformers import AutoModelForCausalLM

    from rmxbench.embedded import tiny_model_dir

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir(), dtype="float32")


def _lora(d: Path, base=None, seed: int = 0, safe: bool = True, **kw) -> Path:
    """A random (non-zero B) PEFT LoRA adapter on ``base`` (default: the tiny model) saved to ``d``
    (``safe=False``: PEFT's older ``adapter_model.bin``)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    kw.setdefault("init_lora_weights", False)
    m = get_peft_model(base if base is not None else _tiny(), LoraConfig(**kw))
    if kw.get("modules_to_save"):  # make the full copies differ from the base (trained copies do)
        for n, p in m.named_parameters():
            if "modules_to_save" in n:
                p.data += 0.05 * torch.randn_like(p)
    m.save_pretrained(d, safe_serialization=safe)
    return d


def _rewrite(d: Path, *, keys=None, drop=None, config: dict | None = None, shapes=None) -> Path:
    """Change a saved adapter: rename tensors (``keys``: old -> new name), drop tensors (``drop``:
    predicate), edit the config (``config``: fields to set; None values delete)."""
    from safetensors.torch import load_file, save_file

    f = d / "adapter_model.safetensors"
    t = load_file(f)
    if keys or drop:
        t = {(keys(k) if keys else k): v for k, v in t.items() if not (drop and drop(k))}
        save_file(t, f, metadata={"format": "pt"})
    if config:
        cfg = json.loads((d / "adapter_config.json").read_text())
        for k, v in config.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        (d / "adapter_config.json").write_text(json.dumps(cfg))
    return d


QV = dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])


@pytest.fixture(scope="module")
def ads(tmp_path_factory):
    """Every adapter of this module, by name."""
    import shutil

    root = tmp_path_factory.mktemp("adapters")
    out: dict[str, Path] = {}

    def lora(name, **kw):
        out[name] = _lora(root / name, **{**QV, **kw})
        return out[name]

    def copy(src, name):
        shutil.copytree(out[src], root / name)
        out[name] = root / name
        return out[name]

    lora("good")
    _rewrite(copy("good", "prefix"), keys=lambda k: k.replace("base_model.model.model.",
                                                              "base_model.model.language_model.model."))
    _rewrite(copy("good", "no_peft_prefix"), keys=lambda k: k.removeprefix("base_model.model."))
    _rewrite(copy("good", "adapter_name_in_keys"), keys=lambda k: k.replace(".weight", ".default.weight"))
    _rewrite(copy("good", "other_architecture"),
             keys=lambda k: k.replace("model.model.layers.", "model.transformer.h.").replace("self_attn.q_proj", "attn.c_attn")
             .replace("self_attn.v_proj", "attn.c_proj"), config={"target_modules": ["c_attn", "c_proj"],
                                                                   "base_model_name_or_path": "openai-community/gpt2"})
    from transformers import AutoConfig, AutoModelForCausalLM

    from rmxbench.embedded import tiny_model_dir

    bigger = AutoConfig.from_pretrained(tiny_model_dir())
    bigger.hidden_size, bigger.intermediate_size = 256, 512
    lora("other_size", base=AutoModelForCausalLM.from_config(bigger))
    _rewrite(copy("good", "rank_disagrees"), config={"r": 4})
    copy("good", "empty_file")
    (out["empty_file"] / "adapter_model.safetensors").write_bytes(b"")
    copy("good", "truncated_file")
    data = (out["truncated_file"] / "adapter_model.safetensors").read_bytes()
    (out["truncated_file"] / "adapter_model.safetensors").write_bytes(data[: len(data) // 3])
    copy("good", "no_weights")
    (out["no_weights"] / "adapter_model.safetensors").unlink()
    copy("good", "no_config")
    (out["no_config"] / "adapter_config.json").unlink()
    copy("good", "bad_json")
    (out["bad_json"] / "adapter_config.json").write_text('{"r": 8,')
    _rewrite(copy("good", "no_target_modules"), config={"target_modules": None})
    _rewrite(copy("good", "targets_miss_tensors"), config={"target_modules": ["q_proj"]})
    _rewrite(copy("good", "incomplete"), drop=lambda k: "layers.3." in k)
    _rewrite(copy("good", "rank_pattern_not_int"), config={"rank_pattern": {"q_proj": "32"}})
    lora("bin", safe=False)
    copy("bin", "truncated_bin")
    data = (out["truncated_bin"] / "adapter_model.bin").read_bytes()
    (out["truncated_bin"] / "adapter_model.bin").write_bytes(data[: len(data) // 2])
    copy("good", "nan_data")  # the header intact, every data byte 0xFF (NaN in fp32): as the trial damaged it
    data = (out["nan_data"] / "adapter_model.safetensors").read_bytes()
    head = 8 + int.from_bytes(data[:8], "little")
    (out["nan_data"] / "adapter_model.safetensors").write_bytes(data[:head] + b"\xff" * (len(data) - head))
    copy("bin", "inf_bin")  # one value of one tensor infinite (a diverged training)
    import torch as _torch

    sd = _torch.load(out["inf_bin"] / "adapter_model.bin", weights_only=True)
    first = sorted(sd)[0]
    sd[first][0, 0] = float("inf")
    _torch.save(sd, out["inf_bin"] / "adapter_model.bin")
    lora("mts", modules_to_save=["embed_tokens", "lm_head"])
    copy("mts", "resized_vocab")  # full copies with 16 more vocabulary rows
    from safetensors.torch import load_file, save_file

    t = load_file(out["resized_vocab"] / "adapter_model.safetensors")
    import torch

    for k in [k for k in t if k.endswith(("embed_tokens.weight", "lm_head.weight"))]:
        t[k] = torch.cat([t[k], torch.zeros(16, t[k].shape[1])])
    save_file(t, out["resized_vocab"] / "adapter_model.safetensors", metadata={"format": "pt"})
    lora("rank_pattern", rank_pattern={"q_proj": 32})  # the issue's example: r=8, q_proj: 32
    lora("alpha_pattern", alpha_pattern={"v_proj": 64})
    lora("dora", use_dora=True)
    lora("embed_lora", target_modules=["q_proj", "v_proj", "embed_tokens"])
    lora("lora_bias", lora_bias=True)
    lora("pissa", init_lora_weights="pissa")
    lora("bias_all", bias="all")
    from peft import IA3Config, get_peft_model

    get_peft_model(_tiny(), IA3Config(target_modules=["q_proj", "v_proj", "down_proj"],
                                      feedforward_modules=["down_proj"])).save_pretrained(root / "ia3")
    out["ia3"] = root / "ia3"
    return out


@pytest.fixture(scope="module")
def base_modules():
    from rmxbench.backends.adapters import BaseModules

    return BaseModules.of_model(_tiny())


#: adapter -> (words in the error, words in its hint), on every backend (transformers + PEFT rules)
REFUSED = {
    "prefix": (["8 of the 8 modules", "not in the base model (Qwen2ForCausalLM)",
                "`language_model.model.layers.0.self_attn.q_proj`", "base model's completions"],
               ["prefix `language_model.`", "base `model.layers.0.self_attn.q_proj`", "Re-save"]),
    "no_peft_prefix": (["not in the layout PEFT's `save_pretrained` writes", "PEFT would skip them"], ["save_pretrained"]),
    "adapter_name_in_keys": (["`base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight`"],
                             ["`.default.`"]),
    "other_architecture": (["`transformer.h.0.attn.c_attn`", "trained on 'openai-community/gpt2'"],
                           ["another architecture", "`model.layers.0.self_attn.q_proj`"]),
    "other_size": (["has shape [8, 256]", "Linear(in=128, out=128)"], ["another model"]),
    "rank_disagrees": (["has shape [8, 128]", "at rank 4 takes [4, 128]", "its tensors rank 8"],
                       ["`r`/`rank_pattern`"]),
    "empty_file": (["not a readable adapter weights file", "0 bytes"], ["empty, truncated or corrupt"]),
    "truncated_file": (["not a readable adapter weights file"], ["empty, truncated or corrupt"]),
    "truncated_bin": (["adapter_model.bin: not a readable adapter weights file"], ["empty, truncated or corrupt"]),
    "no_weights": (["no adapter weights (adapter_model.safetensors or adapter_model.bin)"], ["copy the adapter"]),
    "no_config": (["no adapter_config.json: not a PEFT adapter folder"], ["save_pretrained"]),
    "bad_json": (["adapter_config.json: not readable JSON"], []),
    "no_target_modules": (["no `target_modules`"], ['"target_modules": ["q_proj", "v_proj"]']),
    "targets_miss_tensors": (["LoRA tensors for 4 modules that its `target_modules` (['q_proj']) does not select",
                              "`model.layers.0.self_attn.v_proj`"], ["fix `target_modules`"]),
    "incomplete": (["selects 2 modules", "no LoRA tensors", "`model.layers.3.self_attn.q_proj`", "incomplete"],
                   ["copy the adapter again"]),
    "rank_pattern_not_int": (["`r` and `rank_pattern` values must be positive integers"], []),
    "resized_vocab": (["has weight shape [400, 128], the base module's is [384, 128]", "resized vocabulary"],
                      ["with the tokenizer it was trained with"]),
    "pissa": (["init_lora_weights='pissa'", "rewrites the base weights"], ["path_initial_model_for_weight_conversion"]),
    "bias_all": (["bias='all'", "overwrites the base model's biases"], ["merge", "`bias: none`"]),
    "ia3": (["peft_type 'IA3'", "LoRA adapters (peft_type 'LORA') only"], ["merge"]),
    "nan_data": (["16 of 16 tensors hold NaN or infinite values", ".lora_A.weight`"], ["damaged", "diverged"]),
    "inf_bin": (["1 of 16 tensors hold NaN or infinite values"], ["damaged", "diverged"]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_preflight_refuses_with_file_reason_and_hint(name, ads, base_modules):
    from rmxbench.backends.adapters import HF_RULES, preflight

    with pytest.raises(UserError) as e:
        preflight(ads[name], base_modules, HF_RULES)
    words, hint = REFUSED[name]
    assert str(ads[name]) in e.value.message  # names the file or folder
    for w in words:
        assert w in e.value.message, (w, e.value.message)
    for w in hint:
        assert w in (e.value.hint or ""), (w, e.value.hint)
    assert len(e.value.message) + len(e.value.hint or "") < 900  # one screen


@pytest.mark.parametrize("name, rank, n_lora, n_copies", [
    ("good", 8, 8, 0), ("bin", 8, 8, 0), ("rank_pattern", 32, 8, 0), ("alpha_pattern", 8, 8, 0), ("dora", 8, 8, 0),
    ("embed_lora", 8, 9, 0), ("lora_bias", 8, 8, 0), ("mts", 8, 8, 2)])
def test_preflight_accepts_what_peft_serves(name, rank, n_lora, n_copies, ads, base_modules):
    from rmxbench.backends.adapters import HF_RULES, preflight
    from rmxbench.backends.generation import adapter_rank

    info = preflight(ads[name], base_modules, HF_RULES)
    assert (info.rank, len(info.modules), len(info.modules_to_save)) == (rank, n_lora, n_copies)
    assert adapter_rank(ads[name]) == rank  # the engine's LoRA rank comes from the same config reader


def test_meta_skeleton_names_the_same_modules_as_the_loaded_model(base_modules):
    """The vLLM session compares adapters with a meta-device skeleton of the model's config."""
    from transformers import AutoConfig

    from rmxbench.backends.adapters import BaseModules
    from rmxbench.embedded import tiny_model_dir

    skel = BaseModules.of_config(AutoConfig.from_pretrained(tiny_model_dir()))
    assert skel == base_modules
    assert base_modules.output == "lm_head" and base_modules.tied
    assert base_modules.modules["model.layers.0.self_attn.q_proj"].describe() == "Linear(in=128, out=128)"


# ------------------------------------------------------------------- serving on the HF session


def _prompts(n: int = 6):
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.evaluation.prompts import build_prompt

    rows = load_benchmark("tinymath")[:n]
    return [build_prompt(r["problem"], "tiny_story") for r in rows], [r["id"] for r in rows]


def _greedy():
    from rmxbench.spec.sampling import Sampling

    return Sampling.of(n=1, max_new_tokens=24, stop=STOP)


def _ids(outs):
    return [[s.completion_ids for s in x] for x in outs]


def _merged(adapter: Path):
    """Greedy completions of ``adapter`` merged into a fresh base (PEFT ``merge_and_unload``). The
    base's output head is untied first: merging an embedding LoRA into tied weights would change the
    output head too, which the adapter (trained unmerged) never did."""
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from rmxbench.backends.hf_session import hf_generate
    from rmxbench.embedded import tiny_model_dir

    prompts, ids = _prompts()
    base = _tiny()
    base.lm_head.weight = torch.nn.Parameter(base.lm_head.weight.detach().clone())
    base.config.tie_word_embeddings = False
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir())
    return _ids(hf_generate(merged, tok, prompts, _greedy(), request_ids=ids, batch_size=6))


@pytest.fixture(scope="module")
def hf():
    from rmxbench.backends.session import engine_of, open_session
    from rmxbench.spec.schema import ModelRef

    s = open_session(engine_of(ModelRef(path="package:embedded/tiny"), backend="hf", dtype="float32",
                               max_model_len=256))
    yield s
    s.close()


def _serve(session, adapter):
    prompts, ids = _prompts()
    return _ids(session.generate(prompts, _greedy(), adapter=adapter, request_ids=ids, batch_size=6))


def test_hf_serves_modules_to_save_on_tied_embeddings_and_restores_the_base(hf, ads):
    """modules_to_save [embed_tokens, lm_head] on the tied tiny model: served as merged, and the
    shared session's base is the base again afterwards (PEFT's unload() would keep the copies)."""
    import torch

    base = _serve(hf, None)
    served = _serve(hf, ads["mts"])
    assert served == _merged(ads["mts"]) and served != base
    assert _serve(hf, None) == base
    model = hf.torch_model()
    fresh = _tiny().state_dict()
    assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items())
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied


@pytest.mark.parametrize("name", ["rank_pattern", "alpha_pattern", "dora", "embed_lora", "lora_bias"])
def test_hf_serves_adapters_like_merged(name, hf, ads):
    assert _serve(hf, ads[name]) == _merged(ads[name])


def test_hf_session_refuses_before_loading(hf, ads):
    """A refused adapter leaves the session as it was (no half-loaded PeftModel)."""
    before = _serve(hf, ads["good"])
    with pytest.raises(UserError, match="language_model"):
        _serve(hf, ads["prefix"])
    assert _serve(hf, ads["good"]) == before


def test_analysis_loader_preflies_and_restores(ads):
    """The analyses load adapters through the same pre-flight (``load_peft``) and unload them with
    the base modules restored (``unload_peft``)."""
    import torch

    from rmxbench.backends.adapters import load_peft, unload_peft

    m = _tiny()
    with pytest.raises(UserError, match="transformer.h.0.attn.c_attn"):
        load_peft(m, ads["other_architecture"])
    back = unload_peft(load_peft(m, ads["mts"]))
    fresh = _tiny().state_dict()
    assert all(torch.equal(v, fresh[k]) for k, v in back.state_dict().items())


# ------------------------------------------------------------------- as a user runs it (CLI, HF)


def _eval_cli(adapter: Path, out: Path, backend: str, capsys) -> tuple[int, str, str]:
    from rmxbench.cli import main

    code = main(["eval", "--model", "package:embedded/tiny", "--adapter", str(adapter), "--tasks", "tinymath",
                 "--limit", "2", "--backend", backend, "--dtype", "float32", "--max-new-tokens", "16",
                 "--out", str(out)])
    cap = capsys.readouterr()
    return code, cap.out, " ".join(cap.err.split())


def test_cli_hf_prefix_adapter_is_an_error_not_a_base_score(ads, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    code, _, err = _eval_cli(ads["prefix"], tmp_path, "hf", capsys)
    assert code == 1, err
    assert "error:" in err and "not in the base model" in err and "hint:" in err and "prefix `language_model.`" in err
    assert "internal error" not in err
    assert not (tmp_path / "tinymath" / "record.json").exists()  # nothing scored


@pytest.mark.parametrize("name", ["empty_file", "no_target_modules", "pissa"])
def test_cli_checks_the_adapter_before_starting_an_engine(name, ads, tmp_path, capsys, monkeypatch):
    """What the config and the file header show is refused before any engine starts (on vLLM that
    start costs 30 s here, minutes for large models)."""
    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    code, out, err = _eval_cli(ads[name], tmp_path, "vllm", capsys)
    assert code == 1 and REFUSED[name][0][0] in err, err
    assert "evaluating" not in out  # printed once the engine has started


@pytest.mark.parametrize("name", ["mts", "rank_pattern"])
def test_cli_hf_serves_the_issues_adapters(name, ads, tmp_path, capsys):
    code, out, err = _eval_cli(ads[name], tmp_path, "hf", capsys)
    assert code == 0, err
    rec = json.loads((tmp_path / "tinymath" / "record.json").read_text())
    assert rec["n_problems"] == 2 and rec["provenance"]["adapter_dir"] == str(ads[name].resolve())


# ------------------------------------------------------------------- vLLM


@pytest.fixture(scope="module")
def vllm(ads):
    from rmxbench.backends.session import engine_of, open_session
    from rmxbench.spec.schema import ModelRef

    s = open_session(engine_of(ModelRef(path="package:embedded/tiny"), backend="vllm", dtype="float32",
                               max_model_len=256, adapter=ads["rank_pattern"]))
    yield s
    s.close()


#: adapter -> words in the vLLM session's refusal; every hint says `backend: hf` except where HF refuses too
VLLM_REFUSED = {
    "prefix": ["not in the base model", "language_model"],
    "mts": ["the vllm backend does not serve `modules_to_save`", "lm_head, model.embed_tokens"],
    "dora": ["the vllm backend refuses this adapter", "vLLM does not yet support DoRA"],
    "embed_lora": ["does not serve LoRA on `model.embed_tokens` (Embedding(384, 128))"],
    "lora_bias": ["vLLM does not support LoRA bias"],
    "other_size": ["has shape [8, 256]"],
}


@vllm_test
@pytest.mark.parametrize("name", sorted(VLLM_REFUSED))
def test_vllm_session_refuses_before_vllm_does(name, vllm, ads):
    prompts, ids = _prompts(1)
    with pytest.raises(UserError) as e:
        vllm.generate(prompts, _greedy(), adapter=ads[name], request_ids=ids)
    for w in VLLM_REFUSED[name]:
        assert w in e.value.message, (w, e.value.message)
    if name in ("mts", "dora", "embed_lora", "lora_bias"):  # HF serves these
        assert "`backend: hf`" in e.value.hint


@vllm_test
@pytest.mark.parametrize("name", ["rank_pattern", "alpha_pattern", "good"])
def test_vllm_serves_rank_and_alpha_patterns_like_hf(name, vllm, hf, ads):
    """r=8 with q_proj: 32 (the issue's example): the engine's LoRA rank comes from the adapter
    (32), and vLLM's completions equal transformers + PEFT's."""
    assert vllm.spec.max_lora_rank == 32
    got = _serve(vllm, ads[name])
    assert got == _serve(hf, ads[name]) and got != _serve(hf, None)


@vllm_test
def test_cli_vllm_issue_examples(ads, tmp_path, capsys, monkeypatch):
    """The issue's three vLLM examples as a user runs them: the prefix adapter and the
    modules_to_save adapter are exit-1 errors with a hint (no score recorded); r=8 + q_proj: 32
    evaluates (engine LoRA rank 32) with the same verdicts as on HF."""
    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    code, _, err = _eval_cli(ads["prefix"], tmp_path / "prefix", "vllm", capsys)
    assert code == 1 and "not in the base model" in err and "hint:" in err, err
    assert not (tmp_path / "prefix" / "tinymath" / "record.json").exists()
    code, _, err = _eval_cli(ads["mts"], tmp_path / "mts", "vllm", capsys)
    assert code == 1 and "does not serve `modules_to_save`" in err and "`backend: hf`" in err, err
    assert "internal error" not in err
    code, _, err = _eval_cli(ads["rank_pattern"], tmp_path / "rp-vllm", "vllm", capsys)
    assert code == 0, err
    v = json.loads((tmp_path / "rp-vllm" / "tinymath" / "record.json").read_text())
    assert "|lora32|" in v["provenance"]["engine"] + "|"  # the engine key: ...|lora<max rank>|eager...
    code, _, err = _eval_cli(ads["rank_pattern"], tmp_path / "rp-hf", "hf", capsys)
    h = json.loads((tmp_path / "rp-hf" / "tinymath" / "record.json").read_text())
    comp = {b: [json.loads(x)["completion"] for x in (tmp_path / f"rp-{b}" / "tinymath" / "samples.jsonl")
                .read_text().splitlines()] for b in ("hf", "vllm")}
    assert code == 0 and v["per_problem"] == h["per_problem"] and comp["hf"] == comp["vllm"]


@vllm_test
def test_spec_run_recipe_vllm_cannot_serve(tmp_path, capsys, monkeypatch):
    """A spec whose recipe puts LoRA on the embeddings, run with `backend: vllm`: the adapter trains
    (transformers), and its validation on vLLM stops with an exit-1 error saying `backend: hf`
    serves it, before the adapter is scored (the base's validation, without an adapter, ran)."""
    import yaml

    from rmxbench.cli import main

    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    spec = yaml.safe_load((ROOT / "specs" / "tiny.yaml").read_text())
    spec["protocol"]["backend"] = "vllm"
    rec = spec["recipes"]["tiny-cpu"]
    rec.update(taus=[0.3], pool={**rec["pool"], "size": 48})
    rec["selection"].update(max_problems=32, validation_problems=16)
    rec["lora"]["target_modules"] = ["q_proj", "v_proj", "embed_tokens"]
    for m in spec["models"]:
        m["rl_baselines"] = []
    f = tmp_path / "embed.yaml"
    f.write_text(yaml.safe_dump(spec))
    rm_row = spec["models"][0]["reasonmaxxer"][0]["id"]
    code = main(["train", str(f), "--model", rm_row, "--home", str(tmp_path / "home")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert "does not serve LoRA on `model.embed_tokens`" in err and "`backend: hf`" in err
    print(err)
    # the base's validation ran (no adapter); the adapter's never was scored
    assert len(list((tmp_path / "home").glob("validation/*/validation.json"))) == 1
    assert len(list((tmp_path / "home").glob("train/*/adapter_model.safetensors"))) == 1
