"""The spec context: everything a spec's paths resolve to, resolved once.

:class:`SpecContext` carries the validated :class:`~rmxbench.spec.schema.Spec`, the spec file and
its folder, the benchmark data dir (``--data-dir`` > ``$RMXBENCH_DATA_DIR`` > ``protocol.data_dir``
relative to the spec folder > None = hub datasets), the artifact-store home (``--home`` >
``$RMXBENCH_HOME`` > user cache dir) and the reference file (paper-reported numbers). Commands
build one with :meth:`SpecContext.load`; every stage receives it and never re-resolves a path.

:func:`resolve_spec_path` is the one rule for a path written in a spec: ``package:<rel>`` is inside
the installed rmxbench package, a relative path is relative to the spec folder, ``~`` expands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rmxbench.errors import UserError
from rmxbench.spec.schema import Spec

PACKAGE_PREFIX = "package:"
#: Environment variable naming the artifact store folder.
HOME_ENV = "RMXBENCH_HOME"
#: Environment variable naming the benchmark data dir.
DATA_DIR_ENV = "RMXBENCH_DATA_DIR"


def resolve_spec_path(path: str, spec_dir: str | Path | None = None) -> Path:
    """Resolve a path written in a spec (see module doc); the result may not exist."""
    if path.startswith(PACKAGE_PREFIX):
        return Path(__file__).resolve().parents[1] / path[len(PACKAGE_PREFIX):]
    p = Path(path).expanduser()
    if not p.is_absolute() and spec_dir is not None:
        p = Path(spec_dir) / p
    return p


def default_home() -> Path:
    """``$RMXBENCH_HOME`` if set, else the platform's user cache dir for rmxbench."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rmxbench"))


def resolve_home(cli_home: str | Path | None = None) -> Path:
    """``--home`` > ``$RMXBENCH_HOME`` > user cache dir."""
    return Path(cli_home).expanduser() if cli_home else default_home()


def resolve_data_dir(explicit: str | Path | None = None, spec_value: str | None = None) -> Path | None:
    """Pick the benchmark data dir: ``explicit`` (``--data-dir``) > ``$RMXBENCH_DATA_DIR`` >
    ``spec_value`` (``protocol.data_dir``, already resolved against the spec folder) > None (hub).

    Raises:
        UserError: the chosen directory does not exist.
    """
    for value, origin in ((explicit, "--data-dir"), (os.environ.get(DATA_DIR_ENV), f"${DATA_DIR_ENV}"),
                          (spec_value, "protocol.data_dir")):
        if value:
            p = Path(value).expanduser()
            if not p.is_dir():
                raise UserError(f"data dir {str(value)!r} (from {origin}) is not a directory")
            return p.resolve()
    return None


@dataclass(frozen=True)
class SpecContext:
    """A loaded spec with its resolved paths (see module doc)."""

    spec: Spec
    path: Path
    dir: Path
    data_dir: Path | None
    home: Path

    @classmethod
    def of(cls, spec: Spec, spec_path: str | Path, *, data_dir: str | Path | None = None,
           home: str | Path | None = None) -> "SpecContext":
        """Context of an already validated ``spec`` read from ``spec_path``.

        Raises:
            UserError: the data dir (flag, environment or spec) is not a folder.
        """
        spec_path = Path(spec_path)
        spec_dir = spec_path.resolve().parent
        spec_value = spec.protocol.data_dir
        if spec_value and not os.path.isabs(os.path.expanduser(spec_value)):
            spec_value = str(spec_dir / spec_value)
        return cls(spec=spec, path=spec_path, dir=spec_dir,
                   data_dir=resolve_data_dir(str(data_dir) if data_dir is not None else None, spec_value),
                   home=resolve_home(home))

    @classmethod
    def load(cls, spec_path: str | Path, *, data_dir: str | Path | None = None,
             home: str | Path | None = None) -> "SpecContext":
        """Validate the spec file (:func:`rmxbench.spec.check.load_spec`) and resolve its paths.

        Raises:
            SpecError: the spec is invalid (file:line, field, allowed values).
            UserError: a bad data dir.
        """
        from rmxbench.spec.check import load_spec

        return cls.of(load_spec(spec_path), spec_path, data_dir=data_dir, home=home)

    def resolve(self, path: str) -> Path:
        """A spec-relative path (``package:``, relative or absolute) as a path."""
        return resolve_spec_path(path, self.dir)

    @property
    def reference(self) -> Path | None:
        """The spec's ``reference`` file (paper-reported numbers), or None."""
        return self.resolve(self.spec.reference) if self.spec.reference else None

    def with_spec(self, spec: Spec) -> "SpecContext":
        """The same paths for a modified spec (tests, ``rmxbench train`` overrides)."""
        return SpecContext(spec=spec, path=self.path, dir=self.dir, data_dir=self.data_dir, home=self.home)
