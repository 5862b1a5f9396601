"""The exception hierarchy. Each class carries the exit code the CLI returns for it."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every ci-modelver command (documented in the README)."""

    OK = 0
    GATE_FAILED = 1
    INVALID_INPUT = 2
    REMOTE_FAILURE = 3
    CONFLICT = 4
    INTERNAL = 70


class ModelverError(Exception):
    """Root of every error ci-modelver reports on purpose; the message is one line."""

    exit_code: ExitCode = ExitCode.INTERNAL


class InputError(ModelverError):
    """Bad flags, an invalid manifest, a missing or unreadable file: the user must change it."""

    exit_code = ExitCode.INVALID_INPUT


class RemoteError(ModelverError):
    """A registry, network or GitHub failure after retries; retrying may help."""

    exit_code = ExitCode.REMOTE_FAILURE


class ConflictError(ModelverError):
    """An immutable version tag already holds another digest."""

    exit_code = ExitCode.CONFLICT


class GateFailed(ModelverError):
    """A gated metric regressed past its tolerance."""

    exit_code = ExitCode.GATE_FAILED
