"""The ``searchseg`` command: subcommands in front of the module entry points."""

import subprocess
import sys

import pytest

from searchseg.cli import COMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "searchseg", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_subcommand(capsys):
    main(["--help"])
    listed = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in listed


def test_a_subcommand_runs_its_module_with_the_remaining_arguments():
    done = run_cli("check", "--help")
    assert done.returncode == 0 and "--class-map" in done.stdout and "--preflight" in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_subcommand_s_help_names_the_command_the_user_typed(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: searchseg {name} ")


def test_a_subcommand_reports_errors_as_its_module_does(tmp_path):
    done = run_cli("report", str(tmp_path / "missing"))
    assert done.returncode == 2 and done.stderr.startswith("error:") and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["serch"], "unknown command 'serch'; valid commands: check, predict, report, retrain, run, trial"),
    (["--space", "arch_loss"], "--space comes after a command; see searchseg --help"),
])
def test_a_wrong_command_is_one_line_naming_the_valid_ones(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and capsys.readouterr().err == f"error: {message}\n"


def test_no_command_prints_the_usage_and_fails(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2 and "commands:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "trial", "retrain", "predict", "check", "report"])
def test_help_imports_neither_torch_ray_optuna_nor_pandas(command):
    """--help and argument errors answer at once (they took 6.9 s and 1.1 GB when run imported everything)."""
    code = (f"import sys\nfrom searchseg.cli import main\ntry:\n    main(['{command}', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in ('torch', 'ray', 'optuna', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("[]"), done.stdout[-500:]
