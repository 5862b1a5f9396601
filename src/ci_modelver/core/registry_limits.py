"""Documented limits of hosted registries, checked before the first byte of a publish is sent.

Only limits the registry's owner documents are here (docs/performance.md#registry-limits lists
them with their sources, and the registries that document none). A limit we cannot prove
would refuse uploads that work.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from ci_modelver.core.text import human_size
from ci_modelver.errors import InputError

MIB = 1024 * 1024
GHCR_PATCH_LIMIT = 4 * MIB


@dataclass(frozen=True)
class Limits:
    """What one registry accepts."""

    name: str
    hosts: tuple[str, ...]  # fnmatch patterns, lower case
    max_layer: int | None  # bytes in one blob
    max_layer_text: str  # as the documentation says it
    max_patch: int | None  # bytes in one PATCH of a chunked upload
    source: str


KNOWN: tuple[Limits, ...] = (
    Limits(
        "GitHub Container Registry",
        ("ghcr.io",),
        # "10 GB" as GitHub writes it; the decimal reading is the stricter one.
        10 * 1000**3,
        "10 GB",
        # Not in GitHub's documentation: ghcr.io answers a larger PATCH with 416 "the request
        # body is too large and exceeds the maximum permissible limit of 4.00MiB".
        GHCR_PATCH_LIMIT,
        "https://docs.github.com/en/packages/working-with-a-github-packages-registry/"
        "working-with-the-container-registry#troubleshooting",
    ),
    Limits(
        "Amazon ECR Public",
        ("public.ecr.aws",),
        10_000 * MIB,
        "10,000 MiB",
        None,
        "https://docs.aws.amazon.com/AmazonECR/latest/public/public-service-quotas.html",
    ),
    Limits(
        "Amazon ECR",
        ("*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn"),
        52_000 * MIB,
        "52,000 MiB",
        None,
        "https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html",
    ),
    Limits(
        "Azure Container Registry",
        ("*.azurecr.io",),
        200 * 1024 * MIB,
        "200 GiB",
        None,
        "https://learn.microsoft.com/azure/container-registry/container-registry-skus",
    ),
)


def limits_for(host: str) -> Limits | None:
    """The documented limits of the registry at ``host`` (``name`` or ``name:port``), if any."""
    name = host.lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.lower()
    for limits in KNOWN:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in limits.hosts):
            return limits
    return None


def patch_size(host: str, wanted: int) -> int:
    """The PATCH chunk size to use at ``host``: ``wanted``, capped by the registry's limit."""
    limits = limits_for(host)
    if limits is not None and limits.max_patch is not None:
        return min(wanted, limits.max_patch)
    return wanted


def check_layers(host: str, layers: Iterable[tuple[str, int]]) -> None:
    """InputError (exit 2) naming the first layer over the registry's documented size limit."""
    limits = limits_for(host)
    if limits is None or limits.max_layer is None:
        return
    for name, size in layers:
        if size > limits.max_layer:
            raise InputError(
                f"{name}: {human_size(size)} is over the {limits.max_layer_text} per layer that "
                f"{limits.name} ({host}) accepts ({limits.source}); split it into shards "
                "(e.g. model-00001-of-00004.safetensors, listed with a glob) so that each "
                "file stays under the limit; nothing was uploaded"
            )
