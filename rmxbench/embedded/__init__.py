"""The embedded default model and benchmark shipped inside the package.

- ``tiny/``: a ~1M-parameter Qwen2-architecture causal LM (HF model dir, safetensors, byte-level
  BPE tokenizer) trained from scratch on ``tinymath/pretrain.jsonl``; see ``tiny/README.md``.
- ``tinymath/{pretrain,pool,validation,test}.jsonl``: the seeded synthetic word-problem benchmark
  (:mod:`rmxbench.embedded.tinymath`), disjoint splits.

Regenerate everything with ``python scripts/make_tiny.py``. Importing this module never imports torch.
"""

from __future__ import annotations

from pathlib import Path

from .tinymath import SPLITS

_HERE = Path(__file__).resolve().parent


def tiny_model_dir() -> Path:
    """The directory of the embedded tiny model (pass it to ``from_pretrained``).

    Raises:
        FileNotFoundError: the package was installed without its embedded data.
    """
    path = _HERE / "tiny"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"embedded tiny model missing at {path}: reinstall rmxbench or run `python scripts/make_tiny.py`"
        )
    return path


def tinymath_path(split: str) -> Path:
    """Path of the ``tinymath`` JSONL file for ``split`` (one of ``pretrain``, ``pool``, ``validation``, ``test``).

    Raises:
        ValueError: unknown split (message lists the allowed values).
        FileNotFoundError: the file is absent (package installed without its data).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown tinymath split {split!r}; allowed: {', '.join(SPLITS)}")
    path = _HERE / "tinymath" / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"embedded benchmark file missing at {path}: reinstall rmxbench or run `python scripts/make_tiny.py`"
        )
    return path


__all__ = ["tiny_model_dir", "tinymath_path", "SPLITS"]
