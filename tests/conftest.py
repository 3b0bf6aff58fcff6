"""Lab tests need root (namespaces); unit tests never do."""
import os
from pathlib import Path

import pytest

LAB = Path(__file__).parent / "lab"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="lab tests need root: they create network namespaces")
    for item in items:
        if LAB in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)
            if os.geteuid() != 0:
                item.add_marker(skip)
