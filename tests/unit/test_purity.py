"""The pure core (model, compute, wire, and the state machines and desired-state functions
beside the agent's effects) imports no I/O: it is computed, never effected."""
import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "tenet"
PURE = ("model", "compute", "wire")
PURE_MODULES = ("agent.admission", "agent.authenticator", "agent.eap_relay", "agent.proxy8021x", "agent.desired", "agent.translation",
                "agent.rates", "agent.port_security", "agent.underlay_guard",
                "agent.reconcile", "agent.kernel.state", "aaa.provisioning",
                "aaa.accounting", "aaa.accounting_outbox", "agent.accounting", "agent.session_counters",
                "store.records")  # the store's values: a schema, read by the pure core too
FORBIDDEN = {"socket", "subprocess", "pyroute2", "asyncio", "sqlite3", "select", "threading",
             "multiprocessing", "ctypes", "os", "shutil", "signal", "nftables", "pyrad"}


def _pure(module: str) -> bool:
    rest = module.removeprefix("tenet.")
    return rest.split(".")[0] in PURE or rest in PURE_MODULES


def offences():
    files = [f for pkg in PURE for f in sorted((SRC / pkg).rglob("*.py"))]
    files += [SRC / (m.replace(".", "/") + ".py") for m in PURE_MODULES]
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                pkg = node.module.startswith("tenet.") and not _pure(node.module)  # from tenet.agent import x
                names = [f"{node.module}.{a.name}" for a in node.names] if pkg else [node.module]
            for n in names:
                if n.split(".")[0] in FORBIDDEN or (n.startswith("tenet.") and not _pure(n)):
                    yield f"{f.relative_to(SRC)}:{node.lineno} imports {n}"


def test_pure_core_has_no_effects():
    found = list(offences())
    assert not found, "\n".join(found)


def test_the_check_sees_files():
    assert len(list((SRC / "compute").rglob("*.py"))) >= 4


def test_test_modules_have_unique_basenames():
    """pytest imports test files by basename here (no __init__.py): two alike break collection."""
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in (Path(__file__).parents[1]).rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
