"""The benchmark records: every benchmark and training pool a spec may name, one record each.

One :class:`Benchmark` per name holds everything rmxbench knows about it: its board label (paper
Table 3 header); where its rows come from (a JSONL file in a data dir, ``shared/benchmarks``
format, with its public hub dataset as the default source; an embedded split; or a derivation of
other benchmarks); the grading policy it uses; the prompt style it is always posed in, if any;
its default metric (paper §6.1: avg@k for AIME24 and AMC23, the default of
``protocol.avg_at_k.tasks``); whether it is one of the paper's six (the default
``protocol.tasks``, the ``rmx_paper`` lm-eval group); and its role (a board column, a training
pool, or data used internally). Its lm-eval task ``rmx_<name>`` is generated from the record and
:meth:`rmxbench.spec.schema.Protocol.metric` (:func:`rmxbench.evaluation.lmeval.lm_task_config`), so
k and decoding are never restated.

A record names code of the layers above by key and never imports it: ``grading`` is a policy of
:data:`rmxbench.evaluation.grading.POLICIES`, ``hub.mapper`` a row mapper of
:data:`rmxbench.evaluation.hub_data.MAPPERS`, ``derive`` a derivation of
:data:`rmxbench.evaluation.derived.DERIVATIONS` (``tests/test_tasks.py`` checks that every key
resolves). What identifies a benchmark's rows in content keys (file hash, hub source, derivation
version) is stated by :func:`rmxbench.evaluation.data.data_identity`.

Adding a benchmark = one record (in :data:`BENCHMARKS` below, or :func:`register` from a plugin or
a test) and its data file; see CONTRIBUTING.md, "How to add a benchmark". The spec schema's task
and pool names, the data loader, the grader's policy, the identity hashes, ``rmxbench eval``, the
lm-eval tasks and the board's column labels all read the records. Imports nothing outside
:mod:`rmxbench.spec` (and :mod:`rmxbench.errors`); torch-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Callable, Literal

from rmxbench.errors import UserError
from rmxbench.spec.styles import PROMPT_STYLES

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
ROLES = ("test", "pool", "data")
METRICS = ("pass@1", "avg@k")


@dataclass(frozen=True)
class HubSource:
    """A benchmark's public hub dataset: ``datasets.load_dataset(dataset, config, split=split)`` for
    each config, rows mapped by ``mapper`` (:data:`rmxbench.evaluation.hub_data.MAPPERS`) into the
    ``shared/benchmarks`` format; ``expected``: the number of rows the source has."""

    dataset: str
    configs: tuple[str | None, ...]
    split: str
    mapper: str
    expected: int


@dataclass(frozen=True)
class Benchmark:
    """One benchmark or training pool (see module doc).

    Attributes:
        name: rmxbench name (spec ``protocol.tasks`` / ``pool.source``; lm-eval task ``rmx_<name>``).
        label: board column header.
        grading: grading-policy name (:data:`rmxbench.evaluation.grading.POLICIES`).
        file: JSONL file name inside a data dir (``id``, ``problem``, ``answer`` per line).
        hub: the public hub source, used when no data dir is given (None: only local data).
        embedded: split of ``rmxbench/embedded/tinymath/`` (always local, never from a data dir).
        derived_from, derive: a benchmark built at load time from the rows of ``derived_from``
            (in order) by derivation ``derive`` (:data:`rmxbench.evaluation.derived.DERIVATIONS`).
        role: ``test`` (a board column, a ``protocol.tasks`` value), ``pool`` (a training pool, a
            recipe's ``pool.source``) or ``data`` (loadable, not named in specs).
        metric: default metric, ``pass@1`` or ``avg@k`` (k and decoding from the spec's protocol).
        paper: one of the paper's six benchmarks (Table 3; the default ``protocol.tasks``).
        prompt_style: the style the benchmark is always posed in by ``rmxbench eval`` and its
            lm-eval task's default (the embedded benchmark's ``tiny_story``); None = the model's
            style (lm-eval default ``qwen_raw``).

    Raises:
        ValueError: an unsafe name, an unknown role/metric/prompt style, or not exactly one
            source (``file``, ``embedded`` or ``derive`` with ``derived_from``).
    """

    name: str
    label: str
    grading: str
    file: str | None = None
    hub: HubSource | None = None
    embedded: str | None = None
    derived_from: tuple[str, ...] = ()
    derive: str | None = None
    role: Literal["test", "pool", "data"] = "test"
    metric: Literal["pass@1", "avg@k"] = "pass@1"
    paper: bool = False
    prompt_style: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"benchmark name {self.name!r}: use 1-64 characters from a-z 0-9 _")
        if self.role not in ROLES or self.metric not in METRICS:
            raise ValueError(f"benchmark {self.name!r}: role must be one of {ROLES}, metric one of {METRICS}")
        if self.prompt_style is not None and self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"benchmark {self.name!r}: unknown prompt style {self.prompt_style!r}")
        sources = [s for s in ("file", "embedded", "derive") if getattr(self, s)]
        if len(sources) != 1 or bool(self.derive) != bool(self.derived_from) or (self.hub and not self.file):
            raise ValueError(f"benchmark {self.name!r}: give exactly one source: `file` (with an optional "
                             "`hub`), `embedded`, or `derive` with `derived_from`")
        if self.paper and self.role != "test":
            raise ValueError(f"benchmark {self.name!r}: a paper benchmark is a test benchmark")


#: name -> record, every benchmark and pool, in board column order (registration order).
BENCHMARKS: dict[str, Benchmark] = {}


def register(record: Benchmark) -> Benchmark:
    """Add ``record`` to :data:`BENCHMARKS` (after the others: its board column comes last).

    Raises:
        ValueError: a benchmark of that name exists.
    """
    if record.name in BENCHMARKS:
        raise ValueError(f"benchmark {record.name!r} already registered")
    BENCHMARKS[record.name] = record
    return record


def unregister(name: str) -> None:
    """Remove benchmark ``name`` (tests and plugins that registered one)."""
    BENCHMARKS.pop(name, None)


def benchmark(name: str) -> Benchmark:
    """The record of ``name``.

    Raises:
        UserError: no such benchmark (lists the known ones).
    """
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UserError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def tasks() -> tuple[str, ...]:
    """Evaluation benchmarks (``protocol.tasks`` values), in board column order."""
    return tuple(n for n, b in BENCHMARKS.items() if b.role == "test")


def paper_tasks() -> tuple[str, ...]:
    """The paper's six benchmarks (Table 3 columns), in board column order."""
    return tuple(n for n, b in BENCHMARKS.items() if b.paper)


def avg_at_k_tasks() -> tuple[str, ...]:
    """Test benchmarks scored avg@k by default (paper §6.1; ``protocol.avg_at_k.tasks``' default)."""
    return tuple(n for n, b in BENCHMARKS.items() if b.role == "test" and b.metric == "avg@k")


def pools() -> tuple[str, ...]:
    """Training-pool sources (a recipe's ``pool.source`` values)."""
    return tuple(n for n, b in BENCHMARKS.items() if b.role == "pool")


@dataclass(frozen=True)
class OneOf:
    """Schema marker: a ``str`` field whose allowed values are ``names()`` at validation time
    (``Annotated[str, OneOf("benchmark", tasks)]``), so a registered benchmark is a valid task name.
    A wrong value is pydantic's ``literal_error`` listing the allowed names, as a ``Literal`` gives
    (``rmxbench validate`` words it the same way)."""

    what: str
    names: Callable[[], tuple[str, ...]]

    def __get_pydantic_core_schema__(self, source, handler):
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: str) -> str:
        allowed = self.names()
        if value not in allowed:
            from pydantic_core import PydanticCustomError

            quoted = [repr(a) for a in allowed]
            expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value


#: A test benchmark's name (spec ``protocol.tasks``, ``limit`` keys, ``avg_at_k.tasks``).
TaskName = Annotated[str, OneOf("benchmark", tasks)]
#: A training pool's name (recipe ``pool.source``).
PoolSource = Annotated[str, OneOf("training pool", pools)]


_MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                  "prealgebra", "precalculus")

for _record in (
    # the paper's six (Table 3, §6.1), in its column order
    Benchmark("gsm8k", "GSM8K", "gsm8k", file="gsm8k.jsonl", paper=True,
              hub=HubSource("openai/gsm8k", ("main",), "test", "gsm8k", 1319)),
    Benchmark("math500", "MATH-500", "math500", file="math500.jsonl", paper=True,
              hub=HubSource("HuggingFaceH4/MATH-500", (None,), "test", "math500", 500)),
    Benchmark("minerva_math", "Minerva", "minerva_math", file="minerva_math.jsonl", paper=True,
              hub=HubSource("math-ai/minervamath", (None,), "test", "minerva_math", 272)),
    Benchmark("olympiadbench", "OlympiadBench", "olympiadbench", file="olympiadbench.jsonl", paper=True,
              hub=HubSource("Hothan/OlympiadBench", ("OE_TO_maths_en_COMP",), "train", "olympiadbench", 675)),
    Benchmark("aime24", "AIME24", "aime24", file="aime24.jsonl", paper=True, metric="avg@k",
              hub=HubSource("HuggingFaceH4/aime_2024", (None,), "train", "aime24", 30)),
    Benchmark("amc23", "AMC23", "amc23", file="amc23.jsonl", paper=True, metric="avg@k",
              hub=HubSource("math-ai/amc23", (None,), "test", "amc23", 40)),
    # the embedded synthetic benchmark (rmxbench/embedded/tinymath)
    Benchmark("tinymath", "TinyMath", "tinymath", embedded="test", prompt_style="tiny_story"),
    # derived (rmxbench/evaluation/derived.py): GSM8K's single-operation calculator steps
    Benchmark("gsm8k_calc", "GSM8K-calc (derived)", "gsm8k", derived_from=("gsm8k", "gsm8k_train"),
              derive="gsm8k_calc_held_out"),
    # training pools (grade like the benchmark they come from)
    Benchmark("math_train", "MATH train", "math500", file="math_train.jsonl", role="pool",
              hub=HubSource("EleutherAI/hendrycks_math", _MATH_SUBJECTS, "train", "math_train", 7500)),
    Benchmark("gsm8k_train", "GSM8K train", "gsm8k", file="gsm8k_train.jsonl", role="pool",
              hub=HubSource("openai/gsm8k", ("main",), "train", "gsm8k", 7473)),
    Benchmark("gsm8k_calc_train", "GSM8K-calc train (derived)", "gsm8k", derived_from=("gsm8k_train",),
              derive="gsm8k_calc", role="pool"),
    Benchmark("embedded_train", "TinyMath pool", "tinymath", embedded="pool", role="pool"),
    # the embedded benchmark's other splits (rmxbench/embedded/measure.py, scripts/make_tiny.py)
    Benchmark("tinymath_validation", "TinyMath validation", "tinymath", embedded="validation", role="data"),
    Benchmark("tinymath_pretrain", "TinyMath pretrain", "tinymath", embedded="pretrain", role="data"),
):
    register(_record)
