"""THE sampling record: how many completions per prompt and how they are decoded.

Every place that generates or keys generated text uses :class:`Sampling`: the evaluation
protocol (:meth:`rmxbench.spec.schema.Protocol.sampling`, pass@1 and avg@k; lm-eval's ``repeats``
is its ``n``), the ReasonMaxxer rollouts and validation (:meth:`rmxbench.spec.recipe.ReasonMaxxerRecipe.rollout_sampling`
/ ``validation_sampling``), the content keys of those nodes, the adapters' metadata and the
generation backends (:meth:`rmxbench.backends.session.Session.generate`). So the decoding a key
records is the decoding that ran.

Seeding (paper §5.1 rollouts; evaluation avg@k): sample ``j`` of problem ``p`` is drawn from a
random stream seeded by ``(seed, p, j)`` (:func:`sample_seed`), never by which other problems
share its batch, so ``--limit 3`` gives the same samples for the first three problems as the full
run (backends without per-request seeds say so in the provenance, see
:attr:`rmxbench.backends.session.Session.per_sample_seeds`).

Pure pydantic; imports nothing else from rmxbench.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field


class Sampling(BaseModel):
    """Samples per prompt and their decoding (one record for keys, metadata and backends).

    Attributes:
        n: completions per prompt (rollouts K, validation samples, avg@k's k; 1 for pass@1).
        temperature: 0 = greedy (then ``top_p``/``top_k`` are ignored and normalised to 1.0/0).
        top_p: nucleus sampling mass (1.0 = off).
        top_k: top-k (0 = off).
        max_new_tokens: generation cap in tokens per completion.
        seed: the run's sampling seed (see module doc for how samples are seeded).
        stop: extra stop strings (the prompt style's; EOS always stops). The completion text is cut
            before the first one; its token ids keep the token that completed it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    n: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    max_new_tokens: int = Field(1024, ge=1)
    seed: int = Field(0, ge=0)
    stop: tuple[str, ...] = ()

    @classmethod
    def of(cls, *, n: int = 1, temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0,
           max_new_tokens: int = 1024, seed: int = 0, stop: tuple[str, ...] | list[str] = ()) -> "Sampling":
        """A record with greedy decoding normalised (``temperature == 0`` → ``top_p=1.0, top_k=0``),
        so two spellings of greedy decoding key alike."""
        if temperature == 0:
            top_p, top_k = 1.0, 0
        return cls(n=n, temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
                   seed=seed, stop=tuple(stop))

    @property
    def greedy(self) -> bool:
        """True for greedy decoding (``temperature == 0``)."""
        return self.temperature == 0

    def stopped_at(self, stop: tuple[str, ...] | list[str]) -> "Sampling":
        """This record with ``stop`` as its stop strings (a prompt style's)."""
        return self.model_copy(update={"stop": tuple(stop)})

    def key(self) -> dict:
        """The JSON-able content of the record (part of node keys and metadata)."""
        return self.model_dump(mode="json")


def sample_seed(seed: int, request_id: str, index: int = 0) -> int:
    """The seed of sample ``index`` of request ``request_id`` (a problem id) under run seed ``seed``:
    the first 8 bytes of sha256 of ``"seed|request_id|index"`` as an int in [0, 2^63).
    Independent of the batch the request runs in."""
    h = hashlib.sha256(f"{int(seed)}|{request_id}|{int(index)}".encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1
