"""An lm-eval ``LM`` on an engine session: one engine evaluates every task and every adapter of its model.

``lm_eval.simple_evaluate(model=SessionLM(...))`` accepts an ``LM`` instance, so lm-eval drives
rmxbench's tasks (prompts, filters, rmxbench's grader) while generation goes through
:meth:`rmxbench.backends.session.Session.generate`: the same code path, tokenization contract and
per-sample seeding as the rollouts and the validation split, on the session that is already
loaded (no ``model_args``, no second engine per task).

lm-eval asks for avg@k's k samples of a problem by repeating the problem's ``Instance`` k times
(``repeats``); :meth:`SessionLM.generate_until` turns each run of repeats into one request with
``n = k`` samples (vLLM ``SamplingParams(n=k)``; HF rows), seeded per (seed, problem id, sample).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_eval.api.model import LM

from rmxbench.spec.sampling import Sampling


class SessionLM(LM):
    """lm-eval model backed by an engine session.

    Args:
        session: a started :class:`~rmxbench.backends.session.Session`.
        sampling: the task's :class:`~rmxbench.spec.sampling.Sampling` (from ``Protocol.metric``,
            with the prompt style's stop strings): what every request of the task is generated
            with. Its ``n`` must equal the task's ``repeats``.
        adapter: PEFT LoRA adapter folder served for every request, or None (the base).
        batch_size: prompts per batch (HF sessions).
        progress: called with the number of problems finished.
    """

    def __init__(self, session: Any, *, sampling: Sampling, adapter: str | Path | None = None,
                 batch_size: int | None = None, progress: Any = None):
        super().__init__()
        self.session = session
        self.sampling = sampling
        self.adapter = adapter
        self.batch_size = batch_size
        self.progress = progress
        #: tokens of the prompts and completions generated so far, and the wall / process CPU seconds spent
        #: generating them (the eval meter's counts and work loop, issue 20)
        self.prompt_tokens = self.completion_tokens = 0
        self.generate_seconds = self.generate_cpu_seconds = 0.0

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Completions for lm-eval's ``generate_until`` requests, in request order (a problem's k
        repeats are its k samples in sample order).

        Raises:
            ValueError: a problem is repeated a number of times other than ``sampling.n``.
        """
        groups: list[list[Any]] = []  # [instance, count]: lm-eval repeats an instance consecutively
        for req in requests:
            if groups and groups[-1][0] is req:
                groups[-1][1] += 1
            else:
                groups.append([req, 1])
        bad = {c for _, c in groups if c != self.sampling.n}
        if bad:
            raise ValueError(f"lm-eval repeated requests {sorted(bad)} times; the protocol samples "
                             f"n={self.sampling.n} per problem")
        prompts = [req.args[0] for req, _ in groups]
        ids = [str((req.doc or {}).get("id", req.doc_id)) for req, _ in groups]
        import time

        t0, c0 = time.perf_counter(), time.process_time()
        samples = self.session.generate(prompts, self.sampling, adapter=self.adapter, request_ids=ids,
                                        batch_size=self.batch_size, progress=self.progress)
        self.generate_seconds += time.perf_counter() - t0
        self.generate_cpu_seconds += time.process_time() - c0
        self.prompt_tokens += sum(len(ss[0].prompt_ids) for ss in samples if ss)
        self.completion_tokens += sum(len(s.completion_ids) for ss in samples for s in ss)
        return [s.text for ss in samples for s in ss]

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError("rmxbench's tasks are generative (generate_until)")

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        raise NotImplementedError("rmxbench's tasks are generative (generate_until)")

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.session.tokenizer, "name_or_path", "tokenizer")).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return getattr(self.session.tokenizer, "chat_template", None)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The tokenizer's chat template over ``chat_history`` as text (what lm-eval's HF model does;
        for ``r1_chat`` this equals :func:`rmxbench.evaluation.prompts.build_prompt`)."""
        return self.session.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt)
