"""Metering and cost (paper §6.1 "Cost estimation", App. D): GPU-hours × price, CPU-hours with
no USD, RL-baseline published cost passthrough."""

from __future__ import annotations

import json

import pytest

from rmxbench.pipeline.metering import METER_FILE, metered, read_meter
from rmxbench.pricing import cost_text, fmt_usd, gpu_type_candidates, measured_cost, price_key, published_cost, row_cost
from rmxbench.results import RowCost
from rmxbench.spec.schema import Cost, Pricing

PRICING = Pricing.model_validate({
    "date": "2026-04-28", "source": "RunPod (paper App. D)",
    "usd_per_hour": {"RTX-Pro-6000": 1.89, "H100-80G": 2.49},
    "hardware": {"gpu_type": "RTX-Pro-6000", "count": 1},
})
CPU_PRICING = PRICING.model_copy(update={"hardware": PRICING.hardware.model_copy(update={"gpu_type": None})})


def test_metered_writes_meter_json(tmp_path):
    with metered("rollouts", tmp_path) as rec:
        rec["items"] = 3
        sum(range(10000))
    m = json.loads((tmp_path / METER_FILE).read_text())
    assert m["stage"] == "rollouts" and m["items"] == 3
    assert m["seconds"] >= 0 and m["device"] in {"cpu", "cuda"}
    assert read_meter(tmp_path) == m


def test_metered_writes_nothing_on_failure(tmp_path):
    with pytest.raises(ValueError):
        with metered("train", tmp_path):
            raise ValueError("x")
    assert not (tmp_path / METER_FILE).exists()
    assert read_meter(tmp_path) is None


RTX_PRO = "NVIDIA RTX PRO 6000 Blackwell Server Edition"


def test_gpu_hours_times_price():
    meters = {
        "rollouts": {"seconds": 1800.0, "device": "cuda", "accelerators": 4, "accelerator_names": [RTX_PRO] * 4},
        "entropy": {"seconds": 360.0, "device": "cuda", "accelerators": 1, "accelerator_name": RTX_PRO},
        "train[1.2]": {"seconds": 720.0, "device": "cuda", "accelerators": 1, "accelerator_names": [RTX_PRO]},
    }
    c = measured_cost(meters, PRICING)
    gpu_h = (1800 * 4 + 360 + 720) / 3600  # 2.3 GPU-hours
    assert c.gpu_hours == pytest.approx(gpu_h)
    assert c.usd == pytest.approx(gpu_h * 1.89)
    assert c.cpu_hours is None and c.gpu_type == "RTX-Pro-6000" and c.basis == "measured"
    assert c.stage_seconds == {"entropy": 360.0, "rollouts": 1800.0, "train[1.2]": 720.0}
    assert RTX_PRO in c.source and c.note == ""


# Device names as torch.cuda.get_device_name / nvidia-smi report them (NVIDIA driver strings,
# e.g. RunPod's GPU type ids "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe").
DEVICE_NAMES = [
    ("NVIDIA H100 80GB HBM3", ["H100-80G", "H100"]),
    ("NVIDIA H100 PCIe", ["H100-PCIe", "H100"]),
    ("NVIDIA H100 NVL", ["H100-NVL", "H100"]),
    ("NVIDIA H200", ["H200"]),
    ("NVIDIA A100-SXM4-80GB", ["A100-SXM", "A100-80G", "A100"]),
    ("NVIDIA A100-SXM4-40GB", ["A100-SXM", "A100-40G", "A100"]),
    ("NVIDIA A100 80GB PCIe", ["A100-PCIe", "A100-80G", "A100"]),
    ("NVIDIA A100-PCIE-40GB", ["A100-PCIe", "A100-40G", "A100"]),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", ["RTX-Pro-6000"]),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", ["RTX-Pro-6000"]),
    ("NVIDIA RTX 6000 Ada Generation", ["RTX-6000-Ada"]),
    ("NVIDIA RTX A6000", ["RTX-A6000"]),
    ("NVIDIA GeForce RTX 4090", ["RTX-4090"]),
    ("NVIDIA A40", ["A40"]),
    ("NVIDIA A10G", ["A10G"]),
    ("NVIDIA L40S", ["L40S"]),
    ("Tesla V100-SXM2-16GB", ["V100-SXM", "V100-16G", "V100"]),
    ("Tesla T4", ["T4"]),
    ("NVIDIA GH200 480GB", ["GH200-480G", "GH200"]),
    ("", []),
]


@pytest.mark.parametrize("name,expected", DEVICE_NAMES, ids=[n or "empty" for n, _ in DEVICE_NAMES])
def test_device_names_map_to_pricing_keys(name, expected):
    assert gpu_type_candidates(name) == expected


def test_price_key_uses_the_specs_own_spelling():
    prices = PRICING.usd_per_hour  # RTX-Pro-6000, H100-80G
    assert price_key("NVIDIA H100 80GB HBM3", prices) == "H100-80G"
    assert price_key("NVIDIA RTX PRO 6000 Blackwell Server Edition", prices) == "RTX-Pro-6000"
    assert price_key("NVIDIA H200", prices) is None
    assert price_key("NVIDIA H100 PCIe", prices) is None  # no bare "H100" and no "H100-PCIe" price
    assert price_key("NVIDIA H100 PCIe", {"h100": 2.0}) == "h100"  # case/separator-insensitive
    # explicit form factor first: an SXM card is priced as SXM when the spec lists it
    assert price_key("NVIDIA A100-SXM4-80GB", {"A100-80G": 1.4, "A100-SXM": 1.6}) == "A100-SXM"
    assert price_key("NVIDIA A100-SXM4-80GB", {"A100-80G": 1.4}) == "A100-80G"


def test_stage_on_another_priced_gpu_is_priced_as_that_gpu():
    # configured RTX-Pro-6000 ($1.89) but the stages ran on H100s ($2.49)
    meters = {"rollouts": {"seconds": 3600.0, "device": "cuda", "accelerators": 2,
                           "accelerator_names": ["NVIDIA H100 80GB HBM3"] * 2},
              "train[1.2]": {"seconds": 1800.0, "device": "cuda", "accelerators": 1,
                             "accelerator_names": [RTX_PRO]}}
    c = measured_cost(meters, PRICING)
    assert c.gpu_hours == pytest.approx(2.5)
    assert c.usd == pytest.approx(2 * 2.49 + 0.5 * 1.89)
    assert c.gpu_type == "H100-80G+RTX-Pro-6000"
    assert "not the configured pricing.hardware.gpu_type RTX-Pro-6000" in c.note and "H100-80G" in c.note
    assert c.note in c.source  # the board's cost provenance shows the source


def test_stage_on_an_unpriced_gpu_has_no_usd_and_says_so():
    meters = {"rollouts": {"seconds": 3600.0, "device": "cuda", "accelerators": 1,
                           "accelerator_names": ["NVIDIA H200"]}}
    c = measured_cost(meters, PRICING)
    assert c.gpu_hours == pytest.approx(1.0) and c.usd is None and c.gpu_type == "H200"
    assert "NVIDIA H200 (H200), which has no price" in c.note and "add its price" in c.note
    # a pre-1.1 meter.json without device names is priced as configured (nothing to compare)
    old = {"rollouts": {"seconds": 3600.0, "device": "cuda", "accelerators": 1}}
    c = measured_cost(old, PRICING)
    assert c.usd == pytest.approx(1.89) and c.note == ""


def test_metered_records_only_the_devices_used(tmp_path):
    """On a CUDA machine: the stage's devices (allocated in this process, or declared by the
    body) are recorded with their names; without CUDA the record is a CPU one."""
    import torch

    if not torch.cuda.is_available():
        with metered("train", tmp_path) as rec:
            rec["devices"] = 2  # a declaration is ignored without CUDA
        m = read_meter(tmp_path)
        assert (m["device"], m["accelerators"], m["accelerator_name"]) == ("cpu", 0, None)
        assert "devices" not in m
        return
    with metered("train", tmp_path):
        torch.ones(4, device="cuda:0")
    m = read_meter(tmp_path)
    assert (m["accelerators"], m["devices_basis"]) == (1, "allocated")
    assert m["accelerator_names"] == [torch.cuda.get_device_name(0)]
    with metered("eval", tmp_path) as rec:
        rec["devices"] = 1
    assert read_meter(tmp_path)["devices_basis"] == "declared"


def test_cpu_run_reports_cpu_hours_and_no_usd():
    meters = {"rollouts": {"seconds": 5400.0, "device": "cpu", "accelerators": 0, "accelerator_name": None},
              "train[1.2]": {"seconds": 1800.0, "device": "cpu", "accelerators": 0, "accelerator_name": None}}
    for pricing in (PRICING, CPU_PRICING):
        c = measured_cost(meters, pricing)
        assert c.cpu_hours == pytest.approx(2.0)
        assert c.usd is None and c.gpu_hours is None and c.gpu_type is None
        assert "no USD" in c.source


def test_cuda_without_priced_type_has_hours_but_no_usd():
    c = measured_cost({"rollouts": {"seconds": 3600.0, "device": "cuda", "accelerators": 2}}, CPU_PRICING)
    assert c.gpu_hours == pytest.approx(2.0) and c.usd is None


def test_published_cost_passthrough_and_derivation():
    est = Cost(usd=1200, basis="estimated", source="Paper App. D (ORZ)")
    c = published_cost(est, PRICING)
    assert (c.usd, c.basis, c.source, c.gpu_hours) == (1200, "estimated", "Paper App. D (ORZ)", None)
    rep = Cost(usd=600, gpu_hours=240, gpu_type="H100-80G", basis="reported", source="simpleRL README")
    c = published_cost(rep, PRICING)
    assert (c.usd, c.gpu_hours, c.gpu_type, c.basis) == (600, 240, "H100-80G", "reported")
    hours_only = Cost(gpu_hours=96, gpu_type="H100-80G", basis="reported", source="x")
    c = published_cost(hours_only, PRICING)
    assert c.usd == pytest.approx(96 * 2.49) and "USD = 96" in c.source
    c = published_cost(None, PRICING)
    assert c.usd is None and c.basis == "unspecified"


def test_row_cost_stored_first_then_published_figure():
    """The one cost fallback the board uses: a stored (measured) cost wins over the spec's published
    figure; a row with neither (base rows, ReasonMaxxer rows not run) has no cost."""
    stored = RowCost(cpu_hours=0.01, basis="measured", source="meter.json")
    published = Cost(gpu_hours=10, gpu_type="H100-80G", basis="reported", source="README")
    assert row_cost(stored, published, PRICING) is stored
    c = row_cost(None, published, PRICING)
    assert c.usd == pytest.approx(24.9) and c.basis == "reported"
    assert row_cost(None, None, PRICING) is None


def test_cost_text():
    assert [fmt_usd(x) for x in (1200, 4.12, 4.0, 12.6, 0.003, 0)] == ["$1,200", "$4.12", "$4", "$13", "<$0.01", "$0"]
    assert cost_text(RowCost(usd=200, gpu_hours=80, basis="estimated")) == "$200"  # USD first
    assert cost_text(RowCost(cpu_hours=0.012345, basis="measured")) == "0.0123 CPU-h"
    assert cost_text(RowCost(gpu_hours=240, gpu_type="H100-80G", basis="reported")) == "240 H100-80G-h"
    assert cost_text(RowCost(gpu_hours=2.5, basis="reported")) == "2.5 GPU-h"
    assert cost_text(RowCost()) is None and cost_text(None) is None


def test_cost_source_names_the_stages_that_were_measured():
    """A GRPO row's cost says it measured its ``grpo`` stage, not the ReasonMaxxer stages."""
    cpu = {"device": "cpu", "accelerators": 0, "accelerator_name": None}
    grpo = measured_cost({"grpo": {"seconds": 36.0, **cpu}}, CPU_PRICING)
    assert grpo.source.endswith("training stages: grpo") and "rollouts" not in grpo.source
    rmx = measured_cost({"rollouts": {"seconds": 1.0, **cpu}, "train[tau=0.3]": {"seconds": 2.0, **cpu},
                         "pick": {"seconds": 0.1, **cpu}}, CPU_PRICING)
    assert rmx.source.endswith("training stages: rollouts + train[tau=0.3] + pick")
