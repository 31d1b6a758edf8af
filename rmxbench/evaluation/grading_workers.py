"""math-verify side of the grader: killable worker processes with a hard per-check deadline.
Part of :mod:`rmxbench.evaluation.grading` (import the grader from there; policy: GRADING.md)."""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

from rmxbench.evaluation.grading_normalise import close_enough, drop_prefixes, prepare, quick_verdict


log = logging.getLogger("rmxbench.evaluation.grading")

#: Default hard bound per equivalence check, seconds (env ``RMXBENCH_GRADER_TIMEOUT_S`` overrides).
DEFAULT_TIMEOUT_S = 5.0

#: Seconds allowed for a worker process to start (import math-verify/sympy and warm up).
WORKER_STARTUP_TIMEOUT_S = 120.0

class GraderError(RuntimeError):
    """The grader could not run at all (e.g. math-verify is not importable in the worker)."""


# --------------------------------------------------------------------------------------------
# math-verify side (runs inside worker processes)
# --------------------------------------------------------------------------------------------

_MV_STATE: dict = {}


def _mv_setup() -> None:
    """Import math-verify, replace its float check with the relative-tolerance policy."""
    if _MV_STATE:
        return
    from functools import lru_cache

    import math_verify.grader as mvg
    from math_verify import LatexExtractionConfig, parse, verify
    from sympy import Float, MatrixBase, Rational, UnevaluatedExpr
    from sympy.matrices.expressions import MatrixExpr

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    cfg = [LatexExtractionConfig(boxed_match_priority=0)]

    @lru_cache(maxsize=4096)
    def parse_cached(s: str):
        return parse("\\boxed{" + s + "}", extraction_config=cfg, parsing_timeout=None)

    pct_marker = UnevaluatedExpr(Rational(1, 100))

    def as_number(e):
        """``(rational_or_Float value, has_float, is_pct)`` or None when ``e`` is not a number."""
        pct = False
        try:
            from sympy import Mul

            if isinstance(e, Mul) and len(e.args) == 2 and e.args[1] == pct_marker:
                e, pct = e.args[0], True
            e = mvg.safe_sympy_doit(e)
            if not getattr(e, "is_number", False) or e.free_symbols:
                return None
            floats = e.atoms(Float)
            if floats:
                e = e.xreplace({f: Rational(str(f)) for f in floats})
            if e.is_Rational:
                return Fraction(int(e.p), int(e.q)), bool(floats), pct
            v = e.evalf(60)
            if not v.is_number or v.has(mvg.nan, mvg.zoo):
                return None
            return v, bool(floats), pct
        except Exception:
            return None

    def num_close(a, b, inexact: bool) -> bool:
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            return close_enough(a, b, not inexact, _MV_STATE.get("abs_tol"))
        from sympy import Abs, Max

        a_, b_ = (Rational(a.numerator, a.denominator) if isinstance(a, Fraction) else a), (
            Rational(b.numerator, b.denominator) if isinstance(b, Fraction) else b
        )
        diff = Abs((a_ - b_).evalf(60))
        scale = Max(Abs(a_.evalf(60)), Abs(b_.evalf(60)))
        tol = _MV_STATE.get("abs_tol")
        if tol is not None and bool(diff <= Rational(tol.numerator, tol.denominator)):
            return True
        if not inexact:
            return bool(diff <= Rational(1, 10**40) * scale) or bool(diff == 0)
        if a_ == 0 or b_ == 0:
            return bool(diff <= Rational(1, 10**12))
        return bool(diff <= Rational(1, 10**6) * scale)

    def patched_numeric_eq(a, b, float_rounding, numeric_precision):
        if isinstance(a, (MatrixBase, MatrixExpr)) and isinstance(b, (MatrixBase, MatrixExpr)):
            # doit() only on matrix expressions: on a plain matrix it would evaluate 10% to 1/10
            a = a if isinstance(a, MatrixBase) else mvg.safe_sympy_doit(a)
            b = b if isinstance(b, MatrixBase) else mvg.safe_sympy_doit(b)
            if isinstance(a, MatrixBase) and isinstance(b, MatrixBase) and a.shape == b.shape:
                return all(patched_numeric_eq(x, y, float_rounding, numeric_precision) for x, y in zip(a, b))
            return False
        na, nb = as_number(a), as_number(b)
        if na is not None and nb is not None:
            (va, fa, pa), (vb, fb, pb) = na, nb
            inexact = fa or fb
            if pa == pb:
                return num_close(va, vb, inexact)
            pv, ov = (va, vb) if pa else (vb, va)
            hundred = Fraction(100) if isinstance(pv, Fraction) else Rational(100)
            return num_close(pv, ov, inexact) or num_close(pv / hundred, ov, inexact)
        try:
            return (a - b).evalf(chop=True, n=numeric_precision) == 0
        except Exception:
            return False

    mvg.sympy_numeric_eq = patched_numeric_eq
    _MV_STATE.update(parse=parse_cached, verify=verify)


def _parsed_math(parsed: list) -> bool:
    """math-verify returned a math object (it returns only the raw string when parsing failed)."""
    return any(not isinstance(x, str) for x in parsed)


def _worker_check(pred: str, gold: str, abs_tol: Fraction | None = None) -> bool:
    """Full (possibly slow) equivalence check with math-verify; called inside a worker process.

    When either side does not parse into a math object the verdict is ``False``: math-verify
    would then compare the raw (often truncated) strings, which called ``1-\\frac{1}{\\mathrm{K}^{2}}``
    equal to ``1-\\frac{1}{\\mathrm{K}}`` (identical strings were already accepted by the quick path).
    """
    quick = quick_verdict(pred, gold, abs_tol)
    if quick is not None:
        return quick
    _mv_setup()
    p, g = drop_prefixes(prepare(pred), prepare(gold))
    if not p or not g:
        return False
    gold_parsed = _MV_STATE["parse"](g)
    pred_parsed = _MV_STATE["parse"](p)
    if not _parsed_math(gold_parsed) or not _parsed_math(pred_parsed):
        return False
    _MV_STATE["abs_tol"] = abs_tol
    try:
        return bool(_MV_STATE["verify"](gold_parsed, pred_parsed, timeout_seconds=None))
    finally:
        _MV_STATE["abs_tol"] = None


def _worker_main() -> None:  # pragma: no cover - runs in the child process
    """Worker loop: JSON lines on stdin -> JSON lines on a private copy of stdout."""
    import signal

    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol
    sys.stdout = sys.stderr
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    parent = os.getppid()

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    mem_mb = int(os.environ.get("RMXBENCH_GRADER_WORKER_MEM_MB", "4096"))
    if mem_mb > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (mem_mb * 2**20, mem_mb * 2**20))
        except Exception:
            pass
    try:
        _mv_setup()
        _worker_check("0.5", "\\frac{1}{2}")
        _worker_check("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(x+1)^2")
    except BaseException:
        import traceback

        proto.write(json.dumps({"ready": False, "error": traceback.format_exc()[-2000:]}) + "\n")
        return
    proto.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        try:
            tol = Fraction(req["tol"]) if req.get("tol") is not None else None
            resp = {"id": req["id"], "ok": _worker_check(req["pred"], req["gold"], tol)}
        except (Exception, RecursionError, MemoryError) as exc:
            resp = {"id": req["id"], "ok": False, "error": repr(exc)[:300]}
        proto.write(json.dumps(resp) + "\n")


# --------------------------------------------------------------------------------------------
# Worker pool (parent side)
# --------------------------------------------------------------------------------------------

_EOF = object()


class _Worker:
    """One persistent worker process; at most one request in flight."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.inbox: queue.Queue = queue.Queue()
        self.ready = False
        self._next_id = 0

    def start(self) -> None:
        env = dict(os.environ)
        pkg_parent = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")
        self.inbox = queue.Queue()
        self.ready = False
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from rmxbench.evaluation.grading_workers import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.proc, self.inbox), daemon=True).start()

    @staticmethod
    def _read(proc: subprocess.Popen, inbox: queue.Queue) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                inbox.put(json.loads(raw))
            except ValueError:
                continue
        inbox.put(_EOF)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_ready(self) -> None:
        if self.ready and self.alive():
            return
        if not self.alive():
            self.start()
        try:
            msg = self.inbox.get(timeout=WORKER_STARTUP_TIMEOUT_S)
        except queue.Empty:
            self.kill()
            raise GraderError(f"grader worker did not start within {WORKER_STARTUP_TIMEOUT_S:.0f} s")
        if msg is _EOF or not msg.get("ready"):
            err = "" if msg is _EOF else msg.get("error", "")
            self.kill()
            raise GraderError(
                "grader worker failed to start (is math-verify installed in this environment? "
                f"`pip install math-verify`).\n{err}"
            )
        self.ready = True

    def call(self, pred: str, gold: str, timeout_s: float, abs_tol: Fraction | None = None) -> tuple[bool, bool]:
        """Run one check; returns ``(correct, timed_out)``; kills + respawns on overrun."""
        self.ensure_ready()
        assert self.proc is not None and self.proc.stdin is not None
        self._next_id += 1
        rid = self._next_id
        deadline = time.monotonic() + timeout_s
        try:
            req = {"id": rid, "pred": pred, "gold": gold, "tol": None if abs_tol is None else str(abs_tol)}
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.restart()
            return False, True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.restart()
                return False, True
            try:
                msg = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg is _EOF:
                log.warning("grader worker died during a check; counted as timed out")
                self.restart()
                return False, True
            if msg.get("id") == rid:
                return bool(msg.get("ok")), False

    def kill(self) -> None:
        proc, self.proc, self.ready = self.proc, None, False
        if proc is None:
            return
        try:
            proc.kill()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (proc.stdin, proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    def restart(self) -> None:
        self.kill()
        self.start()  # non-blocking: imports happen while the caller moves on

    def close(self) -> None:
        self.kill()  # workers hold no state worth a graceful exit


class _Pool:
    def __init__(self, size: int) -> None:
        self.pid = os.getpid()
        self.workers = [_Worker() for _ in range(size)]
        self.idle: queue.Queue = queue.Queue()
        for w in self.workers:
            self.idle.put(w)

    def check(self, pred: str, gold: str, timeout_s: float, abs_tol: Fraction | None = None) -> tuple[bool, bool]:
        w = self.idle.get()
        try:
            return w.call(pred, gold, timeout_s, abs_tol)
        finally:
            self.idle.put(w)

    def warm_up(self) -> None:
        for w in self.workers:
            if not w.alive():
                w.start()
        for w in self.workers:
            w.ensure_ready()

    def close(self) -> None:
        for w in self.workers:
            w.close()


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def pool_size() -> int:
    try:
        n = int(os.environ.get("RMXBENCH_GRADER_WORKERS", "0"))
    except ValueError:
        n = 0
    return n if n > 0 else max(1, min(2, os.cpu_count() or 1))


def get_pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = _Pool(pool_size())
        return _POOL


def _after_fork_in_child() -> None:
    # never touch the parent's workers from a forked child; start our own lazily
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def shutdown() -> None:
    """Stop all worker processes of this process (also run automatically at interpreter exit)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


atexit.register(shutdown)


def warm_up() -> None:
    """Start the worker processes now (otherwise they start on the first check that needs one).

    Raises:
        GraderError: a worker could not start (math-verify missing or broken).
    """
    get_pool().warm_up()


def default_timeout() -> float:
    try:
        return float(os.environ.get("RMXBENCH_GRADER_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def worker_pids() -> list[int]:
    """PIDs of this process's live grader workers (diagnostics and tests)."""
    pool = _POOL
    if pool is None or pool.pid != os.getpid():
        return []
    return [w.proc.pid for w in pool.workers if w.proc is not None and w.alive()]
