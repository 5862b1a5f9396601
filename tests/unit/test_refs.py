"""The reference grammar: parse and format are inverses; bad references get one clear line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_modelver.core.refs import (
    Reference,
    format_ref,
    is_loopback,
    is_version_tag,
    parse_ref,
    semver_key,
)
from ci_modelver.errors import InputError

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ghcr.io/acme/models/iris:1.2.0",
            Reference("registry", "ghcr.io/acme/models/iris", "1.2.0"),
        ),
        (
            f"127.0.0.1:5000/iris@{DIGEST}",
            Reference("registry", "127.0.0.1:5000/iris", digest=DIGEST),
        ),
        ("localhost:5000/a/b", Reference("registry", "localhost:5000/a/b")),
        ("[::1]:5000/x:prod", Reference("registry", "[::1]:5000/x", "prod")),
        ("oci:.modelver/iris:1.2.0", Reference("layout", ".modelver/iris", "1.2.0")),
        ("oci:/tmp/store", Reference("layout", "/tmp/store")),
        (f"oci:store@{DIGEST}", Reference("layout", "store", digest=DIGEST)),
    ],
)
def test_parse_and_format_are_inverses(text: str, expected: Reference) -> None:
    assert parse_ref(text) == expected
    assert format_ref(expected) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("acme/iris:1.0.0", "not a registry host"),
        ("ghcr.io/Acme/iris", "must be lowercase"),
        ("ghcr.io/acme/iris:" + "a" * 129, "longer than 128"),
        ("ghcr.io/acme/iris:bad!tag", "has a character outside"),
        ("ghcr.io/acme/iris@sha512:" + "a" * 128, "only sha256"),
        ("ghcr.io/acme/iris@sha256:abc", "64 lowercase hex"),
        ("https://ghcr.io/acme/iris", "drop the scheme"),
        ("ghcr.io", "registry host and repository path"),
        ("oci:", "needs a directory"),
        ("", "empty reference"),
    ],
)
def test_bad_references(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_ref(text)


_component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,5})?", fullmatch=True)


@given(
    host=st.sampled_from(["ghcr.io", "127.0.0.1:5000", "localhost", "registry.example.com:443"]),
    parts=st.lists(_component, min_size=1, max_size=4),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)),
)
def test_roundtrip_property(host: str, parts: list[str], tag: str | None) -> None:
    ref = Reference("registry", f"{host}/{'/'.join(parts)}", tag)
    assert parse_ref(format_ref(ref)) == ref


@given(st.text(max_size=80))
def test_parse_never_crashes(text: str) -> None:
    try:
        parse_ref(text)
    except InputError as exc:
        assert "\n" not in str(exc)


def test_loopback_detection() -> None:
    assert is_loopback("localhost:5000")
    assert is_loopback("127.0.0.5:80")
    assert is_loopback("[::1]:5000")
    assert not is_loopback("ghcr.io")
    assert not is_loopback("10.0.0.1:5000")


def test_semver_ordering() -> None:
    versions = [
        "1.0.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "0.9.9",
        "1.10.0",
        "1.2.0",
    ]
    ordered = sorted(versions, key=semver_key)
    assert ordered == [
        "0.9.9",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.2.0",
        "1.10.0",
    ]
    assert is_version_tag("2.0.0-rc.1")
    assert not is_version_tag("production")
    assert not is_version_tag("latest")


@pytest.mark.parametrize("text", ["prod\n", "1.0.0\n", "sha256:" + "a" * 64 + "\n"])
def test_a_trailing_newline_is_never_part_of_a_valid_name(text: str) -> None:
    from ci_modelver.core.refs import DIGEST_RE, SEMVER_RE, TAG_RE

    assert not TAG_RE.match(text) and not SEMVER_RE.match(text) and not DIGEST_RE.match(text)
