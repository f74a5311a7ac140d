from __future__ import annotations

from pathlib import Path

from buildsys.builder import ccache


def test_environment_keeps_a_cache_directory_the_user_chose(tmp_path: Path) -> None:
    launcher = tmp_path / "ccache"
    mine = ccache.environment(launcher, tmp_path, tmp_path / "build", {})
    assert mine["CCACHE_DIR"] == str(tmp_path / "build" / "ccache")
    assert mine["CCACHE_BASEDIR"] == str(tmp_path)
    theirs = ccache.environment(launcher, tmp_path, tmp_path / "build", {"CCACHE_DIR": "/cache"})
    assert theirs["CCACHE_DIR"] == "/cache"
    assert ccache.environment(None, tmp_path, tmp_path / "build", {}) == {}


def test_describe_counts_only_this_build() -> None:
    before = {"direct_cache_hit": 10, "preprocessed_cache_hit": 1, "cache_miss": 5}
    after = {"direct_cache_hit": 40, "preprocessed_cache_hit": 1, "cache_miss": 7}
    assert ccache.describe(before, after) == "ccache 30/32 hits"
    assert ccache.describe(after, after) == "ccache: nothing compiled"
    assert ccache.describe({}, {}) == ""
