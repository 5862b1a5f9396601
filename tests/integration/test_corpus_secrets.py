"""Secrets corpus: credentials written into references and recorded URLs never come back.

A password or token written into a reference (``https://user:pass@host/repo``, ``user:pass@…``,
``TOKEN@host/…``, ``oci:`` forms with a user, ``?token=``, ``?access_token=``, a presigned
``?X-Amz-Signature=…``), into ``MODELVER_REPOSITORY``, into a git remote of any scheme, into the
manifest's ``code.repository`` or ``data[].uri``, or into ``GITHUB_SERVER_URL`` must not appear in
stdout, stderr, any file written (layouts, ``$GITHUB_OUTPUT``, the job summary, pulled folders) or
any artifact. References are refused with exit 2 and one line saying where credentials go instead;
recorded URLs keep scheme, host, port and path without the user part.

Every command that takes a reference is run against the real registry (a published version under
the same repository, so a reference that were not refused would be found) and against layouts;
records written elsewhere with a token in them are served by the hostile registry.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.integration.test_bad_input_corpus import Case, World, call, check, template, world
from tests.support.hostile_registry import canonical
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

__all__ = ["template", "world"]  # fixtures shared with the bad-input corpus

S = "Zq9s3cr3tT0kenZq"  # the secret: no output, file or artifact may contain it
REFUSED = "credentials do not belong in a reference"
PATH = "secrets/demo"
T = ("--timeout", "5")
DATA_DIGEST = "sha256:" + "d" * 64


# ---------------------------------------------------------------------------------------------
# Where the secret is written into a reference. ``{target}`` is ':1.0.0' for commands that take a
# version and '' for those that take a repository; ``{host}`` is the real registry,
# ``{layout}`` an absolute layout folder holding demo 1.0.0.


class Form(NamedTuple):
    id: str
    template: str

    def text(self, host: str, layout: str, target: str) -> str:
        return self.template.format(host=host, layout=layout, target=target, path=PATH, s=S)


FORMS = [
    Form("https-user-password", "https://user:{s}@{host}/{path}{target}"),
    Form("http-user-password", "http://user:{s}@{host}/{path}{target}"),
    Form("https-token-as-user", "https://{s}@{host}/{path}{target}"),
    Form("user-password-no-scheme", "user:{s}@{host}/{path}{target}"),
    Form("token-as-user-no-scheme", "{s}@{host}/{path}{target}"),
    Form("oci-scheme-user-password", "oci://user:{s}@{host}/{path}{target}"),
    Form("oci-layout-user-password", "oci:user:{s}@{layout}{target}"),
    Form("docker-transport-user-password", "docker://user:{s}@{host}/{path}{target}"),
    Form("password-with-hash", "https://user:pa#{s}@{host}/{path}{target}"),
    Form("password-with-question-mark", "user:pa?{s}@{host}/{path}{target}"),
    Form("query-token", "{host}/{path}{target}?token={s}"),
    Form("query-access-token", "{host}/{path}{target}?access_token={s}"),
    Form("query-presigned-s3", "{host}/{path}{target}?X-Amz-Signature={s}&X-Amz-Expires=60"),
    Form("query-lowercase-amz-signature", "{host}/{path}{target}?x-amz-signature={s}"),
    Form("fragment-access-token", "{host}/{path}{target}#access_token={s}"),
    Form("oci-layout-query-token", "oci:{layout}{target}?token={s}"),
    Form("user-password-and-a-space", "https://user:{s}@{host}/{path} x{target}"),
    Form("user-password-and-a-newline", "user:{s}@{host}/{path}\n{target}"),
]


class Command(NamedTuple):
    id: str
    target: str  # ':1.0.0' (a version) or '' (a repository)
    args: Callable[[str, Path, Path, str], list[str]]  # (ref, tmp, manifest, good repo) → argv


COMMANDS = [
    Command("show", ":1.0.0", lambda r, t, m, g: ["show", r]),
    Command("show-json", ":1.0.0", lambda r, t, m, g: ["show", r, "--format", "json"]),
    Command("pull", ":1.0.0", lambda r, t, m, g: ["pull", r, "-o", str(t / "pulled")]),
    Command("versions", "", lambda r, t, m, g: ["versions", r]),
    Command("versions-json", "", lambda r, t, m, g: ["versions", r, "--format", "json"]),
    Command("history", "", lambda r, t, m, g: ["history", r]),
    Command("promote", ":1.0.0", lambda r, t, m, g: ["promote", r, "--alias", "production"]),
    Command("rollback", "", lambda r, t, m, g: ["rollback", r, "--alias", "production"]),
    Command("publish-repository", "", lambda r, t, m, g: ["publish", str(m), "--repository", r]),
    Command(
        "publish-repository-json",
        "",
        lambda r, t, m, g: ["publish", str(m), "--repository", r, "--format", "json"],
    ),
    Command("compare-repository", "", lambda r, t, m, g: ["compare", str(m), "--repository", r]),
    Command(
        "compare-baseline",
        ":1.0.0",
        lambda r, t, m, g: ["compare", str(m), "--repository", g, "--baseline", r],
    ),
    Command(
        "attach",
        ":1.0.0",
        lambda r, t, m, g: ["attach", r, "--metrics", str(t / "later.json"), "--set", "prod"],
    ),
    Command("reproduce", ":1.0.0", lambda r, t, m, g: ["reproduce", r]),
    Command("reproduce-json", ":1.0.0", lambda r, t, m, g: ["reproduce", r, "--format", "json"]),
]

# The same commands with a bare model name, the store coming from MODELVER_REPOSITORY.
BARE = [
    Command("show", "", lambda r, t, m, g: ["show", "demo:1.0.0"]),
    Command("pull", "", lambda r, t, m, g: ["pull", "demo:1.0.0", "-o", str(t / "pulled")]),
    Command("versions", "", lambda r, t, m, g: ["versions", "demo"]),
    Command("history", "", lambda r, t, m, g: ["history", "demo", "--format", "json"]),
    Command("promote", "", lambda r, t, m, g: ["promote", "demo:1.0.0", "--alias", "staging"]),
    Command("rollback", "", lambda r, t, m, g: ["rollback", "demo", "--alias", "staging"]),
    Command("publish", "", lambda r, t, m, g: ["publish", str(m)]),
    Command("compare", "", lambda r, t, m, g: ["compare", str(m)]),
    Command(
        "attach",
        "",
        lambda r, t, m, g: ["attach", "demo:1.0.0", "--metrics", str(t / "later.json")],
    ),
    Command("reproduce", "", lambda r, t, m, g: ["reproduce", "demo:1.0.0"]),
]


# ---------------------------------------------------------------------------------------------
# Shared set-up: demo 1.0.0 in the real registry and in a layout


@pytest.fixture(scope="module")
def published(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """``HOST/secrets/demo`` and a layout folder, both holding demo 1.0.0."""
    root = tmp_path_factory.mktemp("secrets")
    manifest = make_model(root / "model")
    env = base_env(root / "home", MODELVER_NO_CACHE="1")
    layout = root / "store"
    for repository in (registry.repo(PATH), f"oci:{layout}"):
        done = run_cli("publish", str(manifest), "--repository", repository, *T, env=env)
        assert done.code == 0, done.err
    return registry.repo(PATH), layout


class Scene(NamedTuple):
    tmp: Path
    manifest: Path
    env: dict[str, str]
    good: str  # HOST/secrets/demo
    host: str
    layout: str


@pytest.fixture
def scene(tmp_path: Path, published: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Scene:
    # A relative layout folder would be made in the current folder: keep it inside tmp_path.
    monkeypatch.chdir(tmp_path)
    good, layout = published
    manifest = make_model(tmp_path / "candidate", version="1.1.0")
    (tmp_path / "later.json").write_text(json.dumps({"accuracy": 0.8}))
    (tmp_path / "out.txt").write_text("")
    (tmp_path / "summary.md").write_text("")
    env = base_env(tmp_path / "home", MODELVER_NO_CACHE="1")
    return Scene(tmp_path, manifest, env, good, good.split("/", 1)[0], str(layout))


def assert_no_secret(result: Run, *folders: Path) -> None:
    """The secret is nowhere: not on stdout or stderr, in no file name and no file's bytes."""
    assert S not in result.out, result.out
    assert S not in result.err, result.err
    for folder in folders:
        for path in folder.rglob("*"):
            assert S not in path.name, path
            if path.is_file():
                assert S.encode() not in path.read_bytes(), path


def run(scene: Scene, argv: list[str], **env: str) -> Run:
    return run_cli(*argv, *T, env={**scene.env, **env})


# ---------------------------------------------------------------------------------------------
# 1. A reference carrying credentials: refused, exit 2, one line, the secret nowhere


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
@pytest.mark.parametrize("form", FORMS, ids=[f.id for f in FORMS])
def test_a_reference_with_credentials(scene: Scene, form: Form, command: Command) -> None:
    ref = form.text(scene.host, scene.layout, command.target)
    result = run(scene, command.args(ref, scene.tmp, scene.manifest, scene.good))
    check(result, Case(2, REFUSED, lambda w: call()))
    assert "MODELVER_REGISTRY_USERNAME" in result.err and "docker login" in result.err
    assert_no_secret(result, scene.tmp)
    assert not (scene.tmp / "pulled").exists()


@pytest.mark.parametrize("command", BARE, ids=[c.id for c in BARE])
@pytest.mark.parametrize("form", FORMS, ids=[f.id for f in FORMS])
def test_modelver_repository_with_credentials(scene: Scene, form: Form, command: Command) -> None:
    repository = form.text(scene.host, scene.layout, "")
    argv = command.args("", scene.tmp, scene.manifest, scene.good)
    result = run(scene, argv, MODELVER_REPOSITORY=repository)
    check(result, Case(2, REFUSED, lambda w: call()))
    assert_no_secret(result, scene.tmp)


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "https://user:{s}@{host}/{path}:1.0.0", "--debug"],
        ["pull", "{host}/{path}:1.0.0?token={s}", "--debug"],
        ["publish", "{manifest}", "--repository", "user:{s}@{host}/{path}", "--debug"],
    ],
    ids=["show", "pull", "publish"],
)
def test_debug_shows_no_secret_either(scene: Scene, argv: list[str]) -> None:
    """--debug prints the traceback: its lines are code and the masked message, never the value."""
    filled = [a.format(s=S, host=scene.host, path=PATH, manifest=scene.manifest) for a in argv]
    result = run(scene, filled)
    assert result.code == 2
    assert REFUSED in result.err
    assert_no_secret(result, scene.tmp)


@pytest.mark.parametrize("form", FORMS, ids=[f.id for f in FORMS])
def test_in_github_actions_no_workflow_file_holds_the_secret(scene: Scene, form: Form) -> None:
    """Inside GitHub Actions the error is also an annotation; outputs and summary stay clean."""
    actions = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(scene.tmp / "out.txt"),
        "GITHUB_STEP_SUMMARY": str(scene.tmp / "summary.md"),
    }
    for argv in (
        ["publish", str(scene.manifest), "--repository", form.text(scene.host, scene.layout, "")],
        ["compare", str(scene.manifest), "--repository", form.text(scene.host, scene.layout, "")],
    ):
        result = run(scene, argv, **actions)
        assert result.code == 2, result.err
        assert "::error" in result.out + result.err
        assert_no_secret(result, scene.tmp)


@pytest.mark.parametrize(
    ("to", "fragment"),
    [(f"1.0.0?token={S}", REFUSED), (f"1.0.0#access_token={S}", REFUSED)],
)
def test_rollback_to_with_a_token(scene: Scene, to: str, fragment: str) -> None:
    result = run(scene, ["rollback", scene.good, "--alias", "production", "--to", to])
    check(result, Case(2, fragment, lambda w: call()))
    assert_no_secret(result, scene.tmp)


@pytest.mark.parametrize(
    "baseline", [f"1.0.0?token={S}", f"prod?access_token={S}", f"sha256:abc?sig={S}"]
)
def test_a_baseline_tag_with_a_token_is_not_echoed(scene: Scene, baseline: str) -> None:
    argv = ["compare", str(scene.manifest), "--repository", scene.good, "--baseline", baseline]
    result = run(scene, argv)
    assert result.code == 2, result.err
    assert_no_secret(result, scene.tmp)


# ---------------------------------------------------------------------------------------------
# 2. Publishing records every URL without credentials


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


REMOTES = [
    pytest.param(
        f"persistent-https://me:{S}@go.example.com/acme/demo",
        "persistent-https://go.example.com/acme/demo",
        id="persistent-https",
    ),
    pytest.param(
        f"ftp://u:{S}@files.example.com:2121/acme/demo.git",
        "ftp://files.example.com:2121/acme/demo",
        id="ftp",
    ),
    pytest.param(
        f"git+ssh://u:{S}@git.example.com/acme/demo.git",
        "https://git.example.com/acme/demo",
        id="git+ssh",
    ),
    pytest.param(
        f"ssh://git:{S}@git.example.com:2222/acme/demo.git",
        "https://git.example.com/acme/demo",
        id="ssh-with-password",
    ),
    pytest.param(
        f"https://x-access-token:{S}@github.com/acme/demo.git",
        "https://github.com/acme/demo",
        id="https",
    ),
    pytest.param(
        f"http://{S}@gitlab.example.com:8080/acme/demo",
        "http://gitlab.example.com:8080/acme/demo",
        id="http-token-as-user",
    ),
    pytest.param(
        f"user:{S}@git.example.com:acme/demo.git",
        "https://git.example.com/acme/demo",
        id="scp-like-user-password",
    ),
    pytest.param(
        f"https://oauth2:{S}@git.example.com/acme/demo.git?private_token={S}",
        "https://git.example.com/acme/demo",
        id="https-and-a-query-token",
    ),
]


def _git_model(folder: Path, remote: str, **fields: Any) -> Path:
    manifest = make_model(folder, **fields)
    _git(folder, "init", "-q")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "model")
    _git(folder, "remote", "add", "origin", remote)
    return manifest


def _record(scene: Scene, ref: str) -> dict[str, Any]:
    shown = run(scene, ["show", ref, "--format", "json"])
    assert shown.code == 0, shown.err
    assert_no_secret(shown)
    document: dict[str, Any] = json.loads(shown.out)
    return document


def _find_code(document: Any) -> dict[str, Any]:
    """The ``code`` block of ``show --format json`` (wherever the result nests it)."""
    if isinstance(document, dict):
        code = document.get("code")
        if isinstance(code, dict) and "commit" in code:
            return code
        for value in document.values():
            found = _find_code(value)
            if found:
                return found
    if isinstance(document, list):
        for value in document:
            found = _find_code(value)
            if found:
                return found
    return {}


@pytest.mark.parametrize(("remote", "recorded"), REMOTES)
def test_a_git_remote_with_credentials_is_recorded_without_them(
    scene: Scene, remote: str, recorded: str
) -> None:
    manifest = _git_model(scene.tmp / "repo", remote)
    layout = scene.tmp / "published"
    result = run(
        scene, ["publish", str(manifest), "--repository", f"oci:{layout}", "--format", "json"]
    )
    assert result.code == 0, result.err
    assert_no_secret(result, layout)  # the raw manifest, config and index in the layout
    code = _find_code(_record(scene, f"oci:{layout}:1.0.0"))
    assert code.get("repository") == recorded


def test_a_registry_version_holds_no_remote_credentials(scene: Scene, registry: Registry) -> None:
    """Published to the real registry: the manifest and config it serves hold no secret."""
    remote = f"persistent-https://me:{S}@go.example.com/acme/demo"
    manifest = _git_model(scene.tmp / "repo", remote, name="gitdemo")
    repository = registry.repo("secrets/gitdemo")
    result = run(scene, ["publish", str(manifest), "--repository", repository])
    assert result.code == 0, result.err
    assert_no_secret(result)
    code = _find_code(_record(scene, f"{repository}:1.0.0"))
    assert code.get("repository") == "persistent-https://go.example.com/acme/demo"
    host = repository.split("/", 1)[0]
    request = urllib.request.Request(
        f"http://{host}/v2/secrets/gitdemo/manifests/1.0.0",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        raw = answer.read()
    assert S.encode() not in raw
    config = json.loads(raw)["config"]["digest"]
    with urllib.request.urlopen(
        f"http://{host}/v2/secrets/gitdemo/blobs/{config}", timeout=10
    ) as answer:
        assert S.encode() not in answer.read()


def test_manifest_and_github_urls_are_recorded_without_credentials(scene: Scene) -> None:
    """code.repository and data[].uri from the manifest, GITHUB_SERVER_URL from the runner."""
    manifest = make_model(
        scene.tmp / "declared",
        code={"repository": f"ftp://u:{S}@files.example.com/acme/demo"},
        data=[
            {
                "name": "train",
                "digest": DATA_DIGEST,
                "uri": f"s3://bucket/train.csv?X-Amz-Signature={S}&X-Amz-Date=1",
            },
            {
                "name": "eval",
                "digest": DATA_DIGEST,
                "uri": f"https://reader:{S}@data.example.com/eval.csv",
            },
            {
                "name": "holdout",
                "digest": DATA_DIGEST,
                "uri": f"https://data.example.com/holdout.csv?access_token={S}",
            },
        ],
    )
    layout = scene.tmp / "published"
    actions = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": "c" * 40,
        "GITHUB_REPOSITORY": "acme/demo",
        "GITHUB_RUN_ID": "42",
        "GITHUB_SERVER_URL": f"https://x-access-token:{S}@ghe.example.com",
        "GITHUB_OUTPUT": str(scene.tmp / "out.txt"),
        "GITHUB_STEP_SUMMARY": str(scene.tmp / "summary.md"),
    }
    result = run(scene, ["publish", str(manifest), "--repository", f"oci:{layout}"], **actions)
    assert result.code == 0, result.err
    assert_no_secret(result, layout)  # (the manifest itself holds the secret: our input)
    for written in ("out.txt", "summary.md"):
        assert S not in (scene.tmp / written).read_text()
    assert "sha256:" in (scene.tmp / "out.txt").read_text()  # the outputs were written
    document = _record(scene, f"oci:{layout}:1.0.0")
    text = json.dumps(document)
    assert "s3://bucket/train.csv?X-Amz-Signature=***&X-Amz-Date=1" in text
    assert "https://data.example.com/eval.csv" in text
    assert "https://data.example.com/holdout.csv?access_token=***" in text
    code = _find_code(document)
    assert code.get("repository") == "ftp://files.example.com/acme/demo"
    # The run URL keeps the server's host: only the user part is gone.
    assert "https://ghe.example.com/acme/demo/actions/runs/42" in text
    for argv in (["reproduce", f"oci:{layout}:1.0.0"], ["history", f"oci:{layout}"]):
        shown = run(scene, argv)
        assert shown.code == 0, shown.err
        assert_no_secret(shown)


# ---------------------------------------------------------------------------------------------
# 3. A record written elsewhere (an older tool, another publisher) with a token in its URLs


def _record_with(url: str) -> str:
    return canonical(
        {
            "schemaVersion": 1,
            "name": "model",
            "version": "1.0.0",
            "metrics": {"validation": {"accuracy": 0.9}},
            "code": {"repository": url, "commit": "c" * 40, "runUrl": url + "/actions/runs/1"},
            "data": [{"name": "train", "uri": url + "/train.csv"}],
        }
    ).decode()


@pytest.mark.parametrize(
    "url",
    [
        f"persistent-https://me:{S}@go.example.com/acme/demo",
        f"https://{S}@github.com/acme/demo",
        f"user:{S}@git.example.com:acme/demo",
    ],
)
@pytest.mark.parametrize(
    "argv",
    [["show"], ["show", "--format", "json"], ["reproduce"], ["reproduce", "--format", "json"]],
    ids=["show", "show-json", "reproduce", "reproduce-json"],
)
def test_a_served_record_with_a_token_is_shown_without_it(
    world: World, url: str, argv: list[str]
) -> None:
    ref = world.record(_record_with(url))
    result = run_cli(*argv[:1], ref, *argv[1:], "--timeout", "2", env=world.env)
    assert result.code == 0, result.err
    assert S not in result.out + result.err
    assert "example.com" in result.out or "github.com" in result.out


# ---------------------------------------------------------------------------------------------
# 4. Environment variables take what their flags take; LOCALHOST is loopback


def test_modelver_timeout_takes_a_fraction_like_its_flag(scene: Scene) -> None:
    # (not run(): it passes --timeout, which would win over the variable)
    env = {**scene.env, "MODELVER_TIMEOUT": "1.5"}
    by_env = run_cli("show", f"oci:{scene.layout}:1.0.0", env=env)
    by_flag = run_cli("show", f"oci:{scene.layout}:1.0.0", "--timeout", "1.5", env=scene.env)
    assert by_env.code == by_flag.code == 0, by_env.err
    assert by_env.out == by_flag.out


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        (
            "MODELVER_TIMEOUT",
            "soon",
            "environment variable MODELVER_TIMEOUT='soon' is not a number",
        ),
        ("MODELVER_CONCURRENCY", "2.5", "MODELVER_CONCURRENCY='2.5' is not an integer"),
        ("MODELVER_CHUNK_SIZE", "0", "must be at least 1024 bytes, got 0"),
        ("MODELVER_PLAIN_HTTP", "sometimes", "MODELVER_PLAIN_HTTP='sometimes' is not a boolean"),
    ],
)
def test_a_variable_refuses_what_its_flag_refuses(
    scene: Scene, variable: str, value: str, fragment: str
) -> None:
    result = run_cli("show", f"oci:{scene.layout}:1.0.0", env={**scene.env, variable: value})
    check(result, Case(2, fragment, lambda w: call()))


@pytest.mark.parametrize("spelling", ["LOCALHOST", "LocalHost"])
def test_an_upper_case_localhost_gets_plain_http(scene: Scene, spelling: str) -> None:
    """The registry listens on 127.0.0.1 without TLS: only plain HTTP reaches it."""
    port = scene.host.rsplit(":", 1)[1]
    result = run(scene, ["show", f"{spelling}:{port}/{PATH}:1.0.0", "--format", "json"])
    assert result.code == 0, result.err
    assert "1.0.0" in result.out
