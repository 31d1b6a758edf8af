"""The spec checker's YAML loader: ``yaml.safe_load``'s constructors, with values they cannot build
kept as problems instead of crashes (used by :func:`rmxbench.spec.check.check_spec_file`)."""

from __future__ import annotations

from typing import Any

import yaml


class SafeLoaderKeepingBadScalars(yaml.SafeLoader):
    """PyYAML's ``SafeLoader`` (the ``yaml.safe_load`` constructors) that does not fail on a
    scalar it cannot construct (``date: 2026-13-45`` -> "month must be in 1..12", ``!!int abc``):
    the plain text is kept and the failure recorded in ``bad_scalars`` (``id(node) -> (node,
    reason)``), so it becomes a normal ``file:line: field: …`` problem instead of a crash."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.bad_scalars: dict[int, tuple[yaml.ScalarNode, str]] = {}

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # a constructor's own ValueError/OverflowError/…
            self.recursive_objects.pop(node, None)
            if not isinstance(node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read this value ({exc})", node.start_mark) from None
            self.bad_scalars[id(node)] = (node, str(exc) or type(exc).__name__)
            self.constructed_objects[node] = node.value
            return node.value
