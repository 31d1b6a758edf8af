"""The error classifier (issue 18, item 8): third-party and environment failures are one-screen
errors with a hint (exit 1); everything else stays "internal error" (exit 2).

Each mapping is tested with the exception the real library raises under the real failing condition
(no hand-built exception objects): a torch allocation the machine cannot hold, torch's CUDA calls
on a CPU build, ``/dev/full``, a read-only file, damaged safetensors and tokenizer files, the hub in
offline mode, a transformers ``Trainer`` resuming from an empty or damaged checkpoint, PEFT target
modules of another architecture, Ray without a cluster or not installed, a UserError raised inside
a Ray worker, and vLLM refusing an adapter, engine settings or its KV cache. The issue's user-level
cases run through ``rmxbench.cli.main``.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest

from rmxbench.backends.select import vllm_usable
from rmxbench.errors import UserError
from rmxbench.failures import classify

ROOT = Path(__file__).resolve().parents[1]
_VLLM_OK, _VLLM_WHY = vllm_usable()


def vllm_test(f):
    return pytest.mark.slow(pytest.mark.skipif(not _VLLM_OK, reason=f"vLLM backend not usable here: {_VLLM_WHY}")(f))


def _raised(fn, *args, **kw) -> BaseException:
    """The exception ``fn(*args, **kw)`` raises (the test fails if it raises none)."""
    try:
        fn(*args, **kw)
    except BaseException as exc:  # noqa: BLE001
        return exc
    pytest.fail(f"{fn} raised nothing")


def _user(exc: BaseException, message: str, hint: str) -> UserError:
    u = classify(exc)
    assert u is not None, f"not classified: {type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert message in u.message, (message, u.message)
    assert hint in (u.hint or ""), (hint, u.hint)
    assert len(u.message) + len(u.hint or "") < 1200  # one screen
    return u


@pytest.fixture
def tiny_copy(tmp_path):
    from rmxbench.embedded import tiny_model_dir

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir(), d)
    return d


def _cli(args, capsys) -> tuple[int, str]:
    from rmxbench.cli import main

    code = main(args)
    return code, " ".join(capsys.readouterr().err.split())


# ------------------------------------------------------------------ memory, devices, disk


def test_host_out_of_memory():
    import torch

    exc = _raised(torch.empty, 2**45)  # 128 TiB of float32
    _user(exc, "out of memory: ", "lower `protocol.batch_size`")


@pytest.mark.skipif(sys.modules.get("torch") is not None and __import__("torch").cuda.is_available(),
                    reason="needs a torch without a usable CUDA device")
def test_cuda_on_a_machine_without_it():
    import torch

    _user(_raised(torch.zeros, 1, device="cuda"), "GPU/CUDA error: Torch not compiled with CUDA enabled", "nvidia-smi")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_disk_full():
    def write():
        with open("/dev/full", "w") as f:
            f.write("x" * 100_000)
            f.flush()

    _user(_raised(write), "no space left on the device", "RMXBENCH_HOME")


def test_unwritable_file():
    target = Path("/sys/kernel/notes")  # read-only for everyone, root included
    exc = _raised(open, target, "w") if target.exists() else None
    if exc is None or not isinstance(exc, OSError):
        pytest.skip("no read-only system file to write to here")
    _user(exc, str(target), "writable folders")


# ------------------------------------------------------------------ damaged files, hub


def test_damaged_safetensors_names_the_file(tiny_copy, capsys, monkeypatch):
    from transformers import AutoModelForCausalLM

    (tiny_copy / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    _user(_raised(AutoModelForCausalLM.from_pretrained, tiny_copy), f"({tiny_copy / 'model.safetensors'})",
          "download or copy it again")
    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    code, err = _cli(["eval", "--model", str(tiny_copy), "--tasks", "tinymath", "--limit", "1", "--backend", "hf"],
                     capsys)
    assert code == 1 and "a .safetensors file is damaged" in err and "internal error" not in err, err


def test_damaged_tokenizer(tiny_copy, capsys, monkeypatch):
    from transformers import AutoTokenizer

    (tiny_copy / "tokenizer.json").write_text("{not json")
    _user(_raised(AutoTokenizer.from_pretrained, str(tiny_copy)), f"could not read the tokenizer of {tiny_copy}",
          "tokenizer.json")
    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    code, err = _cli(["eval", "--model", str(tiny_copy), "--tasks", "tinymath", "--limit", "1", "--backend", "hf"],
                     capsys)
    assert code == 1 and "could not read the tokenizer" in err, err


def test_hub_unreachable(monkeypatch):
    import huggingface_hub.constants as hc
    from huggingface_hub import hf_hub_download

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)  # the hub as an offline machine sees it
    exc = _raised(hf_hub_download, "rmxbench-test/no-such-model", "config.json")
    _user(exc, "could not reach the Hugging Face hub", "model.path")


# ------------------------------------------------------------------ training, PEFT


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    """A transformers Trainer (TRL's GRPOTrainer inherits its resume code) that saved checkpoint-1."""
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from rmxbench.embedded import tiny_model_dir

    out = tmp_path_factory.mktemp("trainer")
    args = TrainingArguments(output_dir=str(out), max_steps=1, save_strategy="steps", save_steps=1, report_to=[],
                             use_cpu=True, disable_tqdm=True)
    ds = [{"input_ids": torch.tensor([1, 2, 3]), "labels": torch.tensor([1, 2, 3])}]
    tr = Trainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir()), args=args, train_dataset=ds)
    tr.train()
    return tr, out / "checkpoint-1"


def test_resume_from_empty_checkpoint(trainer, tmp_path):
    tr, _ = trainer
    empty = tmp_path / "checkpoint-7"
    empty.mkdir()
    _user(_raised(tr.train, resume_from_checkpoint=str(empty)),
          f"could not resume training from the checkpoint {empty}: ValueError: Can't find a valid checkpoint",
          "--force grpo")


def test_resume_from_damaged_checkpoint(trainer, tmp_path):
    tr, ckpt = trainer
    bad = tmp_path / "checkpoint-1"
    shutil.copytree(ckpt, bad)
    (bad / "optimizer.pt").write_bytes(b"not a torch file")
    _user(_raised(tr.train, resume_from_checkpoint=str(bad)), f"could not resume training from the checkpoint {bad}",
          "delete that checkpoint folder")


def test_peft_targets_of_another_architecture():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rmxbench.embedded import tiny_model_dir

    m = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
    _user(_raised(get_peft_model, m, LoraConfig(target_modules=["c_attn"])), "PEFT: Target modules {'c_attn'} not found",
          "`lora.target_modules`")


# ------------------------------------------------------------------ Ray


def test_ray_without_a_cluster(monkeypatch):
    import ray
    from ray._private.services import find_gcs_addresses

    if find_gcs_addresses():  # `address="auto"` would join it (never join someone else's cluster)
        pytest.skip("a Ray cluster is running on this machine")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    exc = _raised(ray.init, address="auto")  # connect to a running cluster: there is none
    _user(exc, "Ray: Could not find any running Ray instance", "ray start --head")
    assert not ray.is_initialized()


def test_ray_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as on a machine without it
    _user(_raised(importlib.import_module, "ray"), "the Python package 'ray' is not installed", "pip install -e '.[ray]'")


def test_user_errors_survive_pickling():
    """A UserError crosses process boundaries (Ray workers) with its hint; a SpecError with its problems."""
    from rmxbench.spec.check import SpecError, load_spec

    e = pickle.loads(pickle.dumps(UserError("bad adapter", hint="use backend: hf")))
    assert (type(e), e.message, e.hint, str(e)) == (UserError, "bad adapter", "use backend: hf", "bad adapter")
    spec_err = _raised(load_spec, ROOT / "tests" / "bad_specs" / "k_zero.yaml")
    assert isinstance(spec_err, SpecError)
    back = pickle.loads(pickle.dumps(spec_err))
    assert type(back) is SpecError and back.message == spec_err.message and back.problems == spec_err.problems


@pytest.mark.slow
def test_user_error_raised_in_a_ray_worker(monkeypatch):
    """A UserError raised in a Ray task reaches the user as that error (message and hint), not as an
    internal error (a bounded local Ray: 1 CPU, no dashboard, 120 s)."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)  # a new, private instance
    try:
        @ray.remote
        def refuse():
            raise UserError("adapter X: not in the base model", hint="re-save it")

        exc = _raised(ray.get, refuse.remote(), timeout=120)
    finally:
        ray.shutdown()
    assert type(exc).__module__.startswith("ray")
    u = _user(exc, "adapter X: not in the base model", "re-save it")
    assert type(u) is UserError


# ------------------------------------------------------------------ vLLM


@vllm_test
def test_vllm_refusing_an_adapter(tmp_path):
    """vLLM's own LoRA verdict (raised in vllm.lora), as the engine raises it when it loads an adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rmxbench.backends.select import prepare_vllm
    from rmxbench.embedded import tiny_model_dir

    torch.manual_seed(0)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir()),
                   LoraConfig(r=8, target_modules=["q_proj"], use_dora=True)).save_pretrained(tmp_path / "dora")
    prepare_vllm()
    from vllm.config.lora import LoRAConfig
    from vllm.lora.peft_helper import PEFTHelper

    lora_path = str(tmp_path / "dora")
    exc = _raised(lambda: PEFTHelper.from_local_dir(lora_path, None).validate_legal(LoRAConfig(max_lora_rank=8)))
    _user(exc, "vLLM could not load the LoRA adapter", "`backend: hf`")
    assert "DoRA" in classify(exc).message


@vllm_test
def test_vllm_engine_settings(capsys, monkeypatch):
    """A context longer than the model's (protocol.max_model_len 100000 on a 4096-position model)."""
    from rmxbench.backends.session import engine_of, open_session
    from rmxbench.spec.schema import ModelRef

    spec = engine_of(ModelRef(path="package:embedded/tiny"), backend="vllm", dtype="float32", max_model_len=100000)
    _user(_raised(open_session, spec), "vLLM rejects the engine settings: Value error, User-specified max_model_len "
          "(100000) is greater than the derived max_model_len", "`protocol.max_model_len`")


@vllm_test
def test_vllm_kv_cache_larger_than_memory(monkeypatch):
    from rmxbench.backends.session import engine_of, open_session
    from rmxbench.spec.schema import ModelRef

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "100000")  # GiB
    spec = engine_of(ModelRef(path="package:embedded/tiny"), backend="vllm", dtype="float32", max_model_len=256)
    exc = _raised(open_session, spec)
    _user(exc, "vLLM: not enough memory for its KV cache", "VLLM_CPU_KVCACHE_SPACE")


# ------------------------------------------------------------------ real bugs stay internal errors


def test_bugs_are_not_classified(tmp_path):
    from rmxbench.pipeline.store import ArtifactStore

    assert classify(_raised(lambda: [][1])) is None
    assert classify(_raised(lambda: {}["missing"])) is None
    assert classify(_raised(ArtifactStore(tmp_path).path, "eval", "../escape")) is None  # rmxbench's own check
    assert classify(_raised(json.loads, "{")) is None  # a JSON error outside any tokenizer loading


def test_internal_error_exit_2_and_classified_exit_1(monkeypatch, tmp_path, capsys):
    """Through the CLI: a bug in a command is exit 2; the same command failing on a full disk is exit 1."""
    import rmxbench.cli as cli
    import rmxbench.commands

    (tmp_path / "diskfull.py").write_text(
        "def add_arguments(p):\n    p.add_argument('--bug', action='store_true')\n\n"
        "def run(args):\n    if args.bug:\n        return [][1]\n"
        "    with open('/dev/full', 'w') as f:\n        f.write('x' * 100000)\n        f.flush()\n")
    monkeypatch.setattr(rmxbench.commands, "__path__", [*rmxbench.commands.__path__, str(tmp_path)])
    monkeypatch.setitem(cli.COMMANDS, "diskfull", "writes to a full disk")
    monkeypatch.delitem(sys.modules, "rmxbench.commands.diskfull", raising=False)
    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    code, err = _cli(["diskfull", "--bug"], capsys)
    assert code == 2 and "internal error" in err
    if Path("/dev/full").exists():
        code, err = _cli(["diskfull"], capsys)
        assert code == 1 and "no space left on the device" in err and "hint:" in err, err
    assert os.environ.get("RMXBENCH_DEBUG") is None


def test_the_classifier_imports_no_library_it_classifies():
    """failures.py recognises torch/vLLM/Ray/... exceptions by name, so classifying one never
    imports (or needs) the library; it sits in the shared-records layer and imports only errors."""
    import ast

    import rmxbench.failures as failures

    tree = ast.parse(Path(failures.__file__).read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names == {"__future__", "errno", "os", "typing", "rmxbench.errors"}, names
