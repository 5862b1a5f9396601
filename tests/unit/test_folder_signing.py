"""Signed files statements for versions with folder (tar) layers: what the statements list, how
the files inside a tar are read, and what is refused."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_modelver.adapters import folder_archive
from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.adapters.tarball import list_entries
from ci_modelver.commands.pull import _check_signed, _Signed
from ci_modelver.core.modelpack import (
    MODEL_ARTIFACT,
    MODEL_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    parse_model_manifest,
)
from ci_modelver.core.signing import (
    FILES_PREDICATE,
    VERSION_PREDICATE,
    ArchiveEntry,
    ArchiveFiles,
    archive_files,
    entry_name,
    files_root,
    files_statement,
    key_material,
    layer_files,
    sign_statement,
    version_statement,
)
from ci_modelver.errors import ArtifactError, UnsafeArchive, Untrusted
from ci_modelver.signatures import attach_bundle
from tests.conftest import run_cli
from tests.helpers import base_env
from tests.support.signing_keys import write_key


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file(name: str, data: bytes) -> ArchiveEntry:
    return ArchiveEntry(name, "file", _sha(data))


def _link(name: str, target: str) -> ArchiveEntry:
    return ArchiveEntry(name, "symlink", linkname=target)


# --- core: archive_files ------------------------------------------------------------------------


def test_every_regular_file_is_listed_by_the_path_it_unpacks_to() -> None:
    found = archive_files(
        [
            ArchiveEntry("tok", "dir"),
            _file("tok/vocab.json", b"v"),
            ArchiveEntry("tok/sub", "dir"),
            _file("tok/sub/merges.txt", b"m"),
            ArchiveEntry("tok/empty", "dir"),
        ],
        "src (tok)",
    )
    assert found == ArchiveFiles({"tok/vocab.json": _sha(b"v"), "tok/sub/merges.txt": _sha(b"m")})


def test_symlinks_are_followed_as_model_signing_allow_symlinks_hashes_them() -> None:
    """A symlink to a file is that file's content; one to a folder adds nothing."""
    found = archive_files(
        [
            _file("tok/a.txt", b"a"),
            _file("tok/sub/b.txt", b"b"),
            _link("tok/alias", "a.txt"),
            _link("tok/dirlink", "sub"),
            _link("tok/sub/up", "../a.txt"),
            _link("tok/chain", "alias"),
            _link("tok/through", "dirlink/b.txt"),
            ArchiveEntry("tok/hard", "hardlink", linkname="tok/sub/b.txt"),
        ],
        "w",
    )
    assert found.files == {
        "tok/a.txt": _sha(b"a"),
        "tok/sub/b.txt": _sha(b"b"),
        "tok/alias": _sha(b"a"),
        "tok/sub/up": _sha(b"a"),
        "tok/chain": _sha(b"a"),
        "tok/through": _sha(b"b"),
        "tok/hard": _sha(b"b"),
    }
    assert found.symlinks == ("tok/alias", "tok/chain", "tok/dirlink", "tok/sub/up", "tok/through")


def test_a_later_entry_of_the_same_name_wins_as_unpacking_does() -> None:
    found = archive_files([_file("tok/a", b"old"), _file("tok/a", b"new")], "w")
    assert found.files == {"tok/a": _sha(b"new")}


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([_link("tok/x", "../w.bin")], "leads to 'w.bin'"),
        ([_link("tok/x", "../../etc/passwd")], "leads to '../etc/passwd'"),
        ([_link("tok/x", "/etc/passwd")], "absolute"),
        ([_link("tok/x", "missing")], "leads to 'tok/missing'"),
        ([_link("tok/x", "y"), _link("tok/y", "x")], "symlink to 'y'"),
        ([_link("tok/d", "sub"), _file("tok/sub/a", b"a"), _file("tok/d/b", b"b")], "below"),
        ([_file("tok/f", b"f"), _file("tok/f/g", b"g")], "which is a file"),
        ([ArchiveEntry("tok/h", "hardlink", linkname="tok/none")], "hardlink"),
    ],
)
def test_what_a_statement_cannot_describe_is_refused_naming_the_entry(
    entries: list[ArchiveEntry], fragment: str
) -> None:
    with pytest.raises(ArtifactError) as caught:
        archive_files(entries, "repo:1 (tok)")
    message = str(caught.value)
    assert message.startswith("repo:1 (tok): tar entry 'tok/")
    assert "cannot be listed in a signed files statement" in message
    assert fragment in message and "\n" not in message


def test_entry_names_are_normalised_to_where_they_unpack() -> None:
    assert entry_name("./tok//a/") == "tok/a"
    assert entry_name("tok/./b") == "tok/b"
    assert entry_name("./") == "."


# --- core: layer_files and the statements ---------------------------------------------------------


def _artifact(layers: list[dict[str, Any]]) -> Any:
    data = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": MODEL_ARTIFACT,
            "config": {"mediaType": MODEL_CONFIG, "digest": _sha(b"{}"), "size": 2},
            "layers": layers,
        }
    )
    return parse_model_manifest(data, _sha(data), "src")


def _layer(path: str, data: bytes, kind: str = "raw") -> dict[str, Any]:
    return {
        "mediaType": f"application/vnd.cncf.model.weight.v1.{kind}",
        "digest": _sha(data),
        "size": len(data),
        "annotations": {"org.cncf.model.filepath": path},
    }


def test_layer_files_lists_raw_layers_and_the_files_inside_tar_layers() -> None:
    artifact = _artifact([_layer("w.bin", b"w"), _layer("tok", b"TAR", "tar")])
    inside = ArchiveFiles({"tok/a": _sha(b"a"), "tok/sub/b": _sha(b"b")})
    files = layer_files(artifact, "src", {_sha(b"TAR"): inside})
    assert files == {"w.bin": _sha(b"w"), "tok/a": _sha(b"a"), "tok/sub/b": _sha(b"b")}


def test_a_tar_layer_without_its_listing_is_refused() -> None:
    artifact = _artifact([_layer("tok", b"TAR", "tar")])
    with pytest.raises(ArtifactError, match="tar layer whose files were not read"):
        layer_files(artifact, "src")


def test_two_layers_giving_the_same_path_are_refused() -> None:
    """A tar packed by another tool may hold entries outside its own folder's name."""
    artifact = _artifact([_layer("w.bin", b"raw"), _layer("tok", b"TAR", "tar")])
    with pytest.raises(ArtifactError, match=r"unpacks 'w\.bin', which layer 'w\.bin' gives too"):
        layer_files(artifact, "src", {_sha(b"TAR"): ArchiveFiles({"w.bin": _sha(b"a")})})


def test_the_statement_records_whether_symlinks_are_followed() -> None:
    files = {"tok/a": _sha(b"a"), "w.bin": _sha(b"w")}
    assert files_statement("m", files)["predicate"]["serialization"]["allow_symlinks"] is False
    linked = files_statement("m", files, allow_symlinks=True)
    assert linked["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": True,
    }


# --- adapters: reading a tar blob ----------------------------------------------------------------


def _folder(base: Path) -> Path:
    (base / "tok" / "sub").mkdir(parents=True)
    (base / "tok" / "vocab.json").write_bytes(b'{"a": 1}')
    (base / "tok" / "sub" / "merges.txt").write_bytes(b"a b\n")
    (base / "tok" / "alias.json").symlink_to("vocab.json")
    return base


def test_list_entries_reads_a_folder_layer_as_folder_archive_writes_it(tmp_path: Path) -> None:
    found = folder_archive.archive(_folder(tmp_path / "m"), "tok")
    blob = tmp_path / "layer.tar"
    with found.open() as stream:
        blob.write_bytes(stream.read())
    entries = list_entries(blob, "src (tok)", found.size)
    assert entries == [
        ArchiveEntry("tok", "dir"),
        ArchiveEntry("tok/alias.json", "symlink", linkname="vocab.json"),
        ArchiveEntry("tok/sub", "dir"),
        ArchiveEntry("tok/sub/merges.txt", "file", _sha(b"a b\n")),
        ArchiveEntry("tok/vocab.json", "file", _sha(b'{"a": 1}')),
    ]
    assert archive_files(entries, "w").files == {
        "tok/alias.json": _sha(b'{"a": 1}'),
        "tok/sub/merges.txt": _sha(b"a b\n"),
        "tok/vocab.json": _sha(b'{"a": 1}'),
    }


def test_list_entries_reads_pax_names_past_ustar_limits(tmp_path: Path) -> None:
    """folder_archive writes a pax header for a long or non-ASCII name; it comes back whole."""
    long = "d" * 120
    (tmp_path / "m" / "tok" / long).mkdir(parents=True)
    (tmp_path / "m" / "tok" / long / "vocabulário.json").write_bytes(b"{}")
    found = folder_archive.archive(tmp_path / "m", "tok")
    blob = tmp_path / "layer.tar"
    with found.open() as stream:
        blob.write_bytes(stream.read())
    listed = archive_files(list_entries(blob, "w", found.size), "w")
    assert listed.files == {f"tok/{long}/vocabulário.json": _sha(b"{}")}


def _tar(tmp_path: Path, *members: tuple[str, dict[str, Any], bytes]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, fields, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            for key, value in fields.items():
                setattr(info, key, value)
            archive.addfile(info, io.BytesIO(data) if data else None)
    path = tmp_path / "layer.tar"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize(
    ("name", "fields", "fragment"),
    [
        ("/etc/evil", {}, "absolute"),
        ("tok/../../evil", {}, "'..'"),
        ("tok/dev", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "device"),
        ("tok/fifo", {"type": tarfile.FIFOTYPE}, "FIFO"),
    ],
)
def test_list_entries_refuses_what_unpacking_refuses(
    tmp_path: Path, name: str, fields: dict[str, Any], fragment: str
) -> None:
    blob = _tar(tmp_path, (name, fields, b""))
    with pytest.raises(UnsafeArchive, match=fragment):
        list_entries(blob, "src (tok)", blob.stat().st_size)


def test_list_entries_refuses_more_bytes_than_the_layer_declares(tmp_path: Path) -> None:
    """A compressed archive in a .tar layer: 32 MiB of content in a blob of some KiB."""
    plain = _tar(tmp_path, ("tok/zeros", {}, bytes(32 * 1024 * 1024)))
    packed = tmp_path / "layer.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(UnsafeArchive, match="unpacks to more than its declared size"):
        list_entries(packed, "src (tok)", packed.stat().st_size)


def test_list_entries_refuses_a_blob_that_is_not_a_tar(tmp_path: Path) -> None:
    blob = tmp_path / "layer.tar"
    blob.write_bytes(b"not a tar at all" * 64)
    with pytest.raises(UnsafeArchive, match="not a valid archive"):
        list_entries(blob, "src (tok)", blob.stat().st_size)


# --- signing a layout version with a folder ------------------------------------------------------


def _model(base: Path) -> Path:
    _folder(base)
    (base / "weights.bin").write_bytes(b"W" * 100)
    manifest = {
        "name": "demo",
        "version": "1.0.0",
        "files": [
            {"path": "weights.bin", "type": "weight"},
            {"path": "tok/", "type": "weight-config"},
        ],
        "metrics": {"validation": {"accuracy": 0.9}},
    }
    path = base / "modelver.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def _statement(store: LayoutStore, record: str) -> dict[str, Any]:
    manifest = json.loads(store.get_manifest(record)[0])
    layer = manifest["layers"][0]
    blob = store.root / "blobs" / "sha256" / layer["digest"].split(":")[1]
    bundle = json.loads(blob.read_bytes())
    payload: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return payload


def test_publish_sign_key_signs_every_file_inside_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    pair = write_key(tmp_path / "keys", "release")
    env = base_env(tmp_path / "home")
    store_dir = tmp_path / "store"
    done = run_cli(
        "publish", str(_model(tmp_path / "m")), "--repository", f"oci:{store_dir}",
        "--sign-key", str(pair.private), "--format", "json", env=env,
    )  # fmt: skip
    assert done.code == 0, done.err
    doc = json.loads(done.out)
    store = LayoutStore(store_dir, create=False)
    by_kind = {s["statement"]: s["record"] for s in doc["signatures"]}
    files = _statement(store, by_kind["files"])
    expected = {
        "tok/alias.json": hashlib.sha256(b'{"a": 1}').hexdigest(),
        "tok/sub/merges.txt": hashlib.sha256(b"a b\n").hexdigest(),
        "tok/vocab.json": hashlib.sha256(b'{"a": 1}').hexdigest(),
        "weights.bin": hashlib.sha256(b"W" * 100).hexdigest(),
    }
    resources = files["predicate"]["resources"]
    assert [r["name"] for r in resources] == sorted(expected)
    assert {r["name"]: r["digest"] for r in resources} == expected
    assert files["predicate"]["serialization"]["allow_symlinks"] is True
    ordered = [(r["name"], r["digest"]) for r in resources]
    assert files["subject"][0]["digest"]["sha256"] == files_root(ordered)
    version = _statement(store, by_kind["version"])
    assert version["predicate"]["files"] == {"sha256": files_root(ordered), "count": 4}
    assert version["subject"][0]["digest"]["sha256"] == doc["digest"].split(":")[1]
    # The tar blob was read back in a temp folder of ours, which is gone.
    assert list((tmp_path / "tmp").iterdir()) == []
    verified = run_cli(
        "verify", f"oci:{store_dir}:1.0.0", "--key", str(pair.public), "--format", "json", env=env
    )
    assert verified.code == 0, verified.err
    assert json.loads(verified.out)["files"] == 4
    out = tmp_path / "out"
    pulled = run_cli(
        "pull", f"oci:{store_dir}:1.0.0", "-o", str(out), "--verify-key", str(pair.public), env=env
    )
    assert pulled.code == 0, pulled.err
    assert (out / "tok" / "sub" / "merges.txt").read_bytes() == b"a b\n"
    assert (out / "tok" / "alias.json").is_symlink()
    assert list((tmp_path / "tmp").iterdir()) == []


def _foreign_layout(root: Path, build: list[tuple[str, dict[str, Any], bytes]]) -> None:
    """A version with one raw layer and one tar layer packed by hand (another tool)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, fields, data in build:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            for key, value in fields.items():
                setattr(info, key, value)
            archive.addfile(info, io.BytesIO(data) if data else None)
    LayoutStore(root, create=True)
    layers = []
    for path, data, kind in (("w.bin", b"w", "raw"), ("tok", buffer.getvalue(), "tar")):
        digest = _sha(data)
        (root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
        layers.append(_layer(path, data, kind))
    (root / "blobs" / "sha256" / hashlib.sha256(b"{}").hexdigest()).write_bytes(b"{}")
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": MODEL_ARTIFACT,
            "config": {"mediaType": MODEL_CONFIG, "digest": _sha(b"{}"), "size": 2},
            "layers": layers,
        }
    )
    LayoutStore(root, create=False).put_manifest("1.0.0", manifest, OCI_MANIFEST)


def test_signing_a_tar_whose_symlink_leaves_its_layer_is_refused_and_stores_nothing(
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "store"
    _foreign_layout(
        store_dir,
        [("tok/a", {}, b"a"), ("tok/w", {"type": tarfile.SYMTYPE, "linkname": "../w.bin"}, b"")],
    )
    pair = write_key(tmp_path / "keys", "release")
    done = run_cli(
        "sign", f"oci:{store_dir}:1.0.0", "--sign-key", str(pair.private),
        env=base_env(tmp_path / "home"),
    )  # fmt: skip
    assert done.code == 2, done.err
    errors = [line for line in done.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "tar entry 'tok/w' cannot be listed" in errors[0], done.err
    assert "leads to 'w.bin'" in errors[0]
    assert [t for t in LayoutStore(store_dir, create=False).tags() if t != "1.0.0"] == []


def test_a_foreign_tar_layer_is_signed_by_where_its_entries_unpack(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    _foreign_layout(
        store_dir,
        [("./tok/a", {}, b"a"), ("tok/b", {"type": tarfile.LNKTYPE, "linkname": "./tok/a"}, b"")],
    )
    pair = write_key(tmp_path / "keys", "release")
    env = base_env(tmp_path / "home")
    done = run_cli("sign", f"oci:{store_dir}:1.0.0", "--sign-key", str(pair.private), env=env)
    assert done.code == 0, done.err
    verified = run_cli(
        "verify", f"oci:{store_dir}:1.0.0", "--key", str(pair.public), "--format", "json", env=env
    )
    assert verified.code == 0, verified.err
    assert json.loads(verified.out)["files"] == 3


def test_verify_and_pull_of_a_tar_that_cannot_be_listed_are_untrusted(
    tmp_path: Path,
) -> None:
    """Signed by hand (statements over what the tar claims): still no trusted files statement."""
    store_dir = tmp_path / "store"
    _foreign_layout(store_dir, [("tok/w", {"type": tarfile.SYMTYPE, "linkname": "../w.bin"}, b"")])
    store = LayoutStore(store_dir, create=False)
    data, digest = store.get_manifest("1.0.0")
    pair = write_key(tmp_path / "keys", "release")
    files = {"w.bin": _sha(b"w"), "tok/w": _sha(b"w")}
    material = key_material(pair.key.public_key())
    for predicate, statement in (
        (FILES_PREDICATE, files_statement("demo", files, allow_symlinks=True)),
        (
            VERSION_PREDICATE,
            version_statement("demo", digest, version="1", signed_at="t", files=files),
        ),
    ):
        bundle = sign_statement(statement, pair.key, material)
        attach_bundle(store, digest, len(data), bundle, predicate, "2026-01-01T00:00:00Z")
    env = base_env(tmp_path / "home")
    ref = f"oci:{store_dir}:1.0.0"
    verified = run_cli("verify", ref, "--key", str(pair.public), env=env)
    assert verified.code == 5, verified.err
    last = verified.err.splitlines()[-1]
    assert "tar entry 'tok/w' cannot be listed" in last and last.endswith("untrusted"), last
    out = tmp_path / "out"
    pulled = run_cli("pull", ref, "-o", str(out), "--verify-key", str(pair.public), env=env)
    assert pulled.code == 5, pulled.err
    assert not out.exists()


def _jobs(tmp_path: Path) -> list[tuple[str, Descriptor, Path]]:
    layer = Descriptor("application/vnd.cncf.model.doc.v1.tar", _sha(b"TAR"), 3)
    return [("tok", layer, tmp_path / "tok")]


def test_pull_checks_each_file_of_a_folder_against_the_signed_statement(tmp_path: Path) -> None:
    inside = ArchiveFiles({"tok/a": _sha(b"a"), "tok/b": _sha(b"b")})
    archives = {_sha(b"TAR"): inside}
    _check_signed(_jobs(tmp_path), _Signed(files=dict(inside.files), archives=archives), "src")
    wrong = {"tok/a": _sha(b"a"), "tok/b": _sha(b"other")}
    with pytest.raises(
        Untrusted, match=r"'tok/b' in the folder layer 'tok' is sha256:.*nothing was written"
    ):
        _check_signed(_jobs(tmp_path), _Signed(files=wrong, archives=archives), "src")
    more = {**inside.files, "tok/c": _sha(b"c")}
    with pytest.raises(
        Untrusted, match="names 'tok/c', which the folder layer 'tok' does not hold"
    ):
        _check_signed(_jobs(tmp_path), _Signed(files=more, archives=archives), "src")
    with pytest.raises(Untrusted, match="were not checked"):
        _check_signed(_jobs(tmp_path), _Signed(files=dict(inside.files), archives={}), "src")
