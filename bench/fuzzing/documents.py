"""Documents: the topology an operator (or a tenant, through `tenet apply`) hands the loader,
and the agent's config file. Mutated as text (lines, YAML/TOML tokens, bytes) and as parsed
trees (wrong types, missing keys, huge numbers, odd strings, duplicates). Each promises its
own error type, naming the cause."""
from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any

from fuzzing.mutate import mutate_text, mutate_tree
from fuzzing.run import Target
from tenet.agent.config import AgentConfig, ConfigError, config_of, render
from tenet.model.errors import IntentError
from tenet.model.document import parse_document
from tenet.model.load import load_intent
from tenet.store.records import HostRole

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "tests" / "lab"


def _show(x: Any) -> bytes:
    return x.encode(errors="backslashreplace") if isinstance(x, str) else repr(x).encode()


# -- topology ---------------------------------------------------------------------------------
TEXT_SHARE = 0.15


@lru_cache(maxsize=256)
def parsed(text: str) -> Any:
    """A text's document, {} if it has none (cached: seeds are mutated again and again)."""
    try:
        return parse_document(text)
    except IntentError:
        return {}


def _topology_seeds() -> tuple[str, ...]:
    return tuple(p.read_text() for p in sorted(LAB.glob("*.yaml")))


def _load(x: Any) -> None:
    doc = parse_document(x, "fuzz.yaml") if isinstance(x, str) else x
    load_intent(doc, "fuzz.yaml")


def _topology_mutate(rng: Random, x: Any, other: Any) -> Any:
    """Text mutations of a text now and then, else tree mutations of its document: PyYAML's
    pure-Python parser costs about ten times the loader, and text inputs mostly end there."""
    if isinstance(x, str) and rng.random() < TEXT_SHARE:
        return mutate_text(rng, x, other if isinstance(other, str) else "")
    tree = parsed(x) if isinstance(x, str) else x
    try:
        return mutate_tree(rng, tree)
    except RecursionError:  # a document nested too deeply to walk: the loader refuses it anyway
        return tree


# -- agent config -----------------------------------------------------------------------------
def _config_seeds() -> tuple[str, ...]:
    base = AgentConfig(host="h1", store="etcd://198.18.0.2:2379,198.18.0.3:2379?cacert=/etc/tenet/ca.pem", uplink="eth1",
                       network="pn1")
    return (render(base), render(replace(base, role=HostRole.ACCESS_SWITCH, authenticator=True, mab=True, radius="198.18.0.9:1812",
                                         secret_file="/etc/tenet/radius.secret", metrics="127.0.0.1:9108", resync=0.5)),
            render(replace(base, store="sqlite:///var/lib/tenet/store.db", udp_port=0, admission_shards=4, fast_lane=False)))


def _config_parse(text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def _toml(tree: Any) -> str:
    """A tree back to TOML text, as far as TOML can say it (what it cannot is skipped)."""
    lines, tables = [], []
    for k, v in (tree.items() if isinstance(tree, dict) else []):
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{json.dumps(str(k))} = {_toml_value(v)}")
    for name, t in tables:
        lines += ["", f"[{json.dumps(str(name))}]"] + [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, (list, tuple, set)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return '""'
    return json.dumps(str(v))


def _config_mutate(rng: Random, x: str, other: str) -> str:
    """Half text, half tree: tomllib is fast enough for both."""
    if rng.random() < 0.5:
        return mutate_text(rng, x, other)
    return _toml(mutate_tree(rng, _config_parse(x)))


def _config(x: str) -> None:
    config_of(x, "agent.toml")


TARGETS = (
    Target("topology", _topology_seeds(), _topology_mutate, _load, (IntentError,), show=_show),
    Target("config", _config_seeds(), _config_mutate, _config, (ConfigError,), show=_show),
)
