"""What a stage's ``declare`` sees: the plan context (spec, resolved paths, memoised model
identities) and one board row (:class:`RowView`). Part of the kernel: torch-free, imports nothing
from the planner or runner and no domain module (a stage asks the domain for the identities it
states, e.g. :func:`rmxbench.evaluation.data.data_identity` with :attr:`PlanContext.hashes`)."""

from __future__ import annotations

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
    def unavailable(self) -> str | None:
        """Why an RL baseline has no checkpoint (its reported numbers are shown), else None."""
        return getattr(self.row, "unavailable", None) if self.kind == "rl_baseline" else None


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
