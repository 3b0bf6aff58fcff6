"""A topology document's YAML text, read safely: PyYAML's SafeLoader with its failures made
IntentErrors at the line they concern, whatever the text (a topology may come from a
tenant through the API, not only from the operator's own file). Pure but for read_document."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tenet.model.errors import IntentError, Problem


def read_document(path: str | Path) -> Any:
    """A topology file's document, unvalidated; bad YAML is an IntentError naming the line."""
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError as e:
        raise IntentError((Problem("", f"not UTF-8 text (byte {e.start})"),), str(path)) from None
    return parse_document(text, str(path))


MAX_DEPTH = 64  # a topology nests about six levels deep


class _Loader(yaml.SafeLoader):
    """SafeLoader refusing documents nested deeper than MAX_DEPTH: PyYAML's composer recurses
    once per level, so 2 KB of brackets took a second to end in a RecursionError (and its
    scanner, quadratic in the brackets open, a third of one to get there)."""

    def fetch_flow_collection_start(self, token: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _guarded(construct: Any) -> Any:
    """A PyYAML scalar constructor whose failures are YAML errors at the value's line: an
    explicitly tagged value it cannot build (`!!float ''`, `!!timestamp x`, `!!bool maybe`)
    raised IndexError, AttributeError or KeyError from inside PyYAML."""
    def build(loader: Any, node: Any) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(None, None, f"{node.tag.rsplit(':', 1)[-1]} {node.value!r}: {e}",
                                                    node.start_mark) from None
    return build


for _tag in ("null", "bool", "int", "float", "binary", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _guarded(yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]))


def parse_document(text: str, source: str = "") -> Any:
    """A topology document from its YAML text, unvalidated; bad YAML is an IntentError
    naming the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except ValueError as e:  # a scalar YAML resolves but cannot build: 2001-13-45 as a date
        raise IntentError((Problem("", f"not valid YAML ({e})"),), source) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise IntentError((Problem("", f"{where}not valid YAML ({getattr(e, 'problem', e)})"),), source) from None
