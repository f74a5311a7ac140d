"""Parsing and precedence of vendoring.toml, without subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys.config import DEFAULT_COMMIT, DEFAULT_URL, load_config
from buildsys.errors import ConfigError

PIN = f'[upstream]\ncommit = "{DEFAULT_COMMIT}"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vendoring.toml"
    path.write_text(text)
    return path


def test_an_empty_file_is_refused_naming_the_missing_pin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, ""), env={})
    assert refused.value.problems == (
        f'[upstream] commit: missing; the pin is a full 40-hex SHA, e.g. commit = "{DEFAULT_COMMIT}"',
    )


def test_only_the_pin_gives_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, PIN), env={})
    assert config.upstream.url == DEFAULT_URL and config.upstream.url_source == "default"
    assert config.upstream.commit == DEFAULT_COMMIT
    assert config.tracking == tmp_path.resolve() / "build/upstream"
    assert config.sync.destination == tmp_path.resolve() / "vendor/llama.cpp"
    assert "ggml/" in config.sync.include and "**/*.md" in config.sync.exclude


@pytest.mark.parametrize(
    ("file_url", "env_url", "cli_url", "expected_source"),
    [
        (None, None, None, "default"),
        ("https://mirror/file.git", None, None, "[upstream] url"),
        ("https://mirror/file.git", "https://mirror/env.git", None, "BUILDSYS_UPSTREAM_URL"),
        ("https://mirror/file.git", "https://mirror/env.git", "https://mirror/cli.git", "--upstream"),
    ],
)
def test_url_precedence_default_file_environment_command_line(
    tmp_path: Path, file_url: str | None, env_url: str | None, cli_url: str | None, expected_source: str
) -> None:
    text = PIN + (f'url = "{file_url}"\n' if file_url else "")
    env = {"BUILDSYS_UPSTREAM_URL": env_url} if env_url else {}
    config = load_config(write(tmp_path, text), env=env, upstream_override=cli_url)
    assert config.upstream.url_source == expected_source
    assert config.upstream.url == (cli_url or env_url or file_url or DEFAULT_URL)


def test_local_paths_become_absolute_relative_to_where_they_were_given(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    path = write(tmp_path / "project", PIN + 'url = "../mirror.git"\n')
    assert load_config(path, env={}).upstream.url == str(tmp_path.resolve() / "mirror.git")
    from_env = load_config(path, env={"BUILDSYS_UPSTREAM_URL": "m.git"}, cwd=tmp_path / "elsewhere")
    assert from_env.upstream.url == str((tmp_path / "elsewhere" / "m.git").resolve())
    scp = load_config(path, env={"BUILDSYS_UPSTREAM_URL": "git@github.com:ggml-org/ggml.git"})
    assert scp.upstream.url == "git@github.com:ggml-org/ggml.git"


def test_uppercase_commit_is_normalised(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, f'[upstream]\ncommit = "{DEFAULT_COMMIT.upper()}"\n'), env={})
    assert config.upstream.commit == DEFAULT_COMMIT


def test_every_problem_is_collected_before_failing(tmp_path: Path) -> None:
    text = '[upstream]\ncommit = "x"\nurl = 1\n[sync]\ndestination = "/abs"\ninclude = []\n[extra]\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    assert len(caught.value.problems) == 5
