"""Identity hashing: what identifies a file, folder, model or adapter (part of the kernel).

Every content key (:meth:`rmxbench.pipeline.store.ArtifactStore.key`) and every provenance entry on
the board uses these functions, so the hash shown on the board is the hash inside the key.

- files: sha256 of the bytes (:func:`file_sha256`, remembered per store home in
  ``<home>/.hashcache.json`` by (path, size, mtime) so a multi-GB checkpoint is hashed once);
- folders: sha256 over the sorted relative names + file hashes of the files that matter
  (:func:`folder_sha256`; READMEs, licences and dotfiles are ignored for model folders);
- models: hub ``repo`` + ``revision``, or the local content hash (:func:`model_identity`);
- adapters: the hash of the PEFT weight/config files (:func:`adapter_identity`).

The domain states its own identities and the kernel hashes what it is given: a benchmark's rows
(:func:`rmxbench.evaluation.data.data_identity`), a prompt style's template
(:func:`rmxbench.evaluation.prompts.prompt_identity`), the grader
(:data:`rmxbench.evaluation.grading.GRADER_VERSION`), the lm-eval task definitions
(:func:`rmxbench.evaluation.lmeval.tasks_identity`). This module imports no domain module.

Torch-free: importing this module never imports torch, and nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from rmxbench.errors import UserError
from rmxbench.spec.schema import ModelRef

#: Files ignored when hashing a local model folder (documentation and dotfiles do not change outputs).
_IGNORED = re.compile(r"(^|/)(\.|README|PROVENANCE|LICENSE)|\.md$")
#: Metadata file of an adapter folder (ReasonMaxxer's per-τ and picked adapters: τ, recipe, sweep table).
METADATA_FILE = "rmx_metadata.json"
#: Bookkeeping files that never count toward an artifact folder's identity.
BOOKKEEPING = frozenset({"meter.json", "_complete.json", METADATA_FILE, "key_parts.json"})


def _sha256_bytes_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class HashCache:
    """sha256 of files, remembered across runs in ``<home>/.hashcache.json`` by (path, size, mtime).

    One instance per home per process (:meth:`for_home`); a changed file (size or mtime) is
    re-hashed. ``home=None`` keeps the cache in memory only.
    """

    _instances: dict[str, "HashCache"] = {}

    def __init__(self, home: Path | None):
        self.path = Path(home) / ".hashcache.json" if home is not None else None
        self.data: dict[str, list] = {}
        if self.path is not None:
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.data = {}
        self.dirty = False

    @classmethod
    def for_home(cls, home: Path | str | None) -> "HashCache":
        """The process-wide cache of ``home`` (``None``: an in-memory cache)."""
        k = str(Path(home).resolve()) if home is not None else ""
        if k not in cls._instances:
            cls._instances[k] = cls(Path(home) if home is not None else None)
        return cls._instances[k]

    def sha256(self, f: Path) -> str:
        """sha256 hex digest of file ``f``'s bytes."""
        st = f.stat()
        k = str(f.resolve())
        hit = self.data.get(k)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = _sha256_bytes_of(f)
        self.data[k] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def files_sha256(self, root: Path, files: Iterable[Path]) -> str:
        """sha256 over (relative name, file sha256) of ``files`` under ``root``, in sorted order."""
        h = hashlib.sha256()
        for f in sorted(files):
            h.update(str(f.relative_to(root)).encode())
            h.update(self.sha256(f).encode())
        return h.hexdigest()

    def save(self) -> None:
        """Write the cache back (best effort: a read-only home just means no memory).

        Several processes may share a home (two drivers, a cluster's workers): under the store's
        lock on ``.lock-hashcache``, the file's current entries are read and this process's
        entries merged over them, so no process drops what another one hashed."""
        if not self.dirty or self.path is None:
            return
        from rmxbench.pipeline.store import key_lock
        from rmxbench.results import atomic_write_json

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with key_lock(self.path.parent / ".lock-hashcache"):
                try:
                    on_disk = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    on_disk = {}
                merged = {**(on_disk if isinstance(on_disk, dict) else {}), **self.data}
                atomic_write_json(self.path, merged)
                self.data = merged
        except OSError:  # pragma: no cover - read-only home
            pass
        self.dirty = False


def file_sha256(path: str | Path, hashes: HashCache | None = None) -> str:
    """sha256 hex digest of a file's bytes (through ``hashes`` when given, else the in-memory cache)."""
    return (hashes or HashCache.for_home(None)).sha256(Path(path))


def folder_sha256(root: str | Path, *, hashes: HashCache | None = None, ignore_docs: bool = False,
                  only: Any = None) -> str:
    """sha256 of a folder: relative names + file hashes of every file (sorted), minus
    :data:`BOOKKEEPING` files; ``ignore_docs`` also skips READMEs/licences/dotfiles; ``only`` is an
    optional predicate on the file name."""
    root = Path(root)
    files = [f for f in root.rglob("*") if f.is_file() and f.name not in BOOKKEEPING
             and not (ignore_docs and _IGNORED.search(str(f.relative_to(root))))
             and (only is None or only(f.name))]
    return (hashes or HashCache.for_home(None)).files_sha256(root, files)


def resolve_model_path(path: str, spec_dir: str | Path | None = None) -> Path:
    """A spec ``path`` (``package:<rel>``, relative to the spec folder, or absolute) as a path.

    Raises:
        UserError: the resolved file or folder does not exist.
    """
    from rmxbench.spec.context import resolve_spec_path

    p = resolve_spec_path(path, spec_dir)
    if not p.exists():
        raise UserError(f"model path {path!r} does not exist (resolved to {p})",
                        hint="fix `model.path` in the spec, or use `repo`+`revision` for a hub model")
    return p.resolve()


def model_identity(ref: ModelRef, *, spec_dir: Path | None, hashes: HashCache | None = None) -> dict[str, Any]:
    """What identifies a model's weights: hub ``repo`` + ``revision``, or ``sha256`` of the local
    files (the GGUF file alone when ``gguf_file`` is set; READMEs and dotfiles ignored).

    Raises:
        UserError: a local path or GGUF file that does not exist.
    """
    ident: dict[str, Any] = {"gguf_file": ref.gguf_file, "tokenizer": ref.tokenizer}
    if ref.repo is not None:
        ident.update(repo=ref.repo, revision=ref.revision)
        return ident
    hashes = hashes or HashCache.for_home(None)
    p = resolve_model_path(ref.path, spec_dir)
    if p.is_file():
        ident["sha256"] = hashes.sha256(p)
    elif ref.gguf_file:
        f = p / ref.gguf_file
        if not f.is_file():
            raise UserError(f"model.gguf_file {ref.gguf_file!r} not found in {p}",
                            hint="fix `model.gguf_file` (a file name inside `model.path`)")
        ident["sha256"] = hashes.sha256(f)
    else:
        ident["sha256"] = folder_sha256(p, hashes=hashes, ignore_docs=True)
    return ident


def model_key(identity: dict[str, Any]) -> str:
    """A short string naming the weights of :func:`model_identity` ``identity``:
    ``model:<16 hex of sha256 of its canonical JSON>`` (the engine sessions' model key)."""
    import hashlib

    from rmxbench.pipeline.store import canonical_json

    return "model:" + hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def adapter_identity(adapter_dir: str | Path, hashes: HashCache | None = None) -> str:
    """sha256 of a PEFT adapter folder: its ``adapter_*`` weight/config files (any other layout:
    every file except bookkeeping). The same value is keyed and shown on the board."""
    d = Path(adapter_dir)
    if any(f.name.startswith("adapter_") for f in d.rglob("*") if f.is_file()):
        return folder_sha256(d, hashes=hashes, only=lambda n: n.startswith("adapter_"))
    return folder_sha256(d, hashes=hashes)


def library_version(dist: str) -> str:
    """Installed version of distribution ``dist`` (``"absent"`` if not installed)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"
