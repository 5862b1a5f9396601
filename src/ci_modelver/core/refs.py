"""The reference grammar in one place: parse and format are inverses.

Registry:  HOST[:PORT]/PATH[:TAG|@sha256:HEX]   e.g. ghcr.io/acme/models/iris:1.2.0
Layout:    oci:DIR[:TAG|@sha256:HEX]            e.g. oci:.modelver/iris:1.2.0 (skopeo's form)
Model:     NAME[:TAG|@sha256:HEX]               e.g. iris:1.2.0 (that model in the default store)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from ci_modelver.core.text import mask_credentials, one_line, secret_parameters, userinfo_span
from ci_modelver.errors import CredentialsInReference, InputError

# '\Z', not '$': in Python '$' also matches before a trailing newline ('prod\n').
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPO_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*\Z")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z"
)
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?\Z"
)
MODEL_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*\Z")
LAYOUT_PREFIX = "oci:"
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")
# Where registry credentials go instead (docs/reliability.md#authentication).
CREDENTIALS_ADVICE = (
    "credentials do not belong in a reference (it is shown in logs and recorded); give them as "
    "MODELVER_REGISTRY_USERNAME and MODELVER_REGISTRY_PASSWORD, through 'docker login' (or a "
    "docker config credential helper), or as the action's registry-username and "
    "registry-password inputs"
)


def _credential_view(text: str) -> tuple[str, bool]:
    """``text`` with any credentials masked, and whether it carried some.

    A registry reference never has an '@' before its first '/' nor a query, so any user part
    (``https://u:p@…``, ``u:p@host/…``, ``TOKEN@host/…``, ``oci://u:p@…``) counts, and every
    query value is masked; in ``oci:DIR`` only ``user:password@`` does (a folder may hold '@').
    """
    prefix, body, registry = "", text, True
    if text.startswith(LAYOUT_PREFIX) and not text.startswith(LAYOUT_PREFIX + "//"):
        prefix, body, registry = LAYOUT_PREFIX, text[len(LAYOUT_PREFIX) :], False
    found = userinfo_span(body, bare_user=registry) is not None or bool(secret_parameters(body))
    return prefix + mask_credentials(body, bare_user=registry, all_parameters=True), found


def shown(text: str, limit: int = 200) -> str:
    """A reference (or a part of one) as a message shows it: credentials masked, one line."""
    return one_line(_credential_view(text)[0], limit)


def refuse_credentials(text: str) -> None:
    """CredentialsInReference (without the secret) when ``text`` carries a user or a token."""
    masked, found = _credential_view(text)
    if found:
        raise CredentialsInReference(
            f"invalid reference '{one_line(masked, 200)}': {CREDENTIALS_ADVICE}"
        )


@dataclass(frozen=True)
class Reference:
    """A parsed reference: where the repository is, and optionally which tag or digest."""

    kind: str  # "registry" or "layout"
    repository: str  # registry: HOST[:PORT]/PATH ; layout: DIR
    tag: str | None = None
    digest: str | None = None

    @property
    def host(self) -> str:
        """Registry host[:port] (registry references only)."""
        return self.repository.split("/", 1)[0]

    @property
    def path(self) -> str:
        """Repository path inside the registry (registry references only)."""
        return self.repository.split("/", 1)[1]

    @property
    def name(self) -> str:
        """The last component of the repository: usually the model name."""
        return self.repository.rstrip("/").rsplit("/", 1)[-1]

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, tag=None, digest=digest)

    def bare(self) -> Reference:
        return replace(self, tag=None, digest=None)

    def __str__(self) -> str:
        return format_ref(self)


def format_ref(ref: Reference) -> str:
    """The canonical string of ``ref``; ``parse_ref(format_ref(r)) == r``."""
    prefix = LAYOUT_PREFIX if ref.kind == "layout" else ""
    out = f"{prefix}{ref.repository}"
    if ref.digest:
        return f"{out}@{ref.digest}"
    if ref.tag:
        return f"{out}:{ref.tag}"
    return out


def check_tag(tag: str, what: str = "tag") -> str:
    """Return ``tag`` if it is a valid OCI tag, else raise InputError explaining the rule."""
    if not TAG_RE.match(tag):
        reason = (
            "longer than 128 characters"
            if len(tag) > 128
            else "has a character outside A-Z a-z 0-9 . _ - (or starts with . or -)"
        )
        raise InputError(f"invalid {what} '{shown(tag, 140)}': {reason}")
    return tag


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 lowercase hex>``, else raise InputError."""
    if DIGEST_RE.match(digest):
        return digest
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256":
        raise InputError(
            f"unsupported digest '{shown(digest, 80)}': only sha256 digests are supported"
        )
    raise InputError(
        f"invalid digest '{shown(digest, 80)}': expected sha256: followed by 64 lowercase hex digits "
        f"(got {len(hexpart)} characters)"
    )


def _split_target(text: str) -> tuple[str, str | None, str | None]:
    """``repo@digest`` / ``repo:tag`` / ``repo`` → (repo, tag, digest)."""
    if "@" in text:
        repo, _, digest = text.partition("@")
        return repo, None, check_digest(digest)
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash and colon != -1:
        return text[:colon], check_tag(text[colon + 1 :]), None
    return text, None, None


def split_model_ref(text: str) -> tuple[str, str | None, str | None] | None:
    """``NAME[:TAG|@DIGEST]`` → (name, tag, digest); None when ``text`` is not a bare model name.

    A bare name has no '/' and no ``oci:`` prefix, so it can never be mistaken for a registry
    reference (which always has HOST/PATH). Text carrying credentials is refused here too.
    """
    refuse_credentials(text)
    if "/" in text or text.startswith(LAYOUT_PREFIX) or len(text) > 128 + 1 + 128 + 71:
        return None
    name, at, digest = text.partition("@")
    tag = None
    if not at:
        name, colon, tag_text = text.partition(":")
        tag = tag_text if colon else None
    if len(name) > 128 or not MODEL_NAME_RE.match(name):
        return None
    if at:
        return name, None, check_digest(digest)
    return name, check_tag(tag, "tag") if tag is not None else None, None


def parse_ref(text: str) -> Reference:
    """Parse a registry or layout reference; raise InputError saying what is wrong."""
    text = text.strip(" \t")
    # First of all: no message below may echo a password or token.
    refuse_credentials(text)
    if _UNSAFE.search(text):
        raise InputError(
            f"invalid reference '{shown(text)}': it contains control characters or spaces"
        )
    if not text:
        raise InputError("empty reference: give HOST/PATH[:TAG] or oci:DIR[:TAG]")
    if text.startswith(LAYOUT_PREFIX):
        return _parse_layout(text)
    return _parse_registry(text)


def _parse_layout(text: str) -> Reference:
    body = text[len(LAYOUT_PREFIX) :]
    if "@" in body:
        where, _, at = body.rpartition("@")
        return Reference("layout", _layout_dir(where, text), digest=check_digest(at))
    directory: str = body
    tag: str | None = None
    head, sep, tail = body.rpartition(":")
    if sep and "/" not in tail and head:
        directory, tag = head, check_tag(tail)
    return Reference("layout", _layout_dir(directory, text), tag=tag)


def _parse_registry(text: str) -> Reference:
    if "://" in text:
        raise InputError(
            f"invalid reference '{shown(text)}': drop the scheme, e.g. ghcr.io/acme/model:1.0.0"
        )
    if "?" in text or "#" in text:
        raise InputError(
            f"invalid reference '{shown(text)}': a reference has no query string or fragment; "
            "drop the '?' or '#' and what follows"
        )
    # The host part may carry a port (host:5000/...), so split the host off first.
    host, slash, rest = text.partition("/")
    if not slash or not rest:
        raise InputError(
            f"invalid reference '{shown(text)}': give the registry host and repository path, "
            "e.g. ghcr.io/acme/model:1.0.0 (or oci:DIR for a local OCI layout)"
        )
    _check_host(host, text)
    path, rtag, rdigest = _split_target(rest)
    if not REPO_PATH_RE.match(path):
        hint = " (repository names must be lowercase)" if path.lower() != path else ""
        raise InputError(
            f"invalid repository path '{shown(path)}' in '{shown(text)}': use lowercase letters, "
            f"digits and single separators . _ - between them, '/' between components{hint}"
        )
    if len(host) + 1 + len(path) > 255:
        raise InputError(
            f"invalid reference '{shown(text, 80)}': repository name longer than 255 characters"
        )
    return Reference("registry", f"{host}/{path}", rtag, rdigest)


def _check_host(host: str, text: str) -> None:
    port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else ""
    if port.isdigit() and not 0 < int(port) <= 65535:
        raise InputError(
            f"invalid reference '{shown(text)}': port {port} is out of range (1-65535)"
        )
    if not _looks_like_host(host):
        undotted = re.sub(r"\.(?=(?::[0-9]*)?$)", "", host)  # localhost.:5000 → localhost:5000
        if undotted != host and _looks_like_host(undotted):
            raise InputError(
                f"invalid reference '{shown(text)}': write the host '{shown(host)}' without its "
                "trailing '.'"
            )
        raise InputError(
            f"invalid reference '{shown(text)}': '{shown(host)}' is not a registry host; write it "
            f"in full, e.g. docker.io/{shown(text)} or ghcr.io/{shown(text)}"
        )


def _looks_like_host(host: str) -> bool:
    if not _HOST_RE.match(host):
        return False
    return "." in host or ":" in host or host.lower() == "localhost" or host.startswith("[")


def _layout_dir(directory: str, text: str) -> str:
    if not directory:
        raise InputError(
            f"invalid reference '{shown(text)}': oci: needs a directory, e.g. oci:.modelver/model"
        )
    return directory


def is_loopback(host: str) -> bool:
    """Whether a registry host (with optional port) is this machine: plain HTTP is safe there.

    ``localhost`` in any letter case and as the absolute name ``localhost.``, 127.0.0.0/8, ``::1``
    (bracketed or not, also as ``::ffff:127.0.0.1``).
    """
    name = host.strip()
    if name.startswith("["):
        close = name.find("]")
        if close == -1:
            return False
        name = name[1:close]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_version_tag(tag: str) -> bool:
    """Version tags (SemVer) are immutable; everything else is a movable alias."""
    return SEMVER_RE.match(tag) is not None


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Sort key giving SemVer 2.0 precedence (a release sorts after its prereleases)."""
    match = SEMVER_RE.match(version)
    if not match:
        raise ValueError(f"not a SemVer version: {version}")
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts: list[tuple[int, int | str]] = []
    for ident in pre.split("."):
        parts.append((0, int(ident)) if ident.isdigit() else (1, ident))
    return (int(major), int(minor), int(patch), 0, tuple(parts))
