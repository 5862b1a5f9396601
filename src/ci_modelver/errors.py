"""The exception hierarchy, and the one place that maps it (and anything else) to exit codes."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ci_modelver.core.source import Finding


class ExitCode(IntEnum):
    """Exit codes of every ci-modelver command (documented in docs/cli.md)."""

    OK = 0
    GATE_FAILED = 1
    INVALID_INPUT = 2
    REMOTE_FAILURE = 3
    CONFLICT = 4
    UNTRUSTED = 5
    INTERNAL = 70


class ModelverError(Exception):
    """Root of every error ci-modelver reports on purpose; the message is one line."""

    exit_code: ExitCode = ExitCode.INTERNAL
    # Located problems behind the error (shown before the one-line message), if any.
    findings: tuple[Finding, ...] = ()
    # Whether the boundary still has to annotate it in GitHub Actions (False: already done).
    annotate: bool = True


class InputError(ModelverError):
    """Bad flags, an invalid manifest, a missing or unreadable file: the user must change it."""

    exit_code = ExitCode.INVALID_INPUT


class CredentialsInReference(InputError):
    """A reference (or repository) carrying a user, password or token: refused without echoing it."""


class InvalidManifest(InputError):
    """The manifest has findings; the edges print them like ``validate`` does."""

    def __init__(self, file: str, findings: tuple[Finding, ...]) -> None:
        super().__init__(f"{file}: {len(findings)} problem(s); run 'ci-modelver validate {file}'")
        self.findings = findings


class DocumentTooLarge(InputError):
    """A YAML/JSON document nested or sized past our limits, found while it is being built."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class ManifestTooLarge(InputError):
    """An OCI manifest over the size registries accept: refused before it is stored or sent.

    Retrying cannot help (exit 2, not 3): the version itself must get smaller.
    """

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class InvalidMetrics(InputError):
    """The metrics file given to ``attach`` has findings."""

    def __init__(self, path: str, findings: tuple[Finding, ...]) -> None:
        super().__init__(f"{path}: {len(findings)} problem(s) in the metrics file")
        self.findings = findings


class TemplateError(InputError):
    """A report template that does not parse or render; the caller adds the template's path."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"report template: {detail}")
        self.detail = detail


class ArtifactError(InputError):
    """The content is not a model artifact ci-modelver can read, or is unsafe to unpack."""


class UnsafeArchive(InputError):
    """A tar layer that would write outside its folder, create devices, or exceed the size cap."""


class Reported(ModelverError):
    """A failure the command's own output already described (JSON findings): nothing more is said."""

    def __init__(self, exit_code: ExitCode) -> None:
        super().__init__("")
        self.exit_code = exit_code


class RemoteError(ModelverError):
    """A registry, network or GitHub failure after retries; retrying may help."""

    exit_code = ExitCode.REMOTE_FAILURE


class UploadSessionLost(RemoteError):
    """The registry no longer accepts an upload session (it refused a chunk); a new session
    starts from the first byte."""


class GitHubError(RemoteError):
    """GitHub refused a request, or did not answer within the budget (exit 3).

    ``kind`` names the answer (``locked``, ``too-long``, ``bad-token``, ``no-permission``,
    ``rate-limit``, ``secondary-rate-limit``, ``not-found``, ``server``, ``invalid``,
    ``timeout``, ``other``); ``status`` is its HTTP status, when there was an answer.
    """

    def __init__(self, message: str, kind: str = "other", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class TooSlow(RemoteError):
    """A request (answer and body) did not complete within its deadline: --timeout, and for a
    blob also its size at the minimum throughput (MODELVER_MIN_THROUGHPUT)."""


class UntrustedCertificate(RemoteError):
    """A registry's TLS certificate could not be verified: not retried, retrying cannot help."""


class JSONRefused(ValueError):
    """Outside JSON refused by the bounded parser (core/json_bounds): not JSON, too large, too deep.

    Carries the problem only (never the content); callers turn it into an InputError (a local
    file) or a RemoteError (a server's answer) that names the source.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class IntegrityError(ModelverError):
    """Downloaded bytes do not match their descriptor: never written to the destination."""

    exit_code = ExitCode.REMOTE_FAILURE


class ConflictError(ModelverError):
    """An immutable version tag already holds another digest."""

    exit_code = ExitCode.CONFLICT


class Untrusted(ModelverError):
    """No signature from a trusted signer covers the version, or what was pulled (exit 5).

    Raised for: no signature, a bad signature, an unknown signer, a statement for another
    digest, files that do not match the signed statement. Retrying cannot help; a trusted
    signer has to sign the version (``ci-modelver sign``), or the policy has to name the signer.
    """

    exit_code = ExitCode.UNTRUSTED


class BadSignature(Untrusted):
    """One signature bundle that cannot be trusted: unreadable, not in the expected format,
    or its signature does not verify. Carries the problem only (never key material); the
    verifier records it on that signature's check and goes on with the others."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class GateFailed(ModelverError):
    """A gated metric regressed past its tolerance, or a dataset no longer matches its digest."""

    exit_code = ExitCode.GATE_FAILED
    annotate = False  # each failed gate is annotated on its own


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) cancelled the run: transfers stopped, our temporary files removed.

    A KeyboardInterrupt (so a BaseException: no ``except Exception`` swallows it, and code that
    treats Ctrl-C as "stop now" treats SIGTERM alike); the message is one line.
    """

    signal_name = "SIGINT"

    def __init__(self) -> None:
        super().__init__(
            f"interrupted by {self.signal_name}: transfers in flight were cancelled and their "
            "temporary files removed; rerun to go on (an upload resumes from its last whole chunk)"
        )


class Terminated(Interrupted):
    """SIGTERM (a CI runner cancelling the job, ``kill``) cancelled the run; exit 143."""

    signal_name = "SIGTERM"


def exit_code_of(exc: BaseException) -> int:
    """The exit code for any exception: ours carry one; OSError splits local (2) from I/O (3)."""
    if isinstance(exc, ModelverError):
        return int(exc.exit_code)
    if isinstance(exc, Terminated):
        return 128 + 15  # the shell's convention for "ended by SIGTERM"
    if isinstance(exc, KeyboardInterrupt):
        return 128 + 2  # SIGINT
    if isinstance(exc, SystemExit):  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    if isinstance(exc, OSError):
        # A local file or folder the user named cannot be used (exit 2); anything else at the
        # operating-system level is an I/O or network failure that retrying may fix (exit 3).
        if getattr(exc, "filename", None) is not None:
            return int(ExitCode.INVALID_INPUT)
        return int(ExitCode.REMOTE_FAILURE)
    return int(ExitCode.INTERNAL)


class DeleteUnsupported(InputError):
    """The registry refuses to delete manifests (405, UNSUPPORTED) or deletes another way
    (GHCR: GitHub's Packages API; Docker Hub: its web UI or Hub API); the message names it."""


class LayoutUnreadable(InputError):
    """A layout manifest that cannot be read while collecting garbage: nothing is removed,
    since what it references is unknown."""
