"""Fixtures shared by the unit tests that need a store: every backend, etcd for real."""
import sys
from pathlib import Path

import pytest

from tenet.store.open import open_store

sys.path.insert(0, str(Path(__file__).parent))  # etcd_cluster.py

from etcd_cluster import EtcdCluster, needs_etcd  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("etcd", marks=needs_etcd)])
def url(request, tmp_path):
    """A fresh, empty store's URL: a SQLite file, or a one-member etcd started for the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    cluster = EtcdCluster(1)
    yield cluster.url
    cluster.stop()


@pytest.fixture
def store(url):
    """An open client of that store, closed after the test."""
    s = open_store(url)
    yield s
    s.close()
