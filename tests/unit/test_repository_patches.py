"""Our own patch queue (patches/ of this repository, against llama.cpp's paths) stays well-formed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from buildsys.config import load_config
from buildsys.vendoring.patchqueue import Patch, diff_paths, normalise_patch, patch_file_name, read_series

REPO = Path(__file__).resolve().parents[2]
SERIES = read_series(REPO / "patches")


def test_the_queue_is_not_empty() -> None:
    assert SERIES, "patches/ holds our patch series against the pinned llama.cpp"


@pytest.mark.parametrize("patch", SERIES, ids=[p.name for p in SERIES])
def test_each_patch_is_exported_the_way_create_patches_writes_it(patch: Patch) -> None:
    assert normalise_patch(patch.content) == patch.content
    subject = re.search(rb"^Subject: \[PATCH\] (.*)$", patch.content, re.MULTILINE)
    assert subject is not None
    assert patch.name == patch_file_name(SERIES.index(patch) + 1, subject[1].decode())
    assert b"\r\n" not in patch.content.split(b"\ndiff --git", 1)[0]  # headers are LF, whatever git's config


@pytest.mark.parametrize("patch", SERIES, ids=[p.name for p in SERIES])
def test_each_patch_touches_only_the_synced_subset(patch: Patch) -> None:
    config = load_config(REPO / "vendoring.toml", env={})
    for path in diff_paths(patch.content):
        assert config.sync.filter.selects(path), f"{patch.name} changes {path}, which sync does not copy"
