"""Artifact store: atomic publish, SIGKILL mid-write never leaves a visible partial artifact,
rebuild after a kill gives the identical result, concurrent builders of one key serialise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rmxbench.pipeline.identity import adapter_identity, folder_sha256
from rmxbench.pipeline.store import DONE_MARKER, ArtifactStore

# A builder that writes 2 files deterministically, with a pause between chunks so the test can
# kill it mid-write; it touches `started` once writing has begun.
BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rmxbench.pipeline.store import ArtifactStore

    home, started, pause = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    store = ArtifactStore(home)
    key = store.key("rollouts", model="m", k=4)

    def fn(tmp):
        with (tmp / "rollouts.bin").open("wb") as fh:
            for i in range(50):
                fh.write(bytes([i % 251]) * 4096)
                fh.flush()
                if i == 5:
                    started.touch()
                time.sleep(pause)
        (tmp / "meta.txt").write_text("done\\n")

    print(store.build("rollouts", key, fn))
""")


def _spawn(home: Path, started: Path, pause: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BUILDER, str(home), str(started), str(pause)],
                            stdout=subprocess.PIPE, text=True)


def test_key_is_order_independent_and_content_sensitive():
    a = ArtifactStore.key("eval", model={"repo": "x", "revision": "1"}, task="gsm8k")
    b = ArtifactStore.key("eval", task="gsm8k", model={"revision": "1", "repo": "x"})
    c = ArtifactStore.key("eval", task="gsm8k", model={"revision": "2", "repo": "x"})
    assert a == b and a != c and len(a) == 20
    assert ArtifactStore.key("train", task="gsm8k", model={"repo": "x", "revision": "1"}) != a


def test_build_once_then_cached(tmp_path):
    store = ArtifactStore(tmp_path)
    calls = []

    def fn(tmp):
        calls.append(1)
        (tmp / "x.txt").write_text("hello")

    k = store.key("pool", n=1)
    assert store.get("pool", k) is None
    p1 = store.build("pool", k, fn)
    p2 = store.build("pool", k, fn)
    assert p1 == p2 == tmp_path / "pool" / k and calls == [1]
    assert (p1 / "x.txt").read_text() == "hello" and (p1 / DONE_MARKER).is_file()
    store.build("pool", k, fn, force=True)
    assert calls == [1, 1] and store.get("pool", k) == p1


def test_failed_build_publishes_nothing(tmp_path):
    store = ArtifactStore(tmp_path)
    k = store.key("entropy", n=1)

    def bad(tmp):
        (tmp / "half.pt").write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.build("entropy", k, bad)
    assert store.get("entropy", k) is None
    assert not (tmp_path / "entropy" / k).exists()
    assert not list((tmp_path / "entropy").glob(".tmp-*"))


def test_unsafe_names_rejected(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(ValueError):
        store.path("../x", "abc")
    with pytest.raises(ValueError):
        store.path("eval", "../../etc")


def test_sigkill_mid_write_then_rebuild_is_identical(tmp_path):
    """Kill -9 a builder mid-write: nothing visible; rebuild equals an uninterrupted build."""
    home = tmp_path / "home"
    started = tmp_path / "started"
    proc = _spawn(home, started, 0.05)
    t0 = time.time()
    while not started.exists():
        assert time.time() - t0 < 60, "builder did not start"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ArtifactStore(home)
    key = store.key("rollouts", model="m", k=4)
    assert store.get("rollouts", key) is None            # partial artifact never visible
    assert not (home / "rollouts" / key).exists()
    assert list((home / "rollouts").glob(f".tmp-{key}-*"))  # the killed temp dir is left behind...

    out = _spawn(home, tmp_path / "s2", 0.0).communicate(timeout=120)[0].strip()
    assert Path(out) == home / "rollouts" / key
    assert store.get("rollouts", key) is not None
    assert not list((home / "rollouts").glob(f".tmp-{key}-*"))  # ...and cleaned by the rebuild

    ref_home = tmp_path / "ref"
    _spawn(ref_home, tmp_path / "s3", 0.0).communicate(timeout=120)
    ref = ref_home / "rollouts" / key
    files = lambda d: sorted(p.name for p in d.iterdir() if p.name != DONE_MARKER)  # noqa: E731
    assert files(Path(out)) == files(ref) == ["meta.txt", "rollouts.bin"]
    assert (Path(out) / "rollouts.bin").read_bytes() == (ref / "rollouts.bin").read_bytes()
    assert (Path(out) / "rollouts.bin").stat().st_size == 50 * 4096


def test_concurrent_builders_serialise(tmp_path):
    """Two processes building the same key: one builds, the other waits and reuses it."""
    home = tmp_path / "home"
    a = _spawn(home, tmp_path / "a", 0.01)
    b = _spawn(home, tmp_path / "b", 0.01)
    out_a = a.communicate(timeout=120)[0].strip()
    out_b = b.communicate(timeout=120)[0].strip()
    assert a.returncode == 0 and b.returncode == 0
    assert out_a == out_b
    assert (Path(out_a) / "rollouts.bin").stat().st_size == 50 * 4096
    # Exactly one of the two ran fn: only one of them touched its `started` file.
    assert (tmp_path / "a").exists() + (tmp_path / "b").exists() == 1


def test_folder_and_adapter_identity(tmp_path):
    (tmp_path / "a").write_text("1")
    h1 = folder_sha256(tmp_path)
    (tmp_path / "a").write_text("2")
    assert folder_sha256(tmp_path) != h1
    # an adapter is identified by its adapter_* files only: docs and bookkeeping do not count
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"w")
    h = adapter_identity(tmp_path)
    (tmp_path / "README.md").write_text("card")
    (tmp_path / "meter.json").write_text("{}")
    assert adapter_identity(tmp_path) == h
    (tmp_path / "adapter_model.safetensors").write_bytes(b"w2")
    assert adapter_identity(tmp_path) != h


# ----------------------------------------------------------------------------- a shared store (issue 16)

def test_a_key_published_by_another_builder_during_the_build_is_reused(tmp_path):
    """On a shared filesystem whose locks do not reach every client (Lustre without ``-o flock``),
    another machine may publish the key while this builder works: the rename then fails (the
    destination exists, ENOTEMPTY), and the complete artifact counts as built — returned as is,
    this builder's temp folder removed, nothing raised."""
    store = ArtifactStore(tmp_path)
    k = store.key("eval", n=1)
    final = store.path("eval", k)

    def fn(tmp):
        (tmp / "mine.txt").write_text("mine")
        final.mkdir()  # the other machine's published artifact appears meanwhile
        (final / "theirs.txt").write_text("theirs")
        (final / DONE_MARKER).write_text("{}")

    assert store.build("eval", k, fn) == final
    assert (final / "theirs.txt").read_text() == "theirs" and not (final / "mine.txt").exists()
    assert store.get("eval", k) == final and not list((tmp_path / "eval").glob(".tmp-*"))


def _rename_then_fail(real, *, really_rename: bool):
    """An ``os.rename`` that, for a temp folder, (does the rename and) then raises EIO — what an NFS
    client reports when the reply to a rename that succeeded on the server was lost and the
    retransmission finds the source gone."""
    import errno

    def rename(src, dst):
        if ".tmp-" in Path(src).name and ".tmp-" not in Path(dst).name:
            if really_rename:
                real(src, dst)
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real(src, dst)
    return rename


def test_a_rename_error_after_which_the_artifact_is_complete_counts_as_built(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    k = store.key("pick", n=1)
    monkeypatch.setattr(os, "rename", _rename_then_fail(os.rename, really_rename=True))
    out = store.build("pick", k, lambda tmp: (tmp / "adapter_config.json").write_text("{}"))
    assert out == store.get("pick", k) and (out / "adapter_config.json").read_text() == "{}"
    assert not list((tmp_path / "pick").glob(".tmp-*"))


def test_a_rename_error_with_nothing_published_is_raised_and_cleaned(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    k = store.key("pick", n=2)
    monkeypatch.setattr(os, "rename", _rename_then_fail(os.rename, really_rename=False))
    with pytest.raises(OSError, match="Input/output"):
        store.build("pick", k, lambda tmp: (tmp / "adapter_config.json").write_text("{}"))
    assert store.get("pick", k) is None and not list((tmp_path / "pick").glob(".tmp-*"))


def test_an_incomplete_destination_does_not_block_publishing(tmp_path):
    """A folder at the final path without ``_complete.json`` (never a published artifact: a copy by
    hand, a crash inside a forced rebuild) is set aside, and the build publishes."""
    store = ArtifactStore(tmp_path)
    k = store.key("pool", n=3)
    final = store.path("pool", k)
    final.mkdir(parents=True)
    (final / "junk.txt").write_text("x")
    out = store.build("pool", k, lambda tmp: (tmp / "pool.jsonl").write_text(""))
    assert out == final and sorted(p.name for p in final.iterdir()) == [DONE_MARKER, "pool.jsonl"]
    assert not list((tmp_path / "pool").glob(".tmp-*"))


def test_hash_cache_saves_merge_with_another_process(tmp_path):
    """Two processes sharing a home each remember what they hashed: a save merges with the
    file's current entries instead of overwriting them."""
    from rmxbench.pipeline.identity import HashCache

    a, b = HashCache(tmp_path), HashCache(tmp_path)  # two processes' caches of one home
    (tmp_path / "x").write_text("1")
    (tmp_path / "y").write_text("2")
    a.sha256(tmp_path / "x")
    b.sha256(tmp_path / "y")
    a.save()
    b.save()
    assert set(HashCache(tmp_path).data) == {str((tmp_path / "x").resolve()), str((tmp_path / "y").resolve())}
