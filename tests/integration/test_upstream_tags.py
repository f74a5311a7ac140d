"""`tags`: upstream's release tags, newest first, from a fixture upstream with real git tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.support import Project, fresh_project

TAGS = ("b999", "b1000", "b7000", "b7000-rc", "v0.9.4", "v0.10.0", "gguf-v0.17.1", "nightly")


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = fresh_project(tmp_path_factory.mktemp("tags"))
    for index, tag in enumerate(TAGS):  # tags on different commits, in an order unlike their numbers
        project.upstream.git("tag", "-a" if index % 2 else "--no-sign", "-m", tag, tag, project.commits[index % 2])
    return project


def test_the_newest_release_tag_is_by_number_not_by_text_or_date(tagged: Project) -> None:
    assert tagged.run("tags", "--pattern", "b[0-9]*").stdout.split() == ["b7000", "b7000-rc", "b1000", "b999"]
    assert tagged.run("tags", "--pattern", "b[0-9]*", "--newest").stdout.split() == ["b7000"]
    assert tagged.run("tags", "--pattern", "v*", "--newest").stdout.split() == ["v0.10.0"]


def test_the_pattern_comes_from_vendoring_toml_and_a_bad_one_is_refused(tagged: Project, tmp_path: Path) -> None:
    original = (tagged.root / "vendoring.toml").read_text()
    try:
        tagged.configure(tagged.commits[-1], 'release-tags = "v[0-9]*"\n')
        assert tagged.run("tags", "--newest").stdout.split() == ["v0.10.0"]
        nothing = tagged.run("tags", "--pattern", "release-*", expect=1)
        assert nothing.stderr.startswith(
            f"error: no tag of {tagged.upstream.path} matches 'release-*' (8 tag(s) there)"
        )
        tagged.configure(tagged.commits[-1], 'release-tags = ""\n')
        empty = tagged.run("tags", expect=2)
        assert "[upstream] release-tags: must not be empty" in empty.stderr and "Traceback" not in empty.stderr
        tagged.configure(tagged.commits[-1])
        unset = tagged.run("tags", expect=2)
        assert "error: no tag pattern" in unset.stderr
        gone = tagged.run("--upstream", str(tmp_path / "nowhere"), "tags", "--pattern", "b*", expect=1)
        assert (
            f"error: cannot list the tags of {tmp_path / 'nowhere'}" in gone.stderr and "Traceback" not in gone.stderr
        )
    finally:
        (tagged.root / "vendoring.toml").write_text(original)
