from __future__ import annotations

from pathlib import Path

from buildsys.vendoring.patchqueue import (
    Patch,
    diff_paths,
    normalise_patch,
    patch_file_name,
    read_series,
    series_hash,
)

EXPORTED = (
    b"From 1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c Mon Sep 17 00:00:00 2001\n"
    b"From: A <a@example.invalid>\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n"
    b"Subject: [PATCH 2/3] vulkan: guard layer settings\n for old headers\n\n---\n"
    b"diff --git a/ggml/src/x.c b/ggml/src/y.c\n--- a/ggml/src/x.c\n+++ b/ggml/src/y.c\n@@ -1 +1 @@\n-a\n+b\n"
    b"-- \n2.39.5\n\n"
)


def test_normalise_zeroes_the_hash_drops_numbering_and_signature() -> None:
    normal = normalise_patch(EXPORTED)
    assert normal.startswith(b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n")
    assert b"Subject: [PATCH] vulkan: guard layer settings\n" in normal
    assert normal.endswith(b"+b\n")
    assert normalise_patch(normal) == normal


def test_touched_paths_are_the_new_names() -> None:
    assert diff_paths(EXPORTED) == ["ggml/src/y.c"]


def test_file_names_are_stable_slugs() -> None:
    assert patch_file_name(1, "vulkan: guard VK_EXT_layer_settings (headers < 1.3.272)") == (
        "0001-vulkan-guard-VK_EXT_layer_settings-headers-1.3.272.patch"
    )
    assert patch_file_name(12, "...") == "0012-patch.patch"
    assert len(patch_file_name(3, "x" * 200)) == len("0003-") + 52 + len(".patch")


def test_series_is_read_sorted_and_hashed_by_name_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "0002-b.patch").write_bytes(b"b")
    (tmp_path / "0001-a.patch").write_bytes(b"a")
    (tmp_path / "README").write_text("not a patch")
    series = read_series(tmp_path)
    assert [p.name for p in series] == ["0001-a.patch", "0002-b.patch"]
    assert series_hash(series) == series_hash({"0002-b.patch": b"b", "0001-a.patch": b"a"})
    assert series_hash(series) != series_hash([Patch("0001-a.patch", b"a"), Patch("0002-b.patch", b"B")])
    assert series_hash(series) != series_hash([Patch("0001-a.patch", b"a"), Patch("0003-b.patch", b"b")])
    assert read_series(tmp_path / "missing") == []
