"""Open the Store a reference names: an OCI layout directory or a registry repository."""

from __future__ import annotations

from pathlib import Path

from ci_modelver.adapters.http import RegistryHTTP, RetryPolicy, find_credentials
from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.adapters.registry import RegistryStore
from ci_modelver.adapters.store import Store
from ci_modelver.core.refs import Reference, is_loopback, parse_ref
from ci_modelver.settings import Settings


def default_repository(name: str) -> str:
    """The embedded default: an OCI layout under ./.modelver/<name>."""
    return f"oci:.modelver/{name}"


def repository_for(settings: Settings, name: str) -> Reference:
    """--repository, else MODELVER_REPOSITORY, else the embedded layout store."""
    return parse_ref(settings.repository or default_repository(name))


def open_store(ref: Reference, settings: Settings, *, create: bool) -> Store:
    """A Store for ``ref``'s repository; a layout is created only when ``create``."""
    if ref.kind == "layout":
        root = Path(ref.repository)
        if not root.is_absolute():
            root = settings.cwd / root
        store = LayoutStore(root, create=create)
        store.display = f"oci:{ref.repository}"
        return store
    plain = settings.plain_http or is_loopback(ref.host)
    http = RegistryHTTP(
        ref.host,
        plain_http=plain,
        credentials=find_credentials(ref.host, settings.env),
        # A single request may take a quarter of the retry budget (at most a minute), so a stalled
        # registry still leaves room for retries within --timeout.
        policy=RetryPolicy(
            budget=settings.timeout, timeout=min(60.0, max(2.0, settings.timeout / 4))
        ),
        pool_size=settings.concurrency + 2,
        log=settings.log,
    )
    return RegistryStore(http, ref.path, chunk_size=settings.chunk_size)
