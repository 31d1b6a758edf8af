"""Metering and cost (paper §6.1 "Cost estimation", App. D): GPU-hours × price, CPU-hours with
no USD, RL-baseline published cost passthrough."""

from __future__ import annotations

import json

import pytest

from rmxbench.pipeline.metering import METER_FILE, measured_cost, metered, published_cost, read_meter
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


def test_gpu_hours_times_price():
    meters = {
        "rollouts": {"seconds": 1800.0, "device": "cuda", "accelerators": 4, "accelerator_name": "NVIDIA H200"},
        "entropy": {"seconds": 360.0, "device": "cuda", "accelerators": 1, "accelerator_name": "NVIDIA H200"},
        "train[1.2]": {"seconds": 720.0, "device": "cuda", "accelerators": 1, "accelerator_name": "NVIDIA H200"},
    }
    c = measured_cost(meters, PRICING)
    gpu_h = (1800 * 4 + 360 + 720) / 3600  # 2.3 GPU-hours
    assert c.gpu_hours == pytest.approx(gpu_h)
    assert c.usd == pytest.approx(gpu_h * 1.89)
    assert c.cpu_hours is None and c.gpu_type == "RTX-Pro-6000" and c.basis == "measured"
    assert c.stage_seconds == {"entropy": 360.0, "rollouts": 1800.0, "train[1.2]": 720.0}
    assert "NVIDIA H200" in c.source


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
