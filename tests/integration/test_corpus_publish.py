"""Bad-input corpus, publish: versions that could never be consumed are refused before any upload.

Two kinds of version publish today and then fail for every consumer, forever (the version tag is
immutable): files whose paths collide on a case-insensitive or Unicode-normalising file system
(``pull`` refuses them), and manifests over the 4 MiB registries accept. Each case publishes into
the real registry (Debian's docker-registry) and into an OCI layout, and checks the corpus
contract (exit code, one ``error:`` line, the located finding) and that the store saw nothing:
no request at all for the repository in the registry's log, no tag, no layout folder.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_modelver.core.modelpack import MAX_MANIFEST_BYTES
from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.integration.test_bad_input_corpus import (
    FINDING,
    Case,
    World,
    call,
    check,
)
from tests.support.hostile_registry import model_artifact
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

T = ("--timeout", "5")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# ---------------------------------------------------------------------------------------------
# The world: the corpus World plus the real registry


@dataclass
class PublishWorld(World):
    real: Registry | None = None

    def repository(self, store: str, name: str) -> str:
        """``HOST/publish-corpus/NAME`` in the real registry, or ``oci:DIR`` of a fresh layout."""
        if store == "registry":
            assert self.real is not None
            return self.real.repo(f"publish-corpus/{name}")
        return f"oci:{self.tmp / 'layouts' / name}"


@pytest.fixture
def pworld(tmp_path: Path, registry: Registry) -> Iterator[PublishWorld]:
    w = PublishWorld(tmp_path, tmp_path / "no-template", real=registry)
    yield w
    w.close()


def _get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def assert_store_untouched(registry: Registry, repository: str) -> None:
    """Nothing was written to the repository (no blob upload, no tag), or no layout created.

    Reads are allowed: publish looks at the version tag and the newest version (HEAD and GET)
    to decide which files to hash before sending; they change nothing.
    """
    if repository.startswith("oci:"):
        assert not Path(repository[4:]).exists(), f"{repository} was created"
        return
    host, path = repository.split("/", 1)
    # The tag list is also the sentinel: once the log shows it, earlier requests are logged too.
    status, body = _get(f"http://{host}/v2/{path}/tags/list")
    assert status == 404 and b"NAME_UNKNOWN" in body, (status, body)
    deadline = time.monotonic() + 10
    while registry.requests_seen("GET", rf"^/v2/{re.escape(path)}/tags/list") < 1:
        assert time.monotonic() < deadline, "the registry never logged the sentinel request"
        time.sleep(0.05)
    seen = {m: registry.requests_seen(m, rf"^/v2/{re.escape(path)}/") for m in METHODS}
    writes = {m: n for m, n in seen.items() if m not in ("GET", "HEAD")}
    assert not any(writes.values()), f"the registry received writes for {path}: {seen}"


def assert_requests_logged(registry: Registry, repository: str, method: str) -> None:
    """The positive control of the log check: a publish that went through is seen in the log."""
    path = repository.split("/", 1)[1]
    deadline = time.monotonic() + 10
    while registry.requests_seen(method, rf"^/v2/{re.escape(path)}/") < 1:
        assert time.monotonic() < deadline, f"no {method} for {path} in the registry log"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# 1. Colliding paths


@dataclass(frozen=True)
class Collision:
    """Extra files (after make_model's files[0] weights and files[1] README.md) that collide."""

    paths: tuple[str, ...]
    findings: tuple[tuple[int, str], ...]  # (files index, message fragment), every one expected


COLLISIONS: dict[str, Collision] = {
    "case-only": Collision(
        ("Model.bin", "model.bin"),
        (
            (
                3,
                "file 'model.bin' is the same file as files[2] 'Model.bin' on file systems that ignore case",
            ),
        ),
    ),
    "nfc-and-nfd": Collision(
        (nfc("modèle.bin"), nfd("modèle.bin")),
        ((3, f"file '{nfd('modèle.bin')}' is the same file as files[2] '{nfc('modèle.bin')}'"),),
    ),
    "case-and-nfd-at-once": Collision(
        (nfc("MODÈLE.BIN"), nfd("modèle.bin")),
        ((3, f"is the same file as files[2] '{nfc('MODÈLE.BIN')}'"),),
    ),
    "the-manifest-own-readme": Collision(
        ("readme.md",),
        ((2, "file 'readme.md' is the same file as files[1] 'README.md'"),),
    ),
    "folder-spelled-two-ways-by-case": Collision(
        ("Data/x.bin", "data/x.bin"),
        ((3, "file 'data/x.bin' is the same file as files[2] 'Data/x.bin'"),),
    ),
    "folder-spelled-nfc-and-nfd": Collision(
        (nfc("café/x.bin"), nfd("café/x.bin")),
        ((3, f"is the same file as files[2] '{nfc('café/x.bin')}'"),),
    ),
    "dot-segments-and-case": Collision(
        ("./Model.bin", "model.bin"),
        ((3, "file 'model.bin' is the same file as files[2] './Model.bin'"),),
    ),
    "file-then-folder-by-case": Collision(
        ("Weights", "weights/part-0"),
        (
            (
                3,
                "file 'weights/part-0' lies inside files[2] 'Weights', which is a file on file systems",
            ),
        ),
    ),
    "folder-then-file-by-case": Collision(
        ("weights/part-0", "Weights"),
        (
            (
                3,
                "file 'Weights' is also the folder that holds files[2] 'weights/part-0' on file systems",
            ),
        ),
    ),
    "file-then-deep-folder-by-nfd": Collision(
        (nfc("modèle"), nfd("modèle/a/b.bin")),
        ((3, f"lies inside files[2] '{nfc('modèle')}', which is a file on file systems"),),
    ),
    "three-spellings-two-findings": Collision(
        ("w.bin", "W.bin", "w.BIN"),
        (
            (3, "file 'W.bin' is the same file as files[2] 'w.bin'"),
            (4, "file 'w.BIN' is the same file as files[2] 'w.bin'"),
        ),
    ),
    "exact-duplicate": Collision(
        ("x.bin", "./x.bin"),
        ((3, "file './x.bin' is listed twice (also files[2])"),),
    ),
}


def colliding_model(w: PublishWorld, name: str, paths: tuple[str, ...]) -> Path:
    """A model folder listing ``paths`` after its own two files; each file exists on disk."""
    return make_model(
        w.tmp / name,
        name="demo",
        extra_files={p: f"content of files[{i + 2}]".encode() for i, p in enumerate(paths)},
    )


@pytest.mark.parametrize("store", ["registry", "layout"])
@pytest.mark.parametrize("kind", list(COLLISIONS))
def test_colliding_paths_are_refused_before_any_upload(
    pworld: PublishWorld, registry: Registry, kind: str, store: str
) -> None:
    collision = COLLISIONS[kind]
    manifest = colliding_model(pworld, "m", collision.paths)
    repository = pworld.repository(store, f"collide-{kind}")
    invocation = call("publish", str(manifest), "--repository", repository, *T)
    result = run_cli(*invocation.args, env=pworld.env)
    problems = len(collision.findings)
    check(
        result, Case(2, f"{problems} problem(s); run 'ci-modelver validate", lambda w: invocation)
    )
    findings = [line for line in result.out.splitlines() if FINDING.match(line)]
    assert len(findings) == problems, result.out
    for index, fragment in collision.findings:
        located = [line for line in findings if line.endswith(f"($.files[{index}].path)")]
        assert located, f"no finding on files[{index}].path: {result.out!r}"
        assert fragment in located[0], located[0]
        assert located[0].startswith(f"{manifest}:{4 + 2 * index}:9: "), located[0]
    assert_store_untouched(registry, repository)


def test_validate_reports_the_same_collisions(pworld: PublishWorld) -> None:
    """``validate --format json`` gives the finding ``publish`` refuses with."""
    manifest = colliding_model(pworld, "m", COLLISIONS["nfc-and-nfd"].paths)
    result = run_cli("validate", str(manifest), "--format", "json", env=pworld.env)
    assert result.code == 2, result.err
    [finding] = json.loads(result.out)["findings"]
    assert finding["path"] == "$.files[3].path"
    assert finding["line"] == 10
    assert f"files[2] '{nfc('modèle.bin')}'" in finding["message"]


def test_names_pull_keeps_apart_publish_and_pull(pworld: PublishWorld, registry: Registry) -> None:
    """Control: trailing dots and spaces are distinct names for pull, so publish takes them."""
    paths = ("model.bin", "model.bin.", "model.bin ", "Model/x.bin")
    manifest = colliding_model(pworld, "m", paths)
    repository = pworld.repository("registry", "collide-control")
    published = run_cli("publish", str(manifest), "--repository", repository, *T, env=pworld.env)
    assert published.code == 0, published.err
    assert_requests_logged(registry, repository, "PUT")
    out = pworld.tmp / "out"
    pulled = run_cli("pull", f"{repository}:1.0.0", "-o", str(out), *T, env=pworld.env)
    assert pulled.code == 0, pulled.err
    for i, path in enumerate(paths):
        assert (out / path).read_bytes() == f"content of files[{i + 2}]".encode()


@pytest.mark.parametrize(
    ("layers", "fragment"),
    [
        (
            [nfc("modèle.bin"), nfd("modèle.bin")],
            f"refusing layers[1] path '{nfd('modèle.bin')}': it collides with layers[0]",
        ),
        (
            ["Data/a.bin", "data/a.bin"],
            "refusing layers[1] path 'data/a.bin': it collides with layers[0] 'Data/a.bin'",
        ),
        (
            ["weights/part-0", "WEIGHTS"],
            "refusing layers[1] path 'WEIGHTS': a parent folder is also a file",
        ),
    ],
)
def test_pull_refuses_the_same_collisions_from_a_registry(
    pworld: PublishWorld, layers: list[str], fragment: str
) -> None:
    """The hostile registry serves what publish now refuses: pull refuses it, writes nothing."""
    ref = pworld.serve(model_artifact({p: p.encode() for p in layers}))
    out = pworld.tmp / "out"
    result = run_cli("pull", ref, "-o", str(out), *T, env=pworld.env)
    check(result, Case(2, fragment, lambda w: call()))
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# 2. The manifest size limit

# Long paths make few files (one shared content blob) fill the manifest: each layer carries its
# path twice. 12 folders of 250 characters stay under NAME_MAX and, with the test folder, PATH_MAX.
DEEP = "/".join(f"{i:02d}" + "d" * 248 for i in range(12))


@dataclass(frozen=True)
class Sized:
    """A model folder whose manifest is ``size`` bytes (measured by publishing into a layout)."""

    folder: Path
    count: int
    description: str
    size: int


def _write_model(folder: Path, count: int, description: str) -> Path:
    deep = folder / DEEP
    deep.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = deep / f"f{i:05d}.bin"
        if not target.exists():
            target.write_bytes(b"the same bytes in every file")
    manifest: dict[str, Any] = {
        "name": "demo",
        "version": "1.0.0",
        "files": [{"path": f"{DEEP}/f{i:05d}.bin", "type": "weight"} for i in range(count)],
    }
    if description:
        manifest["description"] = description
    path = folder / "modelver.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False, width=1 << 20))
    return path


def _measure(root: Path, env: dict[str, str], count: int, description: str) -> Sized:
    """Publish into a fresh layout and read the manifest size from its index.json."""
    folder = root / "model"
    manifest = _write_model(folder, count, description)
    store = root / f"measure-{count}-{len(description)}"
    result = run_cli("publish", str(manifest), "--repository", f"oci:{store}", env=env)
    assert result.code == 0, result.err
    [entry] = json.loads((store / "index.json").read_bytes())["manifests"]
    size: int = entry["size"]
    return Sized(folder, count, description, size)


@pytest.fixture(scope="module")
def near_limit(tmp_path_factory: pytest.TempPathFactory) -> Sized:
    """The largest manifest that fits: within a few bytes under MAX_MANIFEST_BYTES."""
    root = tmp_path_factory.mktemp("near-limit")
    env = base_env(root / "home", MODELVER_NO_CACHE="1")
    # A description from the start: its keys cost bytes once, then each character costs two.
    a = _measure(root, env, 500, "x")
    b = _measure(root, env, 501, "x")
    per_file = b.size - a.size
    count = a.count + (MAX_MANIFEST_BYTES - a.size - 200) // per_file
    sized = _measure(root, env, count, "x")
    # The description appears twice in the manifest (its annotation and the version record).
    for _ in range(3):
        gap = MAX_MANIFEST_BYTES - sized.size
        if 0 <= gap <= 1:
            break
        length = len(sized.description) + gap // 2
        assert 0 <= length <= 4096, (gap, sized)
        sized = _measure(root, env, count, "x" * length)
    assert MAX_MANIFEST_BYTES - 1 <= sized.size <= MAX_MANIFEST_BYTES, sized
    return sized


def test_a_manifest_just_under_the_limit_publishes_and_pulls(
    near_limit: Sized, pworld: PublishWorld, registry: Registry
) -> None:
    manifest = _write_model(near_limit.folder, near_limit.count, near_limit.description)
    repository = pworld.repository("registry", "size-just-under")
    published = run_cli(
        "publish",
        str(manifest),
        "--repository",
        repository,
        "--format",
        "json",
        *T,
        env=pworld.env,
    )
    assert published.code == 0, published.err
    host, path = repository.split("/", 1)
    status, body = _get(f"http://{host}/v2/{path}/manifests/1.0.0")
    assert status == 200
    assert len(body) == near_limit.size
    out = pworld.tmp / "out"
    pulled = run_cli("pull", f"{repository}:1.0.0", "-o", str(out), *T, env=pworld.env)
    assert pulled.code == 0, pulled.err
    files = sorted((out / DEEP).iterdir())
    assert len(files) == near_limit.count
    assert files[-1].read_bytes() == b"the same bytes in every file"


SIZE_FRAGMENT = re.compile(
    r"demo 1\.0\.0: the OCI manifest is ([\d,]+) bytes, over the 4,194,304 bytes \(4 MiB\) "
    r"registries accept \(\$\.files: ([\d,]+) files take [\d,]+ bytes of it, the version record "
    r"[\d,]+\); list fewer files \(list a folder of many small files as the folder: one layer\), or shorten "
    r"description and hyperparameters"
)


@pytest.mark.parametrize("store", ["registry", "layout"])
@pytest.mark.parametrize(("extra_files", "extra_chars"), [(0, 2), (0, 4), (300, 0)])
def test_a_manifest_over_the_limit_is_refused_before_any_upload(
    near_limit: Sized,
    pworld: PublishWorld,
    registry: Registry,
    store: str,
    extra_files: int,
    extra_chars: int,
) -> None:
    """A few bytes over (a longer description) or far over (more files): exit 2, nothing sent."""
    count = near_limit.count + extra_files
    manifest = _write_model(pworld.tmp / "m", count, near_limit.description + "y" * extra_chars)
    name = f"size-over-{extra_files}-{extra_chars}"
    repository = pworld.repository(store, name)
    result = run_cli("publish", str(manifest), "--repository", repository, *T, env=pworld.env)
    check(result, Case(2, "registries accept ($.files:", lambda w: call()))
    error = result.err.splitlines()[-1]
    found = SIZE_FRAGMENT.search(error)
    assert found, error
    size = int(found.group(1).replace(",", ""))
    assert int(found.group(2).replace(",", "")) == count
    assert size > MAX_MANIFEST_BYTES
    if not extra_files:
        assert size <= near_limit.size + 2 * extra_chars + 8
    assert_store_untouched(registry, repository)
