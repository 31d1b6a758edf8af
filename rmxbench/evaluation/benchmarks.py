"""The benchmark registry: every benchmark and training pool rmxbench knows, in one place.

One :class:`Benchmark` per name: its board label (paper Table 3 header), its data file inside a
data dir (``shared/benchmarks`` format) or its embedded split, its public hub source
(:data:`rmxbench.evaluation.hub_data.SOURCES`: dataset id, configs, split, row mapper), the
grading policy it uses (:func:`rmxbench.evaluation.grading.policy_for` of ``grading``) and its
default metric (paper §6.1: ``avg@k`` for AIME24/AMC23, pass@1 otherwise — the spec's
``protocol.avg_at_k.tasks`` defaults to these). The spec schema's task list, the data loader,
the identity hashes and the board's column labels all read this table.

Adding a benchmark: see CONTRIBUTING.md ("How to add a benchmark"). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Benchmark:
    """One benchmark or training pool.

    Attributes:
        name: rmxbench name (spec ``protocol.tasks`` / ``pool.source``; lm-eval task ``rmx_<name>``).
        label: board column header.
        file: JSONL file name inside a data dir (None for embedded-only data).
        embedded: split of ``rmxbench/embedded/tinymath/`` (None unless embedded).
        grading: grading-policy key (:data:`rmxbench.evaluation.grading.POLICIES`).
        metric: default metric, ``pass@1`` or ``avg@k`` (k from the spec's protocol).
        test: True for evaluation benchmarks (board columns); False for training pools.
        derived_from: for a derived benchmark (built at load time, never stored), the benchmarks
            whose rows it is built from; ``derive`` names the derivation in
            :data:`rmxbench.evaluation.derived.DERIVATIONS`.
    """

    name: str
    label: str
    file: str | None = None
    embedded: str | None = None
    grading: str | None = None
    metric: Literal["pass@1", "avg@k"] = "pass@1"
    test: bool = True
    derived_from: tuple[str, ...] = ()
    derive: str | None = None

    @property
    def hub(self):
        """The hub source (:class:`rmxbench.evaluation.hub_data.HubSource`) or None (embedded data)."""
        from rmxbench.evaluation.hub_data import SOURCES

        return SOURCES.get(self.name)

    def embedded_path(self) -> Path:
        """The embedded JSONL file of this benchmark.

        Raises:
            ValueError: the benchmark is not embedded.
        """
        if self.embedded is None:
            raise ValueError(f"{self.name} is not an embedded benchmark")
        from rmxbench.embedded import tinymath_path

        return tinymath_path(self.embedded)


_ALL = (
    Benchmark("gsm8k", "GSM8K", file="gsm8k.jsonl", grading="gsm8k"),
    Benchmark("math500", "MATH-500", file="math500.jsonl", grading="math500"),
    Benchmark("minerva_math", "Minerva", file="minerva_math.jsonl", grading="minerva_math"),
    Benchmark("olympiadbench", "OlympiadBench", file="olympiadbench.jsonl", grading="olympiadbench"),
    Benchmark("aime24", "AIME24", file="aime24.jsonl", grading="aime24", metric="avg@k"),
    Benchmark("amc23", "AMC23", file="amc23.jsonl", grading="amc23", metric="avg@k"),
    Benchmark("tinymath", "TinyMath", embedded="test", grading="tinymath"),
    # derived (rmxbench/evaluation/derived.py): GSM8K's single-operation calculator steps
    Benchmark("gsm8k_calc", "GSM8K-calc (derived)", grading="gsm8k", derived_from=("gsm8k", "gsm8k_train"),
              derive="gsm8k_calc_held_out"),
    # training pools (grade like the benchmark they come from)
    Benchmark("math_train", "MATH train", file="math_train.jsonl", grading="math500", test=False),
    Benchmark("gsm8k_train", "GSM8K train", file="gsm8k_train.jsonl", grading="gsm8k", test=False),
    Benchmark("gsm8k_calc_train", "GSM8K-calc train (derived)", grading="gsm8k", derived_from=("gsm8k_train",),
              derive="gsm8k_calc", test=False),
    Benchmark("embedded_train", "TinyMath pool", embedded="pool", grading="tinymath", test=False),
    Benchmark("tinymath_validation", "TinyMath validation", embedded="validation", grading="tinymath", test=False),
    Benchmark("tinymath_pretrain", "TinyMath pretrain", embedded="pretrain", grading="tinymath", test=False),
)

#: name -> Benchmark, every benchmark and pool.
DATASETS: dict[str, Benchmark] = {b.name: b for b in _ALL}
#: Evaluation benchmarks (spec ``protocol.tasks`` values), in board column order.
TASKS: tuple[str, ...] = tuple(b.name for b in _ALL if b.test)
#: The paper's six benchmarks (Table 3 columns).
PAPER_TASKS: tuple[str, ...] = TASKS[:6]
#: Benchmarks scored avg@k by default (paper §6.1).
AVG_AT_K_TASKS: tuple[str, ...] = tuple(b.name for b in _ALL if b.metric == "avg@k")
#: Training-pool sources (recipe ``pool.source`` values).
POOLS: tuple[str, ...] = tuple(b.name for b in _ALL if not b.test and b.name not in ("tinymath_validation",
                                                                                      "tinymath_pretrain"))
#: Board column labels.
LABELS: dict[str, str] = {b.name: b.label for b in _ALL}
