"""Bad input to the search and retrain CLIs: one line, exit code 2, no traceback."""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from searchseg.retrain import main as retrain_main
from searchseg.run import main as run_main


@pytest.mark.parametrize("args, fragment", [
    (["--space", "arch_lost"], "unknown search space 'arch_lost'"),
    (["--space", "arch_loss", "--set", "image_size=100"], "multiple of 32"),
    (["--space", "arch_loss", "--samples", "0"], "--samples 0 trains the space's first start configuration"),
    (["--resume"], "--resume needs --name"),
    (["--resume", "--name", "never-started"], "is not a searchseg experiment"),
    (["--data", "/no/such/data"], "does not exist"),
    (["--budget", "five minutes"], "is not a duration"),
    (["--budget", "5m", "--samples", "-2"], "--samples -2 must be a whole number of at least 0"),
    (["--budget", "5m", "--smoke"], "drop --budget or --smoke"),
    (["--space", "arch_loss", "--set", "arch=unet"], "--set arch: searched by space arch_loss"),
    (["--space", "arch_loss", "--set", "loss.ce=-1", "lr=0.1"], "--set loss.ce, lr: searched by space"),
    (["--space", "lr_wd", "--set", "loss.ce=-1"], "loss weight loss.ce=-1"),
    (["--space", "lr_wd", "--set", "grad_clip=-1"], "'grad_clip': -1.0 is below"),
    (["--space", "lr_wd", "--set", "loss.hinge=1"], "unknown loss 'hinge'"),
])
def test_run_refuses_bad_input(tmp_path, capsys, args, fragment):
    with pytest.raises(SystemExit) as exit_info:
        run_main([*args, "--results", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../escape", "a/run", "..", ".", "/tmp/abs", " padded"])
@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_name_must_be_one_folder_inside_the_results(tmp_path, capsys, name, resume):
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        run_main([*resume, "--name", name, "--results", str(results), "--quiet"])
    assert exit_info.value.code == 2
    assert "must be a single folder name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["results"])  # nothing written beside it


def test_space_with_searched_data_key_is_refused(tmp_path, capsys):
    space = tmp_path / "bad.yaml"
    space.write_text("params: {image_size: {choice: [64, 128]}}\n")
    with pytest.raises(SystemExit):
        run_main(["--space", str(space), "--results", str(tmp_path), "--quiet"])
    assert "cannot be searched" in capsys.readouterr().err


def test_retrain_refuses_a_folder_that_is_not_an_experiment(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        retrain_main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "is not a finished searchseg experiment" in capsys.readouterr().err


@pytest.mark.parametrize("trial", ["../../elsewhere", "a/b", ".."])
def test_retrain_trial_must_name_one_folder_inside_the_experiment(tmp_path, capsys, trial):
    """--trial names final-TRIAL/: a path would write it elsewhere."""
    with pytest.raises(SystemExit) as exit_info:
        retrain_main([str(tmp_path), "--trial", trial])
    assert exit_info.value.code == 2 and "--trial" in capsys.readouterr().err


def test_run_help_lists_every_option():
    result = subprocess.run([sys.executable, "-m", "searchseg.run", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    for option in ("--space", "--data", "--budget", "--samples", "--epochs", "--concurrency", "--name", "--resume",
                   "--smoke", "--cpus-per-trial", "--gpus-per-trial", "--address", "--storage", "--export"):
        assert option in result.stdout


@pytest.mark.parametrize("module, args, fragment", [
    ("searchseg.run", ["--space", "nope"], "unknown search space 'nope'"),
    ("searchseg.retrain", ["/no/experiment"], "is not a finished searchseg experiment"),
])
def test_cli_errors_have_no_traceback(module, args, fragment):
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and fragment in result.stderr


def test_a_dashboard_without_rays_packages_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as where ray[default] is not installed
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--dashboard", "--smoke", "--results", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    assert "--dashboard needs Ray's dashboard packages (aiohttp is missing): pip install 'searchseg[dashboard]'" \
        in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("aiohttp") is None or importlib.util.find_spec("opencensus") is None,
                    reason="Ray's dashboard packages are not installed (pip install -e '.[dashboard]')")
def test_the_dashboard_starts_with_the_local_cluster_and_its_url_answers():
    probe = (
        "import re, urllib.request, ray\n"
        "from searchseg.api import ResourceConfig, Search\n"
        "from searchseg.tuning.search import _start_ray\n"
        "lines = []\n"
        "_start_ray(Search(resources=ResourceConfig(dashboard=True)), echo=lines.append)\n"
        "url = re.search(r'Ray dashboard: (\\S+)', lines[0])[1]\n"
        "print(urllib.request.urlopen(url, timeout=30).status, *lines, sep='\\n')\n"
        "ray.shutdown()\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    status, dashboard, cluster = result.stdout.splitlines()[-3:]
    assert status == "200" and dashboard.startswith("Ray dashboard: http://127.0.0.1:")
    assert cluster.startswith("local Ray cluster: ray status --address ")


def test_ctrl_c_while_the_run_starts_up_is_one_line(tmp_path):
    """Ctrl-C 2 s after launch lands in the imports or the data check: one line, exit 130, no traceback."""
    run = subprocess.Popen([sys.executable, "-m", "searchseg.run", "--results", str(tmp_path), "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(2)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "Traceback" not in stderr and "interrupted" in stderr, stderr[-2000:]
