"""Shell completion: the scripts `deployer completion SHELL` prints work as the shells use them.

bash is driven for real (source the script, call its function as bash's `complete -F` would);
zsh and fish scripts call the same `_DEPLOYER_COMPLETE` protocol, checked directly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.cli import cli

DEPLOYER = str(Path(sys.executable).with_name("deployer"))


def _script(shell: str) -> str:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_wired_to_the_deployer_command(shell: str) -> None:
    script = _script(shell)
    assert f"_DEPLOYER_COMPLETE={shell}_complete" in script.replace('"', "")
    assert "deployer" in script


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2
    assert "bash" in result.output and "fish" in result.output


def _bash_complete(words: list[str]) -> list[str]:
    script = _script("bash")
    cword = len(words) - 1
    program = (
        script
        + f"\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={cword}; COMPREPLY=()\n"
        + f"_deployer_completion {DEPLOYER}\n"
        + 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    bash = shutil.which("bash")
    assert bash is not None
    env = {**os.environ, "PATH": f"{Path(DEPLOYER).parent}:{os.environ.get('PATH', '')}"}
    out = subprocess.run(
        [bash, "--norc", "-c", program], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def test_bash_completes_command_names() -> None:
    assert _bash_complete(["deployer", "pla"]) == ["plan"]
    assert set(_bash_complete(["deployer", "lo"])) == {"local"}


def test_bash_completes_a_commands_options_and_choices() -> None:
    assert "--yes" in _bash_complete(["deployer", "apply", "--"])
    assert _bash_complete(["deployer", "completion", "f"]) == ["fish"]


@pytest.mark.parametrize(
    ("shell", "words", "expected"),
    [("zsh", "deployer tear", "teardown"), ("fish", "deployer batch-", "batch-predict")],
)
def test_zsh_and_fish_protocol_answers(shell: str, words: str, expected: str) -> None:
    env = {
        **os.environ,
        "_DEPLOYER_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        # zsh passes the index of the word being completed; fish passes its text.
        "COMP_CWORD": str(len(words.split()) - 1) if shell == "zsh" else words.split()[-1],
    }
    out = subprocess.run([DEPLOYER], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    # zsh: type, value, help on separate lines; fish: "type,value<TAB>help" per line.
    values = out.stdout.replace(",", "\n").replace("\t", "\n").split("\n")
    assert expected in values
