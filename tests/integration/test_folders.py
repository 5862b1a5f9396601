"""A real third-party model folder, published as one folder layer and as files by pattern.

The folder is ``attacut/artifacts/attacut-sc/`` of the PyPI wheel ``attacut==1.0.6`` (MIT, a Thai
word tokenizer: ``params.yml`` config, ``characters.json`` and ``syllables.json`` vocabularies,
``model.pth`` weights). Nobody here made it, and its files are checked against the wheel's own
RECORD. The wheel is fetched once with pip (``--no-deps --require-hashes``; attacut is never
installed or imported) into a cache outside the checkout, so later runs work offline.

It goes to the real registry and to the embedded OCI layout, comes back with ``pull``
byte-identical, and survives ``skopeo copy --preserve-digests`` registry → layout unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import base_env
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

WHEEL = "attacut-1.0.6-py3-none-any.whl"
# sha256 of the wheel on PyPI (pip verifies it with --require-hashes; we check it again).
WHEEL_SHA256 = "d04193149476d1c371c7d0177a4363ba70d1a6d6f7d2246a577669eb4ea93f2c"
FOLDER = "attacut/artifacts/attacut-sc/"
FILES = ("characters.json", "model.pth", "params.yml", "syllables.json")
TAR_WEIGHT = "application/vnd.cncf.model.weight.v1.tar"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ci-modelver-tests" / "wheels"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the integration tests must run")
    pytest.skip(reason)


def _download(cache: Path, tmp: Path) -> Path:
    wheel = cache / WHEEL
    if wheel.is_file() and _sha256(wheel) == WHEEL_SHA256:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    requirements = tmp / "requirements.txt"
    requirements.write_text(f"attacut==1.0.6 --hash=sha256:{WHEEL_SHA256}\n")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes"),
            *("--only-binary", ":all:", "-r", str(requirements), "-d", str(cache)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0 or not wheel.is_file() or _sha256(wheel) != WHEEL_SHA256:
        _unavailable(f"could not download {WHEEL} with pip: {done.stderr.strip()[-300:]}")
    return wheel


def _recorded_digests(archive: zipfile.ZipFile) -> dict[str, str]:
    """The wheel's RECORD: path → urlsafe-base64 sha256 (without padding)."""
    record = archive.read("attacut-1.0.6.dist-info/RECORD").decode()
    out = {}
    for line in record.splitlines():
        path, digest, _size = line.rsplit(",", 2)
        if digest.startswith("sha256="):
            out[path] = digest.removeprefix("sha256=")
    return out


@pytest.fixture(scope="session")
def attacut_sc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``attacut-sc/`` unpacked from the wheel, each file checked against the wheel's RECORD."""
    tmp = tmp_path_factory.mktemp("attacut")
    wheel = _download(_cache_dir(), tmp)
    out = tmp / "attacut-sc"
    out.mkdir()
    with zipfile.ZipFile(wheel) as archive:
        recorded = _recorded_digests(archive)
        for name in FILES:
            data = archive.read(FOLDER + name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest.decode() == recorded[FOLDER + name], name
            (out / name).write_bytes(data)
    return out


def _model(folder: Path, source: Path, files_block: str) -> Path:
    """A model folder holding a copy of ``attacut-sc/`` and a manifest listing ``files_block``."""
    folder.mkdir(parents=True)
    shutil.copytree(source, folder / "attacut-sc")
    manifest = folder / "modelver.yaml"
    manifest.write_text(
        "name: attacut-sc\nversion: 1.0.0\nlicense: MIT\n"
        "description: AttaCut syllable+character Thai word tokenizer (PyPI attacut 1.0.6)\n"
        f"files:\n{files_block}"
        "framework: {name: pytorch}\n"
        "metrics: {best-val: {f1: 0.91}}\n"
    )
    return manifest


AS_FOLDER = "  - {path: attacut-sc/, type: weight}\n"
AS_FILES = (
    "  - {path: 'attacut-sc/*.pth', type: weight}\n"
    "  - {path: attacut-sc/params.yml, type: weight-config}\n"
    "  - {path: 'attacut-sc/*.json', type: weight-config, description: vocabulary}\n"
)


def _skopeo(skopeo: str, *args: str) -> str:
    done = subprocess.run([skopeo, *args], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _assert_same_folder(pulled: Path, source: Path) -> None:
    assert sorted(p.name for p in pulled.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (pulled / name).read_bytes() == (source / name).read_bytes(), name


def _publish(manifest: Path, env: dict[str, str], *repository: str) -> dict[str, object]:
    flags = ["--repository", *repository] if repository else []
    result = run_cli("publish", str(manifest), *flags, "--format", "json", env=env)
    assert result.code == 0, result.err
    doc: dict[str, object] = json.loads(result.out)
    return doc


def _pull(ref: str, out: Path, env: dict[str, str]) -> list[str]:
    result = run_cli("pull", ref, "-o", str(out), "--format", "json", env=env)
    assert result.code == 0, result.err
    return [f["path"] for f in json.loads(result.out)["files"]]


def test_a_folder_goes_to_the_registry_and_survives_a_skopeo_copy(
    attacut_sc: Path, registry: Registry, skopeo: str, tmp_path: Path
) -> None:
    env = base_env(tmp_path / "home")
    manifest = _model(tmp_path / "m", attacut_sc, AS_FOLDER)
    repo = registry.repo("folders/attacut-sc")
    digest = str(_publish(manifest, env, repo)["digest"])

    raw = _skopeo(skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{repo}:1.0.0")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest
    [layer] = json.loads(raw)["layers"]
    assert layer["mediaType"] == TAR_WEIGHT
    assert layer["annotations"]["org.cncf.model.filepath"] == "attacut-sc"
    assert layer["annotations"]["org.opencontainers.image.title"] == "attacut-sc"
    meta = json.loads(layer["annotations"]["org.cncf.model.file.metadata+json"])
    assert (meta["name"], meta["typeflag"], meta["mode"]) == ("attacut-sc", ord("5"), 0o755)

    out = tmp_path / "pulled"
    assert _pull(f"{repo}:1.0.0", out, env) == ["attacut-sc"]
    _assert_same_folder(out / "attacut-sc", attacut_sc)

    copy = tmp_path / "skopeo-layout"
    _skopeo(
        skopeo,
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{repo}:1.0.0",
        f"oci:{copy}:1.0.0",
    )
    copied = _skopeo(skopeo, "inspect", "--raw", f"oci:{copy}:1.0.0")
    assert copied == raw  # the same manifest bytes, so the same digest and layer digests
    blob = copy / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
    assert "sha256:" + _sha256(blob) == layer["digest"]
    assert blob.stat().st_size == layer["size"]
    with tarfile.open(blob) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["attacut-sc", *(f"attacut-sc/{n}" for n in FILES)]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}

    from_copy = tmp_path / "pulled-from-copy"
    assert _pull(f"oci:{copy}:1.0.0", from_copy, env) == ["attacut-sc"]
    _assert_same_folder(from_copy / "attacut-sc", attacut_sc)


def test_an_unchanged_folder_with_other_times_uploads_nothing_new(
    attacut_sc: Path, registry: Registry, tmp_path: Path
) -> None:
    env = base_env(tmp_path / "home", MODELVER_NO_CACHE="1")
    repo = registry.repo("folders/attacut-dedup")
    first = _publish(_model(tmp_path / "a", attacut_sc, AS_FOLDER), env, repo)
    second_manifest = _model(tmp_path / "b", attacut_sc, AS_FOLDER)
    for path in (tmp_path / "b" / "attacut-sc").iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
        path.chmod(0o600)
    again = _publish(second_manifest, env, repo)
    assert again["digest"] == first["digest"]
    assert again["status"] == "unchanged"
    text = (tmp_path / "b" / "modelver.yaml").read_text().replace("1.0.0", "1.0.1", 1)
    (tmp_path / "b" / "modelver.yaml").write_text(text)
    newer = _publish(second_manifest, env, repo)
    blobs = newer["blobs"]
    assert isinstance(blobs, dict)
    assert blobs["present"] == 1  # the folder's layer: same files, same digest
    first_layers = json.loads(run_cli("show", f"{repo}:1.0.0", "--format", "json", env=env).out)
    newer_layers = json.loads(run_cli("show", f"{repo}:1.0.1", "--format", "json", env=env).out)
    assert first_layers["files"] == newer_layers["files"]


def test_a_folder_in_the_default_layout_store(
    attacut_sc: Path, skopeo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = base_env(tmp_path / "home")
    manifest = _model(tmp_path / "m", attacut_sc, AS_FOLDER)
    digest = _publish(manifest, env)["digest"]
    layout = tmp_path / ".modelver" / "attacut-sc"
    assert (layout / "index.json").is_file()
    raw = _skopeo(skopeo, "inspect", "--raw", "oci:.modelver/attacut-sc:1.0.0")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest
    assert [layer["mediaType"] for layer in json.loads(raw)["layers"]] == [TAR_WEIGHT]
    out = tmp_path / "pulled"
    assert _pull("attacut-sc:1.0.0", out, env) == ["attacut-sc"]
    _assert_same_folder(out / "attacut-sc", attacut_sc)


def test_the_folder_by_patterns_is_one_layer_per_file(
    attacut_sc: Path, registry: Registry, skopeo: str, tmp_path: Path
) -> None:
    env = base_env(tmp_path / "home")
    manifest = _model(tmp_path / "m", attacut_sc, AS_FILES)
    repo = registry.repo("folders/attacut-files")
    _publish(manifest, env, repo)
    raw = _skopeo(skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{repo}:1.0.0")
    layers = json.loads(raw)["layers"]
    assert [
        (layer["annotations"]["org.cncf.model.filepath"], layer["mediaType"]) for layer in layers
    ] == [
        ("attacut-sc/model.pth", "application/vnd.cncf.model.weight.v1.raw"),
        ("attacut-sc/params.yml", "application/vnd.cncf.model.weight.config.v1.raw"),
        ("attacut-sc/characters.json", "application/vnd.cncf.model.weight.config.v1.raw"),
        ("attacut-sc/syllables.json", "application/vnd.cncf.model.weight.config.v1.raw"),
    ]
    for layer in layers:  # a raw layer's digest is its file's sha256
        name = layer["annotations"]["org.cncf.model.filepath"].split("/", 1)[1]
        assert layer["digest"] == "sha256:" + _sha256(attacut_sc / name)
    out = tmp_path / "pulled"
    assert _pull(f"{repo}:1.0.0", out, env) == [
        "attacut-sc/model.pth",
        "attacut-sc/params.yml",
        "attacut-sc/characters.json",
        "attacut-sc/syllables.json",
    ]
    _assert_same_folder(out / "attacut-sc", attacut_sc)


def test_a_folder_layer_goes_up_in_chunks(
    attacut_sc: Path, registry: Registry, tmp_path: Path
) -> None:
    # 64 KiB chunks: each PATCH opens the tar stream afresh and seeks to its offset.
    env = base_env(tmp_path / "home", MODELVER_CHUNK_SIZE="65536", MODELVER_NO_CACHE="1")
    repo = registry.repo("folders/attacut-chunked")
    digest = _publish(_model(tmp_path / "m", attacut_sc, AS_FOLDER), env, repo)["digest"]
    assert registry.requests_seen("PATCH", r"/v2/folders/attacut-chunked/blobs/uploads/") >= 10
    out = tmp_path / "pulled"
    pulled = run_cli("pull", f"{repo}:1.0.0", "-o", str(out), "--format", "json", env=env)
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out)["digest"] == digest
    _assert_same_folder(out / "attacut-sc", attacut_sc)
