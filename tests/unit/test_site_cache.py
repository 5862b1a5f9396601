"""The site's manifest cache: by digest, verified, tags always resolved again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ci_modelver.adapters.site_source import ManifestReader
from ci_modelver.core.modelpack import OCI_MANIFEST, Descriptor, sha256_digest

DATA = b'{"schemaVersion":2}'
DIGEST = sha256_digest(DATA)


class FakeStore:
    display = "fake"

    def __init__(self) -> None:
        self.gets: list[str] = []
        self.tag_digest = DIGEST

    def resolve(self, tag: str) -> Descriptor | None:
        return Descriptor(OCI_MANIFEST, self.tag_digest, len(DATA))

    def find_manifest(self, reference: str) -> tuple[bytes, str] | None:
        self.gets.append(reference)
        return (DATA, DIGEST) if reference in ("1.0.0", DIGEST) else None


def reader(store: FakeStore, cache: Path | None) -> Any:
    return ManifestReader(store, cache)  # type: ignore[arg-type]


def test_without_a_cache_tags_are_fetched() -> None:
    store = FakeStore()
    r = reader(store, None)
    assert r.by_tag("1.0.0") == (DATA, DIGEST)
    assert store.gets == ["1.0.0"] and (r.fetched, r.cached) == (1, 0)


def test_a_cached_manifest_is_read_by_digest_and_verified(tmp_path: Path) -> None:
    store = FakeStore()
    first = reader(store, tmp_path)
    assert first.by_tag("1.0.0") == (DATA, DIGEST)
    cached = tmp_path / "sha256" / DIGEST.split(":")[1]
    assert cached.read_bytes() == DATA and store.gets == [DIGEST]
    second = reader(store, tmp_path)
    assert second.by_tag("1.0.0") == (DATA, DIGEST) and store.gets == [DIGEST]
    assert (second.fetched, second.cached) == (0, 1)
    cached.write_bytes(b"tampered")
    third = reader(store, tmp_path)
    assert third.by_digest(DIGEST) == (DATA, DIGEST) and (third.fetched, third.cached) == (1, 0)
    assert cached.read_bytes() == DATA  # replaced by the verified bytes


def test_odd_digests_never_name_a_cache_file(tmp_path: Path) -> None:
    store = FakeStore()
    r = reader(store, tmp_path)
    assert r.by_digest("sha256:../../etc/passwd") is None
    assert not (tmp_path / "sha256").exists()
