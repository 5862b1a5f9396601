"""Credentials in references and recorded URLs; environment variables parse like their flags.

One mechanism each: ``refs.refuse_credentials`` (every reference parser calls it first) and
``refs.shown`` (every reference a message echoes) for references; ``text.strip_userinfo`` for every
URL that is recorded; ``settings`` reads a variable with its flag's own conversion.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_modelver.adapters.git import clean_remote_url, read_git
from ci_modelver.core.manifest import build_manifest
from ci_modelver.core.modelpack import PackedFile, Provenance, normalize_record, pack
from ci_modelver.core.refs import (
    check_digest,
    check_tag,
    is_loopback,
    parse_ref,
    shown,
    split_model_ref,
)
from ci_modelver.core.text import mask_credentials, redact_url, strip_userinfo, userinfo_span
from ci_modelver.errors import CredentialsInReference, InputError
from ci_modelver.settings import Settings

S = "s3cr3tT0ken"  # the secret: it must never come back
DIGEST = "sha256:" + "a" * 64

# ---------------------------------------------------------------------------------------------
# References carrying credentials

CREDENTIAL_REFERENCES = [
    f"https://user:{S}@ghcr.io/acme/model:1.0.0",
    f"http://user:{S}@127.0.0.1:5000/acme/model",
    f"https://{S}@ghcr.io/acme/model",
    f"user:{S}@ghcr.io/acme/model:1.0.0",
    f"{S}@ghcr.io/acme/model",
    f"user:{S}@localhost:5000/model@{DIGEST}",
    f"user:{S}@[::1]:5000/model",
    f"user:{S}@ghcr.io",
    f"oci://user:{S}@ghcr.io/acme/model:1.0.0",
    f"oci:user:{S}@store/model:1.0.0",
    f"docker://user:{S}@ghcr.io/acme/model:1.0.0",
    f"https://user:pa?{S}@ghcr.io/acme/model",
    f"https://user:pa#{S}@ghcr.io/acme/model",
    f"ghcr.io/acme/model?token={S}",
    f"ghcr.io/acme/model:1.0.0?access_token={S}",
    f"ghcr.io/acme/model?X-Amz-Signature={S}&X-Amz-Date=20260101",
    f"ghcr.io/acme/model?x-amz-signature={S}",
    f"ghcr.io/acme/model@{DIGEST}?sig={S}",
    f"ghcr.io/acme/model#access_token={S}",
    f"oci:/tmp/store?token={S}",
    f"https://user:{S}@ghcr.io/acme/my model",  # also a space: credentials are refused first
    f"https://user:{S}@ghcr.io/acme/model\n:1.0.0",
    f"  user:{S}@ghcr.io/acme/model  ",
]


@pytest.mark.parametrize("text", CREDENTIAL_REFERENCES)
def test_a_reference_with_credentials_is_refused_without_them(text: str) -> None:
    with pytest.raises(CredentialsInReference) as caught:
        parse_ref(text)
    message = str(caught.value)
    assert S not in message
    assert "\n" not in message
    assert message.startswith("invalid reference '")
    for where in ("MODELVER_REGISTRY_USERNAME", "MODELVER_REGISTRY_PASSWORD", "docker login"):
        assert where in message
    assert "registry-username" in message and "registry-password" in message
    assert "***" in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "text",
    [f"demo:1.0.0?token={S}", f"demo?access_token={S}", f"demo:1.0.0#access_token={S}"],
)
def test_a_model_name_with_credentials_is_refused(text: str) -> None:
    with pytest.raises(CredentialsInReference) as caught:
        split_model_ref(text)
    assert S not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "shown_as"),
    [
        (f"https://user:{S}@ghcr.io/acme/m:1.0.0", "https://***@ghcr.io/acme/m:1.0.0"),
        (f"user:{S}@ghcr.io/acme/m", "***@ghcr.io/acme/m"),
        (f"oci:user:{S}@dir/m", "oci:***@dir/m"),
        (f"oci://u:{S}@h/m", "oci://***@h/m"),
        (f"ghcr.io/acme/m?token={S}&x=1", "ghcr.io/acme/m?token=***&x=***"),
        (f"ghcr.io/acme/m?{S}", "ghcr.io/acme/m?***"),
        (f"ghcr.io/acme/m#{S}", "ghcr.io/acme/m#***"),
        # what carries no credentials is shown as it is
        ("ghcr.io/acme/m:1.0.0", "ghcr.io/acme/m:1.0.0"),
        (f"ghcr.io/acme/m@{DIGEST}", f"ghcr.io/acme/m@{DIGEST}"),
        (f"demo@{DIGEST}", f"demo@{DIGEST}"),
        (f"demo:1.0.0@{DIGEST}", f"demo:1.0.0@{DIGEST}"),
        ("oci:/tmp/a@b/m", "oci:/tmp/a@b/m"),
    ],
)
def test_references_are_shown_with_credentials_masked(text: str, shown_as: str) -> None:
    assert shown(text) == shown_as


@pytest.mark.parametrize(
    "text",
    [
        "ghcr.io/acme/model?tab=versions",  # a query that names no credential: still no query
        "ghcr.io/acme/model#readme",
    ],
)
def test_a_reference_has_no_query_and_its_values_are_not_echoed(text: str) -> None:
    with pytest.raises(InputError, match="no query string or fragment") as caught:
        parse_ref(text)
    assert not isinstance(caught.value, CredentialsInReference)
    assert "versions" not in str(caught.value) and "readme" not in str(caught.value)


def test_tags_and_digests_are_echoed_masked() -> None:
    with pytest.raises(InputError) as tag:
        check_tag(f"1.0.0?token={S}")
    with pytest.raises(InputError) as digest:
        check_digest(f"md5:abc?token={S}")
    assert S not in str(tag.value) and "1.0.0?token=***" in str(tag.value)
    assert S not in str(digest.value)


def test_references_without_credentials_still_parse() -> None:
    assert parse_ref(f"localhost:5000/model@{DIGEST}").digest == DIGEST
    assert parse_ref(f"oci:/tmp/a@b/store@{DIGEST}").repository == "/tmp/a@b/store"
    assert split_model_ref(f"demo@{DIGEST}") == ("demo", None, DIGEST)


_SECRETS = st.text(st.sampled_from("abcXYZ0189-_.~!$&'()*+,;="), min_size=8, max_size=20).map(
    lambda s: "Q" + s + "Q"
)
_SHAPES = st.sampled_from(
    [
        "https://u:{s}@ghcr.io/acme/m:1.0.0",
        "{s}@ghcr.io/acme/m",
        "u:{s}@ghcr.io/acme/m",
        "u:{s}@localhost:5000/m:1.0.0",
        "oci://u:{s}@h.io/m",
        "oci:u:{s}@dir/m",
        "ghcr.io/acme/m?token={s}",
        "ghcr.io/acme/m:1.0.0?access_token={s}",
        "ghcr.io/acme/m?X-Goog-Signature={s}",
        "demo:1.0.0?token={s}",
    ]
)


@given(shape=_SHAPES, secret=_SECRETS)
def test_no_reference_message_contains_the_secret(shape: str, secret: str) -> None:
    text = shape.format(s=secret)
    with pytest.raises(InputError) as caught:
        parse_ref(text)
    assert secret not in str(caught.value)
    try:  # bare model names go through the same check
        split_model_ref(text)
    except InputError as exc:
        assert secret not in str(exc)


# ---------------------------------------------------------------------------------------------
# Recorded URLs


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        (f"persistent-https://me:{S}@go.example/repo", "persistent-https://go.example/repo"),
        (f"ftp://u:{S}@files.example:2121/pub/x", "ftp://files.example:2121/pub/x"),
        (f"git+ssh://u:{S}@git.example:22/a/b.git", "git+ssh://git.example:22/a/b.git"),
        (f"https://x-access-token:{S}@github.com/a/b", "https://github.com/a/b"),
        (f"https://{S}@github.com/a/b", "https://github.com/a/b"),
        (f"https://u:{S}@[::1]:8443/a", "https://[::1]:8443/a"),
        (f"https://u:pa#{S}@github.com/a/b", "https://github.com/a/b"),
        (f"user:{S}@host.example:a/b.git", "host.example:a/b.git"),
        (
            f"s3://bucket/key?X-Amz-Signature={S}&X-Amz-Date=1",
            "s3://bucket/key?X-Amz-Signature=***&X-Amz-Date=1",
        ),
        (
            f"https://acct.blob.core.windows.net/c/f?sv=2022&sig={S}",
            "https://acct.blob.core.windows.net/c/f?sv=2022&sig=***",
        ),
        (
            f"https://data.example/x#access_token={S}&state=1",
            "https://data.example/x#access_token=***&state=1",
        ),
        # what holds no credentials is recorded as it is
        ("https://github.com/a/b", "https://github.com/a/b"),
        ("s3://bucket/train.parquet", "s3://bucket/train.parquet"),
        ("hf://datasets/acme/churn@main/train", "hf://datasets/acme/churn@main/train"),
        ("data/raw@v2/train.csv", "data/raw@v2/train.csv"),
        ("dataset@v2", "dataset@v2"),
        (f"churn@{DIGEST}", f"churn@{DIGEST}"),
        ("https://data.example/x?version=3", "https://data.example/x?version=3"),
    ],
)
def test_strip_userinfo(url: str, recorded: str) -> None:
    assert strip_userinfo(url) == recorded


@pytest.mark.parametrize(
    ("remote", "recorded"),
    [
        (f"persistent-https://me:{S}@go.example/repo", "persistent-https://go.example/repo"),
        (f"ftp://u:{S}@files.example/pub/x.git", "ftp://files.example/pub/x"),
        (f"git+ssh://u:{S}@git.example/a/b.git", "https://git.example/a/b"),
        (f"ssh://git:{S}@git.example:2222/a/b.git", "https://git.example/a/b"),
        (f"https://u:{S}@github.com:443/a/b.git", "https://github.com:443/a/b"),
        (f"http://oauth2:{S}@gitlab.example/a/b", "http://gitlab.example/a/b"),
        (f"user:{S}@host.example:a/b.git", "https://host.example/a/b"),
        (f"user:{S}@host.example/a/b.git", "host.example/a/b"),
        ("git@github.com:a/b.git", "https://github.com/a/b"),
        ("https://github.com/a/b.git", "https://github.com/a/b"),
        ("/srv/git/b.git", "/srv/git/b"),
        (f"https://u:{S}@host:99999/a", "https://host:99999/a"),  # a bad port: still stripped
        (f"https://u:{S}@[::1/a", "https://[::1/a"),
    ],
)
def test_git_remotes_lose_their_credentials_in_every_scheme(remote: str, recorded: str) -> None:
    assert clean_remote_url(remote) == recorded


_SCHEMES = st.from_regex(r"[a-z][a-z0-9+.-]{0,15}", fullmatch=True)


@given(scheme=_SCHEMES, secret=_SECRETS, user=st.from_regex(r"[a-z0-9._-]{0,8}", fullmatch=True))
def test_no_scheme_keeps_its_password(scheme: str, secret: str, user: str) -> None:
    url = f"{scheme}://{user}:{secret}@host.example:8080/path/x"
    assert strip_userinfo(url) == f"{scheme}://host.example:8080/path/x"
    assert secret not in clean_remote_url(url)
    assert secret not in redact_url(url)
    assert secret not in mask_credentials(url)


def test_userinfo_span_is_none_without_a_user() -> None:
    for text in ("ghcr.io/a/b", f"a/b@{DIGEST}", "s3://b/k", "plain text", ""):
        assert userinfo_span(text) is None


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    "remote",
    [
        f"persistent-https://me:{S}@go.example/repo",
        f"ftp://u:{S}@files.example/repo",
        f"git+ssh://u:{S}@git.example/repo",
        f"user:{S}@host.example:repo",
    ],
)
def test_read_git_records_the_remote_without_credentials(tmp_path: Path, remote: str) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "f").write_text("x")
    _git(tmp_path, "add", "f")
    _git(tmp_path, "commit", "-q", "-m", "c")
    _git(tmp_path, "remote", "add", "origin", remote)
    info = read_git(tmp_path)
    assert info.repository is not None and S not in info.repository
    assert "example" in info.repository


def test_pack_records_every_url_without_credentials() -> None:
    manifest = build_manifest(
        {"name": "demo", "version": "1.0.0", "files": [{"path": "w.bin", "type": "weight"}]},
        {"validation": {"accuracy": 0.9}},
    )
    provenance = Provenance(
        created="2026-01-01T00:00:00Z",
        code={
            "repository": f"persistent-https://me:{S}@go.example/repo",
            "runUrl": f"https://u:{S}@ghe.example/a/b/actions/runs/1",
            "commit": "c" * 40,
        },
        data=[
            {"name": "train", "uri": f"s3://bucket/k?X-Amz-Signature={S}"},
            {"name": "eval", "uri": f"ftp://u:{S}@files.example/eval"},
        ],
    )
    packed = pack(manifest, [PackedFile("w.bin", "weight", DIGEST, 1)], provenance)
    assert S.encode() not in packed.manifest
    assert S.encode() not in packed.config
    assert S not in repr(packed.record)
    assert packed.record["code"]["repository"] == "persistent-https://go.example/repo"
    assert packed.record["code"]["runUrl"] == "https://ghe.example/a/b/actions/runs/1"
    assert packed.record["data"][1]["uri"] == "ftp://files.example/eval"


def test_a_record_read_back_shows_no_credentials() -> None:
    record = normalize_record(
        {
            "code": {"repository": f"ftp://u:{S}@h.example/r", "commit": "c" * 40},
            "data": [{"name": "d", "uri": f"https://u:{S}@h.example/d"}],
        }
    )
    assert S not in repr(record)
    assert record["code"]["commit"] == "c" * 40


# ---------------------------------------------------------------------------------------------
# Loopback hosts


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "LocalHost:5000",
        "localhost.",
        "LOCALHOST.:5000",
        "[::1]",
        "[::1]:5000",
        "::1",
        "[0:0:0:0:0:0:0:1]:80",
        "[::ffff:127.0.0.1]:5000",
        "127.0.0.1",
        "127.8.9.10:80",
    ],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["ghcr.io", "10.0.0.1:5000", "localhost.example.com", "[::2]:80", "[::1", "", "x:"]
)
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_an_upper_case_localhost_is_a_registry_host() -> None:
    assert parse_ref("LOCALHOST:5000/model").host == "LOCALHOST:5000"
    assert parse_ref("LOCALHOST/model").host == "LOCALHOST"
    with pytest.raises(InputError, match=r"without its trailing '\.'"):
        parse_ref("localhost.:5000/model")


# ---------------------------------------------------------------------------------------------
# Environment variables take what their flags take


def _flag_parser() -> argparse.ArgumentParser:
    from ci_modelver.cli import build_parser

    return build_parser()


def _by_flag(flag: str, value: str) -> Settings | None:
    parser = _flag_parser()
    try:
        args = parser.parse_args(["show", "oci:x:1.0.0", f"--{flag}={value}"])
    except InputError:
        return None
    try:
        return Settings.build(
            {}, concurrency=args.concurrency, timeout=args.timeout, plain_http=args.plain_http
        )
    except InputError:
        return None


def _by_env(variable: str, value: str) -> Settings | None:
    try:
        return Settings.build({variable: value})
    except InputError:
        return None


VALUES = [
    "1.5",
    "2",
    " 3 ",
    "+4",
    "1e2",
    "1_000",
    "0x10",
    "abc",
    "inf",
    "nan",
    "-1",
    "0",
    "65",
    "٣",
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize(
    ("flag", "variable", "field"),
    [
        ("timeout", "MODELVER_TIMEOUT", "timeout"),
        ("concurrency", "MODELVER_CONCURRENCY", "concurrency"),
    ],
)
def test_each_variable_takes_exactly_what_its_flag_takes(
    flag: str, variable: str, field: str, value: str
) -> None:
    by_flag, by_env = _by_flag(flag, value), _by_env(variable, value)
    assert (by_flag is None) == (by_env is None), (value, by_flag, by_env)
    if by_flag is not None and by_env is not None:
        assert getattr(by_flag, field) == getattr(by_env, field)


def test_timeout_takes_a_fraction_from_the_environment() -> None:
    assert Settings.build({"MODELVER_TIMEOUT": "1.5"}).timeout == 1.5


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"MODELVER_TIMEOUT": "soon"},
            "environment variable MODELVER_TIMEOUT='soon' is not a number",
        ),
        ({"MODELVER_CONCURRENCY": "1.5"}, "MODELVER_CONCURRENCY='1.5' is not an integer"),
        ({"MODELVER_CHUNK_SIZE": "4k"}, "MODELVER_CHUNK_SIZE='4k' is not an integer"),
        ({"MODELVER_CHUNK_SIZE": "0"}, "must be at least 1024 bytes, got 0"),  # like --chunk-size 0
        ({"MODELVER_PLAIN_HTTP": "maybe"}, "MODELVER_PLAIN_HTTP='maybe' is not a boolean"),
        ({"MODELVER_TIMEOUT": "x" * 1000}, "is not a number"),
    ],
)
def test_bad_variables_are_refused(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.build(env)
    assert fragment in str(caught.value)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_boolean_variables(value: str, plain: bool) -> None:
    assert Settings.build({"MODELVER_PLAIN_HTTP": value}).plain_http is plain


def test_a_flag_wins_over_a_broken_variable() -> None:
    settings = Settings.build({"MODELVER_TIMEOUT": "soon"}, timeout=2.5)
    assert settings.timeout == 2.5
    assert Settings.build({"MODELVER_PLAIN_HTTP": "maybe"}, plain_http=True).plain_http
    assert Settings.build({"MODELVER_CHUNK_SIZE": ""}).chunk_size is None
