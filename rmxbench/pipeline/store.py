"""Content-addressed artifact store: every stage output lives under a key of all its inputs.

Layout: ``$RMXBENCH_HOME/<stage>/<key>/`` where ``key`` is the sha256 (first 20 hex digits) of
the canonical JSON of everything that determines the output (model reference + revision, the
stage's config, input artifact keys, data-file hashes, the stage's code version; hashes of files
and folders come from :mod:`rmxbench.pipeline.identity`). A stage
builds into ``<stage>/.tmp-<key>-<pid>-<rand>-<host>/`` and the finished folder is renamed into
place (``os.rename`` of a directory is atomic on POSIX), so a partially written artifact is never
visible: a run killed at any point (SIGKILL, Ctrl-C) leaves at most a ``.tmp-*`` folder, which
the next build of the same key deletes. Changing nothing reruns nothing.

**A store shared by many machines** (a cluster run, :mod:`rmxbench.orchestrator.ray_executor`): the
store needs a POSIX filesystem mounted at the same path on every machine (NFS, Lustre, GPFS,
BeeGFS, CephFS). The temp folder lives inside ``<stage>/``, so the publishing rename never
crosses filesystems. Two lines of defence keep one key from being built twice at once: the driver
never has a key in flight twice, and builds of one key take an advisory ``fcntl`` lock on
``<stage>/.lock-<key>`` (NFSv4 and NFSv3 with lockd honour it across clients; Lustre only when
mounted with ``-o flock``; where the filesystem refuses locks, the build goes on without one).
If publishing finds the destination already complete — the rename failed because another
builder published the key first, or an NFS rename was retransmitted after it had succeeded and
reported an error — the complete artifact counts as built ("someone else built it"): the
temp folder is removed and the existing folder is returned.

``RMXBENCH_HOME`` defaults to the user cache directory (``platformdirs.user_cache_dir``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from rmxbench.spec.context import default_home

DONE_MARKER = "_complete.json"


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace); pydantic models and paths are converted."""

    def default(o: Any) -> Any:
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        raise TypeError(f"cannot key object of type {type(o).__name__}")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


class ArtifactStore:
    """The on-disk store. ``home`` defaults to :func:`default_home`.

    Example::

        store = ArtifactStore()
        key = store.key("rollouts", model=ref, config=recipe.rollouts, pool=pool_key, code="1")
        out = store.build("rollouts", key, lambda tmp: write_rollouts(tmp))
    """

    def __init__(self, home: str | Path | None = None):
        self.home = Path(home).expanduser() if home is not None else default_home()

    @staticmethod
    def key(stage: str, **parts: Any) -> str:
        """Key of a stage output: sha256 of ``{"stage": stage, **parts}`` as canonical JSON (20 hex)."""
        return hashlib.sha256(canonical_json({"stage": stage, **parts}).encode()).hexdigest()[:20]

    def path(self, stage: str, key: str) -> Path:
        """Final folder of ``(stage, key)`` (may not exist yet)."""
        if not stage.replace("_", "").isalnum() or not key.isalnum():
            raise ValueError(f"unsafe stage/key: {stage!r}/{key!r}")
        return self.home / stage / key

    def get(self, stage: str, key: str) -> Path | None:
        """The finished artifact folder, or None if it has not been built."""
        p = self.path(stage, key)
        return p if (p / DONE_MARKER).is_file() else None

    def build(self, stage: str, key: str, fn: Callable[[Path], Any], *, force: bool = False,
              meta: dict[str, Any] | None = None) -> Path:
        """Return the artifact folder for ``(stage, key)``, building it with ``fn(tmp_dir)`` if missing.

        ``fn`` writes its files into ``tmp_dir``; after it returns, a ``_complete.json`` marker
        (with ``meta``) is written and the folder is renamed into place. With ``force`` an
        existing artifact is replaced. Stale ``.tmp-<key>-*`` folders from killed runs are removed.

        Concurrent builds of the same key (two ``rmxbench run`` processes sharing a home) are
        serialised with an advisory lock on ``<stage>/.lock-<key>``: the second waits, then finds
        the artifact built and returns it (unless ``force``). A process killed while holding the
        lock releases it (the kernel drops the record locks of dead processes).

        Raises:
            Whatever ``fn`` raises; the temp folder is removed and nothing is published.
        """
        final = self.path(stage, key)
        if not force and self.get(stage, key) is not None:
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        with key_lock(final.parent / f".lock-{key}"):
            if not force and self.get(stage, key) is not None:  # built by another process meanwhile
                return final
            for stale in final.parent.glob(f".tmp-{key}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = final.parent / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{_host()}"
            tmp.mkdir()
            try:
                fn(tmp)
                with (tmp / DONE_MARKER).open("w") as fh:
                    json.dump({"stage": stage, "key": key, **(meta or {})}, fh, sort_keys=True, default=str)
                    fh.flush()
                    os.fsync(fh.fileno())
                if force and final.exists():
                    trash = final.parent / f".tmp-{key}-old-{uuid.uuid4().hex[:8]}"
                    os.rename(final, trash)
                    shutil.rmtree(trash, ignore_errors=True)
                self._publish(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    @staticmethod
    def _publish(tmp: Path, final: Path) -> None:
        """Rename ``tmp`` to ``final``; a failure after which ``final`` holds a complete artifact
        (another builder published it first: ``EEXIST``/``ENOTEMPTY``; or an NFS rename that
        succeeded and still reported an error) means the key is built: ``tmp`` is removed.

        Raises:
            OSError: the rename failed and ``final`` is not complete.
        """
        try:
            if final.exists() and not (final / DONE_MARKER).is_file():
                # a folder without the marker is never a published artifact (a crash between a
                # forced rebuild's two renames, or a copy by hand): it must not block publishing
                trash = final.parent / f".tmp-{final.name}-incomplete-{uuid.uuid4().hex[:8]}"
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(tmp, final)
        except OSError as exc:
            if (final / DONE_MARKER).is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                return
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise OSError(exc.errno, f"cannot publish {tmp.name}: {final} exists and is not a complete "
                                         "artifact") from exc
            raise


_HELD: set[str] = set()


def _host() -> str:
    """This machine's host name, as far as it is safe in a folder name (temp folders name their
    builder: pid and host)."""
    return "".join(c if c.isalnum() or c in "._" else "_" for c in socket.gethostname())[:40] or "host"


@contextmanager
def key_lock(lock_path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``lock_path`` (POSIX record lock, ``fcntl.lockf``; a no-op where
    unavailable).

    Record locks belong to the process: the kernel drops them when it dies (SIGKILL included) and a
    forked child does not inherit them, so an orphaned worker of a killed run cannot block the
    restart. Re-entrant within a process (a nested build of the same key does not deadlock). On a
    filesystem that refuses locks the body runs unlocked (the driver's one-build-per-key rule and
    the publish check of :meth:`ArtifactStore._publish` remain).
    """
    name = str(lock_path)
    if name in _HELD:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        fcntl = None
    fh = open(lock_path, "a+")
    try:
        if fcntl is not None:
            try:
                fcntl.lockf(fh.fileno(), fcntl.LOCK_EX)
            except OSError as exc:  # a filesystem without locks (Lustre without -o flock: ENOLCK/ENOSYS)
                if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
        _HELD.add(name)
        try:
            yield
        finally:
            _HELD.discard(name)
    finally:
        fh.close()  # closing the descriptor releases the lock
