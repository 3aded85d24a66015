"""The command line a person learns from: help per subcommand, --version, --env-file, and
start-up problems reported in one line with a documented exit code."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from tests.conftest import StandIns
from tests.running import process_env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("gc-salebot-bot 0.")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("run", "long polling or webhook"),
        ("check", "a line per check"),
        ("sync", "--full"),
        ("sandbox", "--lang {ru,en}"),
    ],
)
def test_each_subcommand_has_its_own_help(
    command: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([command, "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: gc-salebot-bot {command}" in out
    assert says in " ".join(out.split())
    assert "`" not in out


def test_main_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "check", "sync", "sandbox"):
        assert f"    {command} " in out
    assert "exit codes:" in out
    assert "`" not in out


@pytest.mark.parametrize("command", ["run", "check"])
def test_full_belongs_to_sync_only(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([command, "--full"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --full" in capsys.readouterr().err


def test_missing_env_file_is_a_settings_error(tmp_path: Path) -> None:
    result = run_cli("check", "--env-file", "nowhere.env", cwd=tmp_path, env={"PATH": ""})
    assert result.returncode == 2
    assert result.stdout == (
        "FAIL  settings   Configuration error: --env-file nowhere.env: no such file\n"
    )


async def test_env_file_is_read(standins: StandIns, tmp_path: Path) -> None:
    env = process_env(standins)
    settings_file = tmp_path / "school.env"
    settings_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    result = await asyncio.to_thread(
        run_cli, "--env-file", str(settings_file), "check", cwd=folder, env={"PATH": ""}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok    settings")


async def test_unwritable_database_stops_run_with_one_line(
    standins: StandIns, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    env = process_env(standins, DATABASE_PATH=str(blocker / "bot.sqlite3"), LOG_FORMAT="text")
    result = await asyncio.to_thread(run_cli, "run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"DATABASE_PATH {blocker}/bot.sqlite3: " in lines[0]
    assert standins.telegram.calls == []


async def test_a_taken_port_stops_run_with_one_line(standins: StandIns, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = process_env(standins, HEALTH_LISTEN=f"127.0.0.1:{port}", LOG_FORMAT="text")
        result = await asyncio.to_thread(run_cli, "run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].endswith(
        f"HEALTH_LISTEN 127.0.0.1:{port}: cannot listen there (Address already in use)"
    )
    assert "Traceback" not in result.stderr
