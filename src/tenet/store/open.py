"""Pick a backend from a URL: sqlite:///path (embedded default) or
etcd://host:port[,host:port...][?cacert=PATH&cert=PATH&key=PATH] (docs/store.md)."""
from __future__ import annotations

from tenet.store.base import Store, StoreError


def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        from tenet.store.sqlite import SqliteStore

        return SqliteStore(url[len("sqlite://") :])
    if url.startswith("etcd://"):
        from tenet.store.etcd import EtcdStore

        return EtcdStore.from_url(url)
    raise StoreError(f"unknown store URL {url!r} (expected sqlite:///path or etcd://host:port[,host:port...])")
