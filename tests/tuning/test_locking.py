"""One live run per experiment name."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from searchseg.run import main as run_main

HOLD = "import sys, time; from searchseg.tuning.locking import lock_experiment; lock_experiment(sys.argv[1]); " \
       "print('held', flush=True); time.sleep(120)"


@pytest.fixture
def held_by_another_process(tmp_path):
    folder = tmp_path / "results" / "taken"
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield folder, holder.pid
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_second_live_run_on_one_name_is_refused(held_by_another_process, tmp_path, capsys, resume):
    folder, pid = held_by_another_process
    (folder / "run.json").write_text("{}")  # for --resume: an experiment is there
    with pytest.raises(SystemExit) as exit_info:
        run_main([*resume, "--name", "taken", "--results", str(tmp_path / "results"), "--quiet"])
    assert exit_info.value.code == 2
    assert f"is in use by a live run (pid {pid})" in capsys.readouterr().err


def test_the_lock_goes_with_the_process_that_held_it(held_by_another_process, tmp_path, capsys):
    folder, pid = held_by_another_process
    subprocess.run(["kill", "-9", str(pid)], check=True)
    time.sleep(0.5)
    with pytest.raises(SystemExit):  # no longer "in use": the next check is the empty experiment's run.json
        run_main(["--resume", "--name", "taken", "--results", str(tmp_path / "results"), "--quiet"])
    assert "is not a searchseg experiment (no run.json)" in capsys.readouterr().err
