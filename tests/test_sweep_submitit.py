"""The submitit executor through submitit's local executor (cluster=local): the same runs give the same
report as local, a failing run is recorded with its error, a rerun skips what finished, and a job the
executor loses is recorded too. Its options are checked before anything is made."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import yaml
from click.testing import CliRunner

from faderkit.cli import cli
from faderkit.sweep import sweep
from faderkit.sweep.jobs import Job, read_status

from test_sweep import write_sweep

LOCAL = {"cluster": "local", "timeout_min": 10}


def one_error_line(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["-x", "partiton=cpu"], ["executor 'submitit'", "params.partiton: unknown key", "partition"]),
    (["-x", "timeout_min=soon"], ["params.timeout_min: expected int in [1, 525600], got 'soon'"]),
    (["-x", "cluster=pbs"], ["params.cluster: 'pbs' is not a choice; choose one of: auto, slurm, local, debug"]),
    (["-x", "mem_gb=-4"], ["params.mem_gb"]),
    (["-x", "partition"], ["malformed --executor-param 'partition'", "KEY=VALUE"]),
    (["-x", "jobs=3"], ["--jobs N"]),
])
def test_a_bad_option_is_one_error_line_and_nothing_is_made(tmp_path, toy_root, args, words):
    write_sweep(tmp_path, toy_root)
    result = CliRunner().invoke(cli, ["sweep", str(tmp_path / "sw.yaml"), "--root", str(tmp_path / "runs"),
                                      "--executor", "submitit", *args])
    line = one_error_line(result)
    assert all(w in line for w in words), line
    assert not (tmp_path / "runs").exists()


def test_the_sweep_file_names_its_executor_and_the_command_line_goes_over_it(tmp_path, toy_root, monkeypatch):
    import faderkit.sweep.runner as runner

    seen = []
    monkeypatch.setattr(runner, "run_sweep", lambda plan, root, *args: seen.append(args) or tmp_path / "report.md")
    write_sweep(tmp_path, toy_root, executor={"name": "submitit", "params": {"cluster": "local", "timeout_min": 5},
                                              "jobs": 3, "threads": 2})
    base = ["sweep", str(tmp_path / "sw.yaml"), "--root", str(tmp_path / "runs")]
    for extra in ([], ["-x", "timeout_min=9", "--jobs", "4"], ["--executor", "local"]):
        result = CliRunner().invoke(cli, base + extra)
        assert result.exit_code == 0, result.output
    assert [a[:4] for a in seen] == [("submitit", 3, 2, {"cluster": "local", "timeout_min": 5}),
                                     ("submitit", 4, 2, {"cluster": "local", "timeout_min": 9}),
                                     ("local", 3, 2, {})]  # another executor: the file's options were not its


def test_without_submitit_one_line_says_how_to_install_it(tmp_path, toy_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit now raises ImportError
    write_sweep(tmp_path, toy_root)
    result = CliRunner().invoke(cli, ["sweep", str(tmp_path / "sw.yaml"), "--root", str(tmp_path / "runs"),
                                      "--executor", "submitit", "-x", "cluster=local"])
    assert one_error_line(result) == "Error: the submitit executor needs submitit: pip install 'faderkit[submitit]'"
    assert not (tmp_path / "runs").exists()


def test_the_listings_name_it_and_its_options():
    listing = CliRunner().invoke(cli, ["plugins", "--params", "submitit", "--kind", "executor"],
                                 env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    for word in ("executor submitit", "partition", "timeout_min", "mem_gb", "gpus_per_node", "account", "qos",
                 "slurm", "cluster", "auto | slurm | local | debug", "folder"):
        assert word in listing.output, word
    help_text = CliRunner().invoke(cli, ["sweep", "--help"], env={"COLUMNS": "200"}).output
    assert "submitit" in help_text and "--executor-param" in help_text and "partition=cpu" in help_text


needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="the submitit extra is not installed (pip install 'faderkit[submitit]')")


@needs_submitit
def test_submitit_gives_the_same_report_as_local(tmp_path, toy_root):
    """The 2 x 2 smoke sweep: the same processes with the same seeds and threads, so the same figures."""
    path = write_sweep(tmp_path, toy_root, seeds=[0, 1],
                       variants=[{"name": "a"}, {"name": "b", "set": {"train.lr": 0.001}}])
    reports = {}
    for executor, params in (("submitit", LOCAL), ("local", {})):
        md = sweep(path, tmp_path / executor, executor=executor, jobs=2, threads=1, executor_params=params)
        reports[executor] = json.loads(md.with_suffix(".json").read_text())
    assert [r["state"] for r in reports["submitit"]["runs"].values()] == ["done"] * 4
    assert set(reports["submitit"]["figures"]) == {"a", "b"} and reports["submitit"]["figures"]["b"]
    assert reports["submitit"]["figures"] == reports["local"]["figures"]
    logs = sorted(p.name for p in (tmp_path / "submitit" / "sw" / "submitit").iterdir())
    assert sum(n.endswith("_log.out") for n in logs) == 4, logs  # submitit's own files stay in the sweep's folder


@needs_submitit
def test_a_failing_run_is_recorded_and_a_rerun_skips_finished_ones(tmp_path, toy_root):
    path = write_sweep(tmp_path, toy_root,
                       variants=[{"name": "ok"}, {"name": "broken", "set": {"data.root": "/dev/null/x"}}])
    md = sweep(path, tmp_path / "runs", executor="submitit", jobs=2, threads=1, executor_params=LOCAL)
    folder = md.parent
    broken = json.loads((folder / "status" / "broken-s0.json").read_text())
    assert broken["state"] == "failed" and broken["stage"] == "train" and broken["error"].startswith("Error:"), broken
    assert "`broken-s0`: failed in train: Error:" in md.read_text()
    done = [folder / "ok-s0" / "best.safetensors", folder / "ok-s0" / "eval_test" / "report.json"]
    stamps = [p.stat().st_mtime_ns for p in done]
    sweep(path, tmp_path / "runs", executor="submitit", jobs=2, threads=1, executor_params=LOCAL)
    assert [p.stat().st_mtime_ns for p in done] == stamps
    log = (folder / "logs" / "ok-s0.log").read_text()
    assert log.count("$ faderkit train") == 1 and log.count("$ faderkit eval") == 1
    assert (folder / "logs" / "broken-s0.log").read_text().count("$ faderkit train") == 2  # a failed run is retried


@needs_submitit
def test_a_job_the_executor_loses_is_recorded_with_its_error(tmp_path):
    """The job itself crashes (its log folder is missing): its status file and result say so, in one line."""
    from faderkit.plugins import registries

    (tmp_path / "status").mkdir()
    job = Job(name="gone", run_dir=str(tmp_path / "gone"), recipe_file=str(tmp_path / "none.yaml"),
              eval_dir=str(tmp_path / "gone" / "eval_test"), log_file=str(tmp_path / "missing" / "gone.log"),
              status_file=str(tmp_path / "status" / "gone.json"))
    results = []
    registries()["executor"].create("submitit", params=LOCAL, jobs=1).run([job], results.append)
    assert len(results) == 1 and results[0]["name"] == "gone"
    status = read_status(job)
    assert {k: status[k] for k in ("state", "stage")} == {"state": "failed", "stage": "submitit"}, status
    assert "FileNotFoundError" in status["error"] and "missing/gone.log" in status["error"], status
    assert "\n" not in status["error"] and "submitit log:" in status["error"]
    assert results[0]["error"] == status["error"]


@needs_submitit
def test_ctrl_c_stops_the_sweep_in_one_line_and_a_rerun_finishes_it(tmp_path, toy_root):
    """Ctrl-C reaches the whole process group, submitit's local controllers included: the terminal shows the
    sweep's own line, no traceback, no job is left running, and the same command finishes the sweep."""
    import os
    import signal
    import subprocess
    import time

    raw = yaml.safe_load(write_sweep(tmp_path, toy_root, seeds=[0, 1]).read_text())
    tiny = yaml.safe_load((tmp_path / "tiny.yaml").read_text())
    tiny["train"]["schedule"]["steps"] = 400  # long enough to be interrupted while training
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "faderkit.cli", "sweep", str(tmp_path / "sw.yaml"), "--root", str(tmp_path / "runs"),
           "--jobs", "2", "--threads", "1", "--executor", "submitit", "-x", "cluster=local", "-x", "timeout_min=10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = [tmp_path / "runs" / "sw" / f"base-s{s}" / "metrics.jsonl" for s in (0, 1)]
    deadline = time.monotonic() + 120
    while not all(m.exists() for m in metrics) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0]  # both jobs are training
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130 and "Traceback" not in out, out
    assert "interrupted" in out.splitlines()[-1], out
    deadline = time.monotonic() + 20  # the jobs stop at their Ctrl-C; the controllers kill what does not
    while str(tmp_path) in (ps := subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout):
        assert time.monotonic() < deadline, ps  # no controller or job of the sweep left behind
        time.sleep(0.5)
    md = sweep(tmp_path / "sw.yaml", tmp_path / "runs", executor="submitit", jobs=2, threads=1, executor_params=LOCAL)
    report = json.loads(md.with_suffix(".json").read_text())
    assert [r["state"] for r in report["runs"].values()] == ["done"] * 2, [r.get("error") for r in report["runs"].values()]
