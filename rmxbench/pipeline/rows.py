"""What a stage's ``declare`` sees: the plan context (spec, resolved paths, memoised model
identities) and one board row (:class:`RowView`). Part of the kernel: torch-free, imports nothing
from the planner or runner and no domain module (a stage asks the domain for the identities it
states, e.g. :func:`rmxbench.evaluation.data.data_identity` with :attr:`PlanContext.hashes`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rmxbench.pipeline.identity import HashCache, model_identity
from rmxbench.spec.context import SpecContext
from rmxbench.spec.schema import BaseModelSpec, ModelRef


@dataclass(frozen=True)
class EvalSettings:
    """How one row is evaluated (the row's own overrides applied over its base's settings)."""

    model: ModelRef
    prompt_style: str
    chat_template: bool
    dtype: str
    trust_remote_code: bool
    #: ``base`` (the family's base prompt, paper App. C) or ``trained`` (an RL row's own training prompt)
    eval_prompt: str = "base"


def eval_settings(base: BaseModelSpec, kind: str, row: Any) -> EvalSettings:
    """Evaluation settings of a row: RL baselines use the base prompt unless ``eval_prompt: trained``
    (:meth:`rmxbench.spec.schema.RLBaseline.eval_prompt_settings`) and may override dtype."""
    if kind == "rl_baseline":
        style, chat, which = row.eval_prompt_settings(base)
        trained = getattr(row, "train", None) is not None  # weights from the base, trained by rmxbench
        return EvalSettings(model=base.model if trained else row.model, prompt_style=style, chat_template=chat,
                            dtype=row.dtype or base.dtype, eval_prompt=which,
                            trust_remote_code=base.trust_remote_code if trained else row.trust_remote_code)
    return EvalSettings(model=base.model, prompt_style=base.prompt_style, chat_template=base.chat_template,
                        dtype=base.dtype, trust_remote_code=base.trust_remote_code)


@dataclass(frozen=True)
class RowView:
    """One board row: ``kind`` is ``base``, ``rl_baseline`` or ``reasonmaxxer``; ``row`` the spec
    object (the :class:`~rmxbench.spec.schema.BaseModelSpec` itself for a base row)."""

    base: BaseModelSpec
    kind: str
    row: Any
    index: int

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def settings(self) -> EvalSettings:
        return eval_settings(self.base, self.kind, self.row)

    @property
    def seeds(self) -> tuple[int | None, ...]:
        """The training seeds of the row's chains of nodes: the row's ``seeds:`` (a trained row, issue
        19), else ``(None,)``: one chain, labelled as always, with the recipe's own ``seed``."""
        seeds = getattr(self.row, "seeds", None) if self.kind != "base" else None
        return tuple(seeds) if seeds else (None,)

    @property
    def unavailable(self) -> str | None:
        """Why an RL baseline has no checkpoint (its reported numbers are shown), else None."""
        return getattr(self.row, "unavailable", None) if self.kind == "rl_baseline" else None


def seeded_label(label: str, seed: int | None) -> str:
    """The label of a node of training seed ``seed``'s chain: ``pool`` -> ``pool[seed=1]``,
    ``train[tau=0.3]`` -> ``train[seed=1,tau=0.3]``, ``eval tinymath`` -> ``eval tinymath[seed=1]``;
    ``label`` itself for ``seed=None`` (a row without ``seeds:``). Inverse: :func:`unseeded_label`."""
    if seed is None:
        return label
    i = label.find("[")
    return f"{label}[seed={seed}]" if i < 0 else f"{label[:i + 1]}seed={seed},{label[i + 1:]}"


def seeded_recipe(recipe: Any, seed: int | None) -> Any:
    """``recipe`` run with training seed ``seed``: the recipe with its ``seed`` replaced (None: the
    recipe itself). Every consumer of ``recipe.seed`` follows (pool draw, rollout and validation
    sampling, selection order, LoRA init and data order; GRPO's ``GRPOConfig.seed`` and pool draw),
    and a seed equal to the recipe's own gives the very same recipe, so the same keys."""
    return recipe if seed is None or seed == recipe.seed else recipe.model_copy(update={"seed": seed})


def unseeded_label(label: str) -> str:
    """``label`` without the seed :func:`seeded_label` put in (``train[seed=1,tau=0.3]`` ->
    ``train[tau=0.3]``): the role under which a seed's node is an input of its chain's later nodes,
    the same role (so the same key) as in a row without ``seeds:``."""
    return re.sub(r"\[seed=\d+\]$", "", re.sub(r"\[seed=\d+,", "[", label, count=1))


@dataclass
class PlanContext:
    """The spec context plus memoised model identities and the plan's file-hash cache."""

    ctx: SpecContext
    hashes: HashCache
    #: per-plan memo for stage helpers (e.g. one EngineSpec per model, so nodes of a model group)
    memo: dict[str, Any] = field(default_factory=dict)
    _models: dict[str, dict] = field(default_factory=dict)

    @property
    def spec(self):
        return self.ctx.spec

    def rows(self) -> list[RowView]:
        """Every board row of the spec, in board order."""
        return [RowView(b, k, r, i) for i, (b, k, r) in enumerate(self.spec.rows())]

    def model_id(self, ref: ModelRef) -> dict[str, Any]:
        """:func:`rmxbench.pipeline.identity.model_identity` of ``ref`` (memoised)."""
        k = ref.model_dump_json()
        if k not in self._models:
            self._models[k] = model_identity(ref, spec_dir=self.ctx.dir, hashes=self.hashes)
        return self._models[k]
