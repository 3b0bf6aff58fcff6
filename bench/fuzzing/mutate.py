"""Mutations, pure given the Random they draw from: bytes (AFL's havoc, without coverage),
text (lines and YAML/TOML tokens) and trees (what a parsed document can hold)."""
from __future__ import annotations

import datetime
from random import Random
from typing import Any

BYTES = (0, 1, 2, 3, 4, 0x0F, 0x10, 0x20, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
WORDS = (0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 16, 20, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
DWORDS = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFF, 0x1000000)


def _int_at(rng: Random, b: bytearray, size: int, values: tuple[int, ...]) -> None:
    if len(b) < size:
        return
    off = rng.randrange(len(b) - size + 1)
    v = rng.choice(values) if rng.random() < 0.8 else rng.randrange(1 << (8 * size))
    b[off:off + size] = (v & ((1 << (8 * size)) - 1)).to_bytes(size, rng.choice(("big", "little")))


def havoc_once(rng: Random, b: bytearray, other: bytes) -> None:
    """One in-place mutation; `other` is another input to splice from."""
    op = rng.randrange(12)
    n = len(b)
    if op == 0 and n:
        i = rng.randrange(n)
        b[i] ^= 1 << rng.randrange(8)
    elif op == 1 and n:
        b[rng.randrange(n)] = rng.randrange(256)
    elif op == 2 and n:
        b[rng.randrange(n)] = rng.choice(BYTES)
    elif op == 3:
        _int_at(rng, b, 2, WORDS)
    elif op == 4:
        _int_at(rng, b, 4, DWORDS)
    elif op == 5:
        at = rng.randrange(n + 1)
        b[at:at] = rng.randbytes(rng.randrange(1, 17))
    elif op == 6 and n:
        at = rng.randrange(n)
        del b[at:at + rng.randrange(1, 17)]
    elif op == 7 and n:
        at = rng.randrange(n)
        piece = b[at:at + rng.randrange(1, 33)]
        to = rng.randrange(n + 1)
        b[to:to] = piece
    elif op == 8 and n:
        del b[rng.randrange(n):]
    elif op == 9 and other:
        at, cut = rng.randrange(n + 1), rng.randrange(len(other))
        b[at:] = other[cut:]
    elif op == 10:
        b += rng.randbytes(rng.randrange(1, 65))
    elif n:  # a byte range set to one value (zeros, 0xff): lengths and padding
        at = rng.randrange(n)
        k = rng.randrange(1, 9)
        b[at:at + k] = bytes([rng.choice((0, 0xFF, rng.randrange(256)))]) * len(b[at:at + k])


def havoc(rng: Random, data: bytes, other: bytes = b"", rounds: int = 0) -> bytes:
    """`data` after 1..8 stacked mutations (or `rounds`)."""
    b = bytearray(data)
    for _ in range(rounds or 1 << rng.randrange(4)):
        havoc_once(rng, b, other)
    return bytes(b)


# -- text -------------------------------------------------------------------------------------
TOKENS = (
    "", "~", "null", "true", "no", "yes", "on", "0", "-1", "007", "0x1F", "0o17", "1_000", "1e999", "-.inf", ".nan",
    "18446744073709551616", "99999999999999999999999999999999", "2001-13-45", "2001-02-29", "2026-11-30T25:61:61Z",
    "[]", "{}", "[a, b]", "{a: 1}", "''", '""', '"\\u0000"', '"\\ud800"', "é", "\u202e", "🙂", "a b", "x" * 300,
    "!!binary aGVsbG8=", "!!set {a, b}", "!!str 5", "!!int x", "!!float ''", "!!timestamp 2001-01-01", "!!omap [a: 1]",
    "!!bool maybe", "!!null x", "!!int ''", "!!str [a]", "!!map x", "!!seq x", "!!merge x", "!!value x", "!!pairs x",
    "!!binary é", "!local x", "!!python/object:os.system x", "!<tag:x> y",
    "&a", "*a", "*nope", "<<: *a", "? [a]", "|", ">", "- ", ": ", "#", "%YAML 1.1", "---", "...", "\t", "'", '"', "[", "{",
    "10.0.0.1/33", "10.0.0.256/24", "::1/129", "ff02::1/64", "239.1.1.1", "224.0.0.1", "0.0.0.0/0", "ff:ff:ff:ff:ff:ff",
    "01:00:5e:00:00:01", "02:AA:00:00:00:01", "16777216", "4095", "1Gbit", "0bit", "-5Mbit", "1e3kbit", "9999999Tbit",
)


def text_once(rng: Random, lines: list[str], other: list[str]) -> None:
    op = rng.randrange(9)
    n = len(lines)
    if op == 0 and n:
        del lines[rng.randrange(n)]
    elif op == 1 and n:
        i = rng.randrange(n)
        lines.insert(rng.randrange(n + 1), lines[i])
    elif op == 2 and n > 1:
        i, j = rng.randrange(n), rng.randrange(n)
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 3 and n:  # a value replaced by a token
        i = rng.randrange(n)
        line = lines[i]
        cut = line.rfind(": ")
        if cut < 0:
            cut = line.find("- ")
        head = line[:cut + 2] if cut >= 0 else line[:rng.randrange(len(line) + 1)]
        lines[i] = head + rng.choice(TOKENS)
    elif op == 4 and n:  # a token dropped into the middle of a line
        i = rng.randrange(n)
        at = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:at] + rng.choice(TOKENS) + lines[i][at:]
    elif op == 5 and n:  # indentation changed
        i = rng.randrange(n)
        stripped = lines[i].lstrip(" ")
        lines[i] = " " * rng.choice((0, 1, 2, 3, 4, 6, 8, 40)) + stripped
    elif op == 6 and other:
        lines.insert(rng.randrange(n + 1), rng.choice(other))
    elif op == 7:  # deep nesting
        depth = rng.choice((10, 100, 1000))
        lines.insert(rng.randrange(n + 1), "deep: " + "[" * depth + "]" * depth * rng.randrange(2))
    elif n:  # characters, as bytes would be
        i = rng.randrange(n)
        raw = havoc(rng, lines[i].encode(), rounds=rng.randrange(1, 4))
        lines[i] = raw.decode("utf-8", errors=rng.choice(("replace", "ignore", "backslashreplace")))


def mutate_text(rng: Random, text: str, other: str = "") -> str:
    lines = text.split("\n")
    others = other.split("\n") if other else []
    for _ in range(1 << rng.randrange(3)):
        text_once(rng, lines, others)
    return "\n".join(lines)


# -- trees (parsed YAML, JSON or TOML) --------------------------------------------------------
def odd_values(rng: Random) -> Any:
    """A value of a kind a parsed document can hold, chosen to break assumptions."""
    return rng.choice((
        None, True, False, 0, -1, 1, 2**31, 2**32, 2**63, -(2**63), 2**64 + 1, 10**30, -(10**30), 0.5, -0.0, 1e308,
        float("inf"), float("-inf"), float("nan"), "", " ", "x", "é", "\u202e", "\0", "🙂", "a\nb", "[red]x[/]", "{0,11}",
        "10.0.0.1/24", "10.0.0.1", "::1", "ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01", "1Gbit", "x" * 200, b"\x00\xff",
        [], {}, [None], {"": None}, {1: 2}, {None: None}, [[[]]], {"a": {"b": {"c": {}}}}, set(), {"a"},
        datetime.date(2001, 1, 1), datetime.datetime(2001, 1, 1, 1, 1), list(range(5)), {"x": list(range(3))},
    ))


def _nodes(tree: Any, path: tuple = ()) -> list[tuple]:
    """Every path into the tree's mappings and lists (the root is ())."""
    out = [path]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _nodes(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _nodes(v, path + (i,))
    return out


def _at(tree: Any, path: tuple) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def copy_tree(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: copy_tree(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [copy_tree(v) for v in tree]
    return tree


def _keys(tree: Any) -> list:
    return [k for p in _nodes(tree) for k in p[-1:] if not isinstance(k, int)]


def tree_once(rng: Random, tree: Any) -> Any:
    """The tree after one mutation at a random node (the root may be replaced)."""
    paths = _nodes(tree)
    path = rng.choice(paths)
    node = _at(tree, path)
    parent = _at(tree, path[:-1]) if path else None
    op = rng.randrange(10)
    if not path:
        return odd_values(rng) if op == 0 else tree if not isinstance(tree, dict) else _mutate_mapping(rng, tree, tree)
    key = path[-1]
    if op <= 2:  # a wrong value
        parent[key] = odd_values(rng)
    elif op == 3:  # gone
        del parent[key]
    elif op == 4:  # its type changed, content kept
        parent[key] = (list(node.items()) if isinstance(node, dict) else dict(enumerate(node)) if isinstance(node, list)
                       else str(node) if not isinstance(node, str) else _numberish(rng, node))
    elif op == 5:  # a sibling's value
        parent[key] = copy_tree(_at(tree, rng.choice(paths)))
    elif op == 6 and isinstance(node, (dict, list)) and node:
        _mutate_container(rng, node, tree)
    elif op == 7 and isinstance(parent, dict):  # renamed: odd key, duplicate of another's, non-string
        new = rng.choice([rng.choice(_keys(tree) or ["k"]), 1, None, True, 2.5, "", "é", "x" * 40, "a b", "-"])
        parent[new] = parent.pop(key)
    elif op == 8 and isinstance(node, str):  # the string bent
        parent[key] = rng.choice((node.upper(), node + node, node[: len(node) // 2], node + "\0", " " + node,
                                  node.replace(".", ":"), node + "/99", "é" + node))
    elif isinstance(node, int) and not isinstance(node, bool):
        parent[key] = rng.choice((node + 1, node - 1, -node, node * 2**32, node ** 3, 0))
    else:
        parent[key] = odd_values(rng)
    return tree


def _numberish(rng: Random, s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        return rng.choice((0, -1, 2**70, 1.5, None))


def _mutate_mapping(rng: Random, d: dict, tree: Any) -> dict:
    _mutate_container(rng, d, tree)
    return d


def _mutate_container(rng: Random, node: dict | list, tree: Any) -> None:
    """An entry duplicated (same content, new name) or an unknown one added."""
    if isinstance(node, list):
        node.insert(rng.randrange(len(node) + 1), copy_tree(rng.choice(node)) if node else odd_values(rng))
        return
    if node and rng.random() < 0.6:
        k = rng.choice(list(node))
        node[f"{k}2" if isinstance(k, str) else k] = copy_tree(node[k])
        node[f"{k}-dup"] = copy_tree(node[k])
    else:
        node[rng.choice(("bogus", "nics", "vnid", "ip", "network", "host", "mac", 7))] = odd_values(rng)


def mutate_tree(rng: Random, tree: Any) -> Any:
    """A mutated deep copy: 1..4 stacked mutations."""
    tree = copy_tree(tree)
    for _ in range(1 << rng.randrange(3)):
        tree = tree_once(rng, tree)
    return tree
