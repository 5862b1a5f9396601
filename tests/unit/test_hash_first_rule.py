"""Which files publish hashes before sending and which it hashes while sending."""

from __future__ import annotations

import json

from ci_modelver.commands.publish import STREAM_MIN, _Existing, _hash_first_rule, _layer_sizes

BIG = STREAM_MIN


def test_a_new_large_file_is_streamed() -> None:
    rule = _hash_first_rule(True, _Existing(False, {}))
    assert rule("model.safetensors", BIG) is False


def test_small_files_are_always_hashed_first() -> None:
    rule = _hash_first_rule(True, _Existing(False, {}))
    assert rule("config.json", BIG - 1) is True


def test_a_file_with_the_same_path_and_size_as_in_the_newest_version_is_hashed_first() -> None:
    rule = _hash_first_rule(True, _Existing(False, {"w.bin": BIG * 3}))
    assert rule("w.bin", BIG * 3) is True
    assert rule("w.bin", BIG * 3 + 1) is False  # changed size: new content
    assert rule("other.bin", BIG * 3) is False  # same size, other path: not the same file


def test_an_existing_version_tag_means_everything_is_hashed_first() -> None:
    rule = _hash_first_rule(True, _Existing(True, {}))
    assert rule("w.bin", BIG * 100) is True


def test_a_store_that_cannot_stream_hashes_everything_first() -> None:
    rule = _hash_first_rule(False, _Existing(False, {}))
    assert rule("w.bin", BIG * 100) is True


def test_layer_sizes_reads_paths_and_sizes_and_ignores_the_rest() -> None:
    manifest = {
        "layers": [
            {"size": 10, "annotations": {"org.cncf.model.filepath": "a.bin"}},
            {"size": "10", "annotations": {"org.cncf.model.filepath": "b.bin"}},
            {"size": 5, "annotations": {}},
            {"size": 7},
            "junk",
            {"size": 3, "annotations": {"org.cncf.model.filepath": "tok"}},
        ]
    }
    assert _layer_sizes(json.dumps(manifest).encode()) == {"a.bin": 10, "tok": 3}
    assert _layer_sizes(b"not json") == {}
    assert _layer_sizes(b'{"layers": {"a": 1}}') == {}
    assert _layer_sizes(b"[]") == {}
