"""Documented registry limits: which hosts they cover, and the error before an upload."""

from __future__ import annotations

import pytest

from ci_modelver.adapters.http import Credentials, RegistryHTTP, RetryPolicy
from ci_modelver.adapters.registry import RegistryStore
from ci_modelver.core.registry_limits import (
    GHCR_PATCH_LIMIT,
    check_layers,
    limits_for,
    patch_size,
)
from ci_modelver.errors import InputError, exit_code_of


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("ghcr.io", "GitHub Container Registry"),
        ("GHCR.IO", "GitHub Container Registry"),
        ("ghcr.io:443", "GitHub Container Registry"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "Amazon ECR"),
        ("public.ecr.aws", "Amazon ECR Public"),
        ("acme.azurecr.io", "Azure Container Registry"),
    ],
)
def test_known_hosts(host: str, name: str) -> None:
    found = limits_for(host)
    assert found is not None and found.name == name


@pytest.mark.parametrize(
    "host",
    [
        "docker.io",
        "quay.io",
        "europe-docker.pkg.dev",
        "127.0.0.1:5000",
        "notghcr.io",
        "ghcr.io.evil",
    ],
)
def test_registries_without_documented_limits_are_not_checked(host: str) -> None:
    assert limits_for(host) is None
    check_layers(host, [("huge.bin", 10**15)])  # nothing raised
    assert patch_size(host, 64 * 1024 * 1024) == 64 * 1024 * 1024


def test_ghcr_patch_cap_applies_to_any_chunk_size() -> None:
    assert patch_size("ghcr.io", 64 * 1024 * 1024) == GHCR_PATCH_LIMIT == 4 * 1024 * 1024
    assert patch_size("ghcr.io", 1024 * 1024) == 1024 * 1024


def test_a_layer_at_the_limit_passes_and_one_byte_more_is_refused() -> None:
    check_layers("ghcr.io", [("ok.bin", 10 * 1000**3)])
    with pytest.raises(InputError) as raised:
        check_layers("ghcr.io", [("ok.bin", 1), ("model.safetensors", 10 * 1000**3 + 1)])
    message = str(raised.value)
    assert exit_code_of(raised.value) == 2
    assert message.startswith("model.safetensors: ")
    assert "10 GB" in message and "ghcr.io" in message
    assert "shards" in message and "nothing was uploaded" in message
    assert "https://docs.github.com/" in message
    assert "\n" not in message


def test_ecr_limit_in_mib() -> None:
    host = "1.dkr.ecr.us-east-1.amazonaws.com"
    check_layers(host, [("w", 52_000 * 1024 * 1024)])
    with pytest.raises(InputError, match="52,000 MiB"):
        check_layers(host, [("w", 52_000 * 1024 * 1024 + 1)])


def _store(host: str, chunk: int | None) -> RegistryStore:
    http = RegistryHTTP(
        host,
        plain_http=False,
        credentials=Credentials("no credentials (anonymous)", None),
        policy=RetryPolicy(budget=10.0, timeout=5.0),
    )
    return RegistryStore(http, "acme/model", chunk_size=chunk)


def test_ghcr_gets_one_put_per_blob_unless_chunks_are_asked_for_and_then_4_mib() -> None:
    default = _store("ghcr.io", None)
    assert default.streams is False  # hashing while sending needs chunks: hashed first there
    asked = _store("ghcr.io", 64 * 1024 * 1024)
    assert asked.streams is True
    assert asked.uploader.chunk == GHCR_PATCH_LIMIT


def test_other_registries_stream_in_64_mib_chunks_or_the_size_asked_for() -> None:
    default = _store("registry.example.com", None)
    assert default.streams is True
    assert default.uploader.chunk == 64 * 1024 * 1024
    assert _store("registry.example.com", 8 * 1024 * 1024).uploader.chunk == 8 * 1024 * 1024
