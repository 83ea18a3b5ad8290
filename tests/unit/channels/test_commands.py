"""`omsnode channel ...` refuses what it cannot run before it touches a node or a channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main


def test_a_bad_config_or_no_token_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("OMSNODE_TOKEN", raising=False)
    monkeypatch.delenv("OMSNODE_PROFILE", raising=False)
    config = tmp_path / "channels.toml"
    config.write_text('[[channels]]\nname = "m"\nadapter = "rest"\nurl = "https://x.example/o"\npoll_secs = 1\n')
    state = str(tmp_path / "s.sqlite")
    run = ["channel", "run", "--config", str(config), "--node", "http://127.0.0.1:9", "--state", state, "--once"]
    assert main([*run, "--token", "t"]) == 2
    assert "unknown key(s) poll_secs" in capsys.readouterr().err
    config.write_text('[[channels]]\nname = "m"\nadapter = "rest"\nurl = "https://x.example/o"\n')
    assert main(run) == 2
    assert "needs an API token" in capsys.readouterr().err
    monkeypatch.setenv("OMS_CUSTOMER_KEY", "short")
    assert main([*run, "--token", "t"]) == 2
    assert "OMS_CUSTOMER_KEY must hold the organisation's customer key" in capsys.readouterr().err


def test_status_and_dead_letters_of_a_missing_state_file_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "none.sqlite")
    assert main(["channel", "status", "--state", missing]) == 2
    assert main(["channel", "deadletters", "--state", missing, "--replay", "1"]) == 2
    assert "no state file" in capsys.readouterr().err
    assert not Path(missing).exists()
