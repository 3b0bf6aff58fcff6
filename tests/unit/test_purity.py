"""The pure core (model, compute, wire) imports no I/O: it is computed, never effected."""
import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "tenet"
PURE = ("model", "compute", "wire")
FORBIDDEN = {"socket", "subprocess", "pyroute2", "asyncio", "sqlite3", "select", "threading",
             "multiprocessing", "ctypes", "os", "shutil", "signal", "nftables", "pyrad"}


def offences():
    for pkg in PURE:
        for f in sorted((SRC / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for n in names:
                    if n.split(".")[0] in FORBIDDEN or (n.startswith("tenet.") and n.split(".")[1] not in PURE):
                        yield f"{f.relative_to(SRC)}:{node.lineno} imports {n}"


def test_pure_core_has_no_effects():
    found = list(offences())
    assert not found, "\n".join(found)


def test_the_check_sees_files():
    assert len(list((SRC / "compute").rglob("*.py"))) >= 4
