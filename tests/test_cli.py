"""The simfit command line: studies, resuming after a kill, fitting data files, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import simfit
from simfit.cli import main
from simfit.models import random_intercept

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = str(ROOT / "scenarios" / "quickstart.toml")


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_run_quickstart_writes_tables_plots_and_summary(tmp_path, capsys):
    out = tmp_path / "study"
    started = time.perf_counter()
    assert main(["run", QUICKSTART, "--reps", "8", "--jobs", "2", "--out", str(out), "--json", "--no-progress"]) == 0
    assert time.perf_counter() - started < 120
    summary = last_json(capsys)
    for name in ("mu", "tau", "sigma"):
        assert {"bias", "rmse", "coverage95"} <= set(summary["params"][name])
    for f in ("replications.csv", "summary.csv", "summary.json", "recovery.png", "coverage.png"):
        assert (out / f).stat().st_size > 0
    assert len(pd.read_csv(out / "replications.csv")) == 8


def test_one_job_and_the_dask_backend_give_identical_replications(tmp_path, capsys):
    tables = []
    # Two worker processes of the default backend are compared with one in test_study.py.
    for extra in (["--jobs", "1"], ["--jobs", "2", "--backend", "dask"]):
        out = tmp_path / "-".join(extra)
        assert main(["run", QUICKSTART, "--reps", "4", "--seed", "4", "--out", str(out), "--no-progress", *extra]) == 0
        tables.append(pd.read_csv(out / "replications.csv").drop(columns=["seconds"]))
    capsys.readouterr()
    pd.testing.assert_frame_equal(tables[0], tables[1])


def _kill_after_records(cmd: list[str], folder: Path, records: int) -> int:
    """Run ``cmd``, SIGKILL it once ``folder`` holds ``records`` records; return how many it holds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    path = folder / "replications.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= records:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return path.read_bytes().count(b"\n")


def test_killed_study_resumes_to_the_uninterrupted_result(tmp_path):
    reps = "60"
    killed = tmp_path / "killed"
    # The quickstart scenario without the global phase and the bootstrap: resuming is what is tested.
    scenario = tmp_path / "quick.toml"
    scenario.write_text(Path(QUICKSTART).read_text().replace("[fit]\n", "[fit]\nglobal_points = 0\nbootstrap = 0\n"))
    assert "bootstrap = 0" in scenario.read_text()
    cmd = [sys.executable, "-m", "simfit", "run", str(scenario), "--reps", reps, "--seed", "9", "--no-progress"]
    # Killed at three moments: as soon as its folder exists, part-way through the run (started
    # again), and part-way through a resume.
    assert _kill_after_records([*cmd, "--out", str(killed)], killed, 0) < 5
    done_before = _kill_after_records([*cmd, "--out", str(killed)], killed, 5)
    assert 5 <= done_before < int(reps), "the study must be killed part-way"
    assert not (killed / "replications.csv").exists()
    resume = [sys.executable, "-m", "simfit", "resume", str(killed), "--no-progress"]
    later = _kill_after_records(resume, killed, done_before + 15)
    assert done_before < later < int(reps), "the resumed study must be killed part-way"
    resumed = subprocess.run([*resume, "--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    times = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert times["compute_seconds"] > 0 and times["seconds"] > 0  # this session's wall time and the study's fitting time
    straight = tmp_path / "straight"
    subprocess.run([*cmd, "--out", str(straight)], check=True, capture_output=True)
    a = pd.read_csv(killed / "replications.csv")
    b = pd.read_csv(straight / "replications.csv")
    assert a["rep"].tolist() == list(range(int(reps)))  # all present, none repeated
    pd.testing.assert_frame_equal(a.drop(columns=["seconds"]), b.drop(columns=["seconds"]))


def test_fit_a_data_file(tmp_path, capsys):
    model = random_intercept.model()
    panel = simfit.Simulator(model, simfit.Panel.balanced(40, 15)).simulate({"mu": 1, "tau": 0.5, "sigma": 1}, seed=3).panel(0)
    frame = panel.to_frame()
    frame.insert(0, "unit", frame.pop("unit").map(lambda u: f"subject-{u}"))
    path = tmp_path / "data.csv"
    frame.sample(frac=1.0, random_state=1).sort_values("unit", kind="stable").to_csv(path, index=False)
    assert main(["fit", QUICKSTART, "--data", str(path), "--json", "--no-progress"]) == 0
    summary = last_json(capsys)
    assert summary["converged"]
    for name, truth in {"mu": 1.0, "tau": 0.5, "sigma": 1.0}.items():
        assert abs(summary["params"][name] - truth) < 4 * summary["se"][name]


def test_simulate_list_and_show(tmp_path, capsys):
    out = tmp_path / "panel.csv"
    assert main(["simulate", QUICKSTART, "--out", str(out), "--json"]) == 0
    summary = last_json(capsys)
    assert set(summary["statistics"][0]) == {"mean:y.mean", "mean:y.var", "sd:y.mean", "sd:y.var"}
    assert len(pd.read_csv(out)) == 50 * 20
    assert main(["list", "--json"]) == 0
    assert any(p.endswith("quickstart.toml") for p in last_json(capsys)["scenarios"])
    assert main(["show", QUICKSTART, "--json"]) == 0
    assert last_json(capsys)["params"] == ["mu", "tau", "sigma"]


def test_simulate_writes_the_columns_the_scenario_reads_so_fit_takes_its_output(tmp_path, capsys):
    # NONMEM-style names: unit ID, values { concentration = "DV" }, covariates { time = "TIME", dose = "AMT" }.
    truth = (ROOT / "scenarios" / "pk.toml").read_text().split("[truth]")[1].split("[design]")[0]
    scenario = tmp_path / "nonmem.toml"
    scenario.write_text((ROOT / "scenarios" / "data" / "pk_nonmem.toml").read_text()
                        + f'[statistics]\nkind = "hand"\n[truth]{truth}[design]\ndata = "{ROOT / "scenarios" / "data" / "pk_nonmem.csv"}"\n')
    out = tmp_path / "simulated.csv"
    assert main(["simulate", str(scenario), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    columns = pd.read_csv(out).columns
    assert {"ID", "DV", "TIME", "AMT"} <= set(columns) and not {"unit", "concentration", "time", "dose"} & set(columns)
    assert main(["fit", str(scenario), "--data", str(out), "--n-sims", "5", "--bootstrap", "0", "--json"]) == 0
    assert last_json(capsys)["data"] == str(out)


def test_every_computing_command_takes_no_progress():
    from simfit.cli import build_parser

    parser = build_parser()
    for argv in (["run", "s.toml"], ["resume", "d"], ["fit", "s.toml", "--data", "d.csv"], ["check", "s.toml"],
                 ["sample", "s.toml"], ["simulate", "s.toml"]):
        assert parser.parse_args([*argv, "--no-progress"]).no_progress, argv


GOOD = """
[model]
name = "random_intercept"
[truth]
mu = 1.0
tau = 0.5
sigma = 1.0
[design]
units = 10
observations = 5
[data]
unit = "id"
values = ["y"]
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "simfit", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD + "[study]\nrepz = 3\n", "unknown key(s) repz"),
        (GOOD.replace("units = 10", 'units = "ten"'), "[design] units: expected an integer"),
        (GOOD.replace('name = "random_intercept"', 'name = "no_such_model"'), "unknown model 'no_such_model'"),
        (GOOD.replace('[model]\nname = "random_intercept"\n', ""), "missing section [model]"),
    ],
)
def test_bad_scenarios_fail_in_one_line_without_output(tmp_path, text, message):
    scenario = tmp_path / "bad.toml"
    scenario.write_text(text)
    out = tmp_path / "out"
    res = run_cli("run", str(scenario), "--reps", "2", "--out", str(out))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"subject": [1, 1], "y": [1.0, 2.0]}), "Column(s) 'id' not found"),
        (pd.DataFrame({"id": [1, 1], "y": ["a", "b"]}), "not numeric"),
    ],
)
def test_bad_data_files_fail_in_one_line(tmp_path, frame, message):
    scenario = tmp_path / "s.toml"
    scenario.write_text(GOOD)
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    res = run_cli("fit", str(scenario), "--data", str(data))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr
    res = run_cli("fit", str(scenario), "--data", str(tmp_path / "missing.csv"))
    assert res.returncode == 2 and "not found" in res.stderr


SAMPLE_SCENARIO = """
[model]
name = "lognormal_exponential"
[truth]
m = 0.0
s = 0.5
[prior]
m = { dist = "uniform", low = -2, high = 2 }
s = { dist = "halfnormal", scale = 1 }
[design]
units = 40
observations = 20
[sample]
method = "bsl"
chains = 2
draws = 200
seed = 3
n_sims = 20
block = 50
"""


def test_sample_simulates_data_under_the_scenarios_column_names(tmp_path, capsys):
    # [data] names the unit column "subject": the simulated data file must use it, since the
    # sampler reads the file back through [data]. Here with the surrogate sampler, small.
    scenario = tmp_path / "named.toml"
    text = SAMPLE_SCENARIO.replace('[sample]\nmethod = "bsl"\nchains = 2\ndraws = 200\nseed = 3\nn_sims = 20\nblock = 50\n',
                                   '[data]\nunit = "subject"\n[sample]\nmethod = "surrogate"\nchains = 2\ndraws = 200\nseed = 3\nn_design = 300\nrounds = 2\n')
    assert 'unit = "subject"' in text
    scenario.write_text(text)
    out = tmp_path / "post"
    assert main(["sample", str(scenario), "--out", str(out), "--json", "--no-progress"]) == 0
    assert last_json(capsys)["method"] == "surrogate"
    assert pd.read_csv(out / "data.csv").columns[0] == "subject"


def test_sample_writes_the_posterior_and_resumes_after_a_kill(tmp_path, capsys):
    scenario = tmp_path / "ln.toml"
    scenario.write_text(SAMPLE_SCENARIO)
    out = tmp_path / "post"
    assert main(["sample", str(scenario), "--out", str(out), "--json", "--no-progress"]) == 0
    summary = last_json(capsys)
    assert summary["method"] == "bsl" and summary["chains"] == 2 and summary["draws"] == 200
    assert set(summary["params"]) == {"m", "s"}
    for f in ("posterior.csv", "draws.csv", "summary.txt", "data.csv", "manifest.json", "trace.png", "marginals.png"):
        assert (out / f).stat().st_size > 0
    draws = pd.read_csv(out / "draws.csv")
    assert list(draws.columns) == ["chain", "draw", "m", "s"] and len(draws) == 400
    # Keep the first block of each chain only, as if killed there, and resume.
    records = out / "replications.jsonl"
    lines = [line for line in records.read_bytes().splitlines(keepends=True) if json.loads(line)["record"]["block"] == 0]
    records.write_bytes(b"".join(lines))
    assert main(["resume", str(out), "--json", "--no-progress"]) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(pd.read_csv(out / "draws.csv"), draws)


@pytest.mark.parametrize("plotting", ["arviz", "matplotlib", "failing"])
def test_sample_by_default_writes_draws_then_trace_and_marginal_plots(tmp_path, capsys, monkeypatch, plotting):
    # No method in the scenario: the surrogate sampler where its checks pass (here), BSL where
    # not (its options, n_sims and block, are kept for that). The figures come after the draws:
    # by ArviZ, by matplotlib without it, and a failure to draw them costs nothing else.
    import simfit.plots

    if plotting == "matplotlib":
        monkeypatch.setitem(sys.modules, "arviz", None)  # import arviz raises ImportError
    elif plotting == "failing":
        def fail(posterior, folder):
            raise RuntimeError("no figures today")

        monkeypatch.setattr(simfit.plots, "plot_posterior", fail)
    scenario = tmp_path / "auto.toml"
    scenario.write_text(SAMPLE_SCENARIO.replace('method = "bsl"\n', "n_design = 300\nrounds = 2\n"))
    out = tmp_path / "post"
    assert main(["sample", str(scenario), "--out", str(out), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["method"] == "surrogate" and summary["info"]["method_choice"].startswith("auto: the surrogate sampler")
    assert len(pd.read_csv(out / "draws.csv")) == 2 * 200
    if plotting == "failing":
        assert summary["plots"]["files"] == [] and "posterior plots not written: RuntimeError: no figures today" in captured.err
        assert not (out / "trace.png").exists()
    else:
        assert summary["plots"] == {"files": ["trace.png", "marginals.png"], "by": plotting}
        for name in ("trace.png", "marginals.png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_a_data_file_by_abc_smc(tmp_path, capsys):
    scenario = tmp_path / "ln.toml"
    scenario.write_text(SAMPLE_SCENARIO)
    data = tmp_path / "data.csv"
    model = simfit.models.lognormal_exponential.model()
    simfit.simulate(model, simfit.Panel.balanced(40, 20), {"m": 0.2, "s": 0.4}, seed=7).panel(0).to_frame().to_csv(data, index=False)
    out = tmp_path / "abc"
    argv = ["sample", str(scenario), "--data", str(data), "--method", "abc-smc", "--out", str(out), "--json", "--no-progress"]
    assert main(argv) == 0
    summary = last_json(capsys)
    assert summary["method"] == "abc-smc" and summary["info"]["stopped"] in ("min_acceptance", "max_generations", "max_simulations", "min_tolerance")
    assert "weight" in pd.read_csv(out / "draws.csv").columns
    assert main(["sample", str(scenario), "--data", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err


def test_sample_needs_a_prior_for_every_parameter(tmp_path, capsys):
    scenario = tmp_path / "ln.toml"
    scenario.write_text(SAMPLE_SCENARIO.replace('s = { dist = "halfnormal", scale = 1 }\n', ""))
    assert main(["sample", str(scenario), "--out", str(tmp_path / "x")]) == 2
    assert "No prior for parameter(s) s" in capsys.readouterr().err


def test_sample_never_replaces_the_data_of_a_run(tmp_path, capsys):
    scenario = tmp_path / "ln.toml"
    scenario.write_text(SAMPLE_SCENARIO.replace("draws = 200", "draws = 20"))
    out = tmp_path / "post"
    assert main(["sample", str(scenario), "--out", str(out), "--no-progress"]) == 0
    before = (out / "data.csv").read_bytes()
    other = tmp_path / "other.csv"
    model = simfit.models.lognormal_exponential.model()
    simfit.simulate(model, simfit.Panel.balanced(40, 20), {"m": 0.2, "s": 0.4}, seed=7).panel(0).to_frame().to_csv(other, index=False)
    capsys.readouterr()
    assert main(["sample", str(scenario), "--data", str(other), "--out", str(out)]) == 2
    assert "holds a sampling run on other data" in capsys.readouterr().err
    assert (out / "data.csv").read_bytes() == before


def test_few_units_scenario_shows_a_mode_at_zero_and_a_mean_away_from_it(tmp_path, capsys):
    out = tmp_path / "few"
    assert main(["sample", str(ROOT / "scenarios" / "few_units.toml"), "--out", str(out), "--json", "--no-progress"]) == 0
    tau = last_json(capsys)["params"]["tau"]
    assert tau["estimate"] < 0.05 and tau["map"] < 0.1 < tau["mean"]


def test_killed_sampling_run_resumes_to_the_uninterrupted_draws(tmp_path):
    scenario = tmp_path / "ln.toml"
    scenario.write_text(SAMPLE_SCENARIO.replace("draws = 200", "draws = 1500"))
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "simfit", "sample", str(scenario), "--no-progress"]
    # Killed at three moments: as soon as its folder exists, part-way (started again), and
    # part-way through a resume.
    assert _kill_after_records([*cmd, "--out", str(killed)], killed, 0) < 6
    done_before = _kill_after_records([*cmd, "--out", str(killed)], killed, 6)
    assert 6 <= done_before < 2 * 45, "the run must be killed part-way (2 chains x 45 blocks)"
    assert not (killed / "draws.csv").exists()
    resume = [sys.executable, "-m", "simfit", "resume", str(killed), "--no-progress"]
    later = _kill_after_records(resume, killed, done_before + 10)
    assert done_before < later < 2 * 45, "the resumed run must be killed part-way"
    resumed = subprocess.run([*resume, "--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    subprocess.run([*cmd, "--out", str(straight)], check=True, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_csv(killed / "draws.csv"), pd.read_csv(straight / "draws.csv"))


def test_outputs_never_replace_a_users_files(tmp_path, capsys):
    panel = tmp_path / "panel.csv"
    panel.write_text("mine\n")
    assert main(["simulate", QUICKSTART, "--out", str(panel)]) == 2
    assert "already exists" in capsys.readouterr().err and panel.read_text() == "mine\n"
    assert main(["simulate", QUICKSTART, "--out", str(panel), "--force", "--json"]) == 0
    assert len(pd.read_csv(panel)) == 50 * 20
    for command in (["run", QUICKSTART, "--reps", "2"], ["sample", str(ROOT / "scenarios" / "few_units.toml")]):
        folder = tmp_path / command[0]
        folder.mkdir()
        (folder / "summary.csv").write_text("mine\n")
        assert main([*command, "--out", str(folder), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "already holds files (summary.csv)" in err and "--force" in err
        assert sorted(p.name for p in folder.iterdir()) == ["summary.csv"] and (folder / "summary.csv").read_text() == "mine\n"


def test_resume_refuses_when_the_model_code_changed(tmp_path, capsys):
    code = "from simfit.models import random_intercept\n\n\ndef build():\n    return random_intercept.model(), random_intercept.statistics()\n"
    (tmp_path / "mine.py").write_text(code)
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[model]\nname = "mine.py:build"\n[truth]\nmu = 1.0\ntau = 0.5\nsigma = 1.0\n[design]\nunits = 20\nobservations = 5\n'
        "[fit]\nglobal_points = 0\nbootstrap = 0\n"
    )
    out = tmp_path / "study"
    assert main(["run", str(scenario), "--reps", "1", "--out", str(out), "--no-progress", "--json"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_source_file"].endswith("mine.py") and len(manifest["model_source_sha256"]) == 64
    (tmp_path / "mine.py").write_text(code + "\n# edited\n")
    capsys.readouterr()
    assert main(["resume", str(out)]) == 2
    assert "changed since" in capsys.readouterr().err


ENDLESS = '''
from pathlib import Path

from numba import njit

import simfit
from simfit.models import random_intercept
from simfit.random import normal


@njit(cache=True)
def forever(psi, theta, x, args, rng, y):
    k = 0.0
    while psi[0] > 5.0:  # never returns for mu > 5 (the loop does work: it is not optimised away)
        k += normal(rng)
    for j in range(y.shape[0]):
        y[j, 0] = theta[0] + psi[2] * normal(rng) + 0.0 * k


def build(start=0.0):
    Path(__file__).with_name("built").touch()  # the command is running: the test waits for this
    ri = random_intercept.model()
    params = (simfit.Param("mu", start=start), *ri.params[1:])
    model = simfit.Model(params, ri.levels, simfit.Observations(forever, values=("y",)))
    return model, random_intercept.statistics()


def build_looping_at_the_start():
    return build(start=8.0)
'''

SCENARIO = '[model]\nname = "endless.py:{builder}"\n[truth]\nmu = 8.0\ntau = 0.5\nsigma = 1.0\n[design]\nunits = 10\nobservations = 5\n'


@pytest.mark.parametrize("command", ["simulate", "fit", "run"])
def test_ctrl_c_stops_a_kernel_in_an_endless_loop(tmp_path, command):
    # simulate: the simulation at the truth loops; fit: the check of the kernels when the simulator
    # is built (at the model's start values) loops; run: the replications loop in worker processes,
    # and the terminal's Ctrl-C reaches every process of the group.
    (tmp_path / "endless.py").write_text(ENDLESS)
    builder = "build_looping_at_the_start" if command == "fit" else "build"
    (tmp_path / "s.toml").write_text(SCENARIO.format(builder=builder))
    argv = {
        "simulate": ["simulate", "s.toml"],
        "fit": ["fit", "s.toml", "--data", "data.csv"],
        "run": ["run", "s.toml", "--jobs", "2", "--reps", "4", "--out", "study", "--no-progress"],
    }[command]
    if command == "fit":
        panel = simfit.Simulator(random_intercept.model(), simfit.Panel.balanced(10, 5)).simulate({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, seed=1)
        panel.panel(0).to_frame().rename(columns={"unit": "id"}).to_csv(tmp_path / "data.csv", index=False)
        (tmp_path / "s.toml").write_text(SCENARIO.format(builder=builder) + '[data]\nunit = "id"\nvalues = ["y"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "simfit", *argv], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "built").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(4.0 if command == "run" else 2.5)  # compiled, and looping
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Ctrl-C did not stop simfit {command}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code in (130, -signal.SIGINT)
    time.sleep(1.0)
    assert _running_in_group(proc.pid) == []  # no worker left running the kernel


def _running_in_group(pgid: int) -> list[str]:
    """Processes of a process group that have not ended (zombies, killed and awaiting their
    reaping, excepted); Linux only, empty elsewhere."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            running.append(stat.parent.name)
    return running


def test_fit_a_data_file_with_only_model_and_data_and_write_the_results(tmp_path, capsys):
    data = tmp_path / "observed.csv"
    model = random_intercept.model()
    panel = simfit.Simulator(model, simfit.Panel.balanced(40, 8)).simulate({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, seed=2).panel(0)
    panel.to_frame().rename(columns={"unit": "id"}).to_csv(data, index=False)
    scenario = tmp_path / "fit.toml"
    scenario.write_text('[model]\nname = "random_intercept"\n[data]\nunit = "id"\nvalues = ["y"]\n[start]\nsigma = 2.0\n')
    out = tmp_path / "fit"
    argv = ["fit", str(scenario), "--data", str(data), "--n-sims", "12", "--weighting", "diagonal", "--bootstrap", "0", "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    summary = last_json(capsys)
    assert summary["n_sims"] == 12 and summary["weighting"] == "diagonal" and "bootstrap" not in summary
    assert sorted(summary["files"]) == sorted(p.name for p in out.iterdir())
    assert {"estimates.csv", "fit.json", "summary.txt", "statistics.csv", "statistics.png", "population.csv"} <= set(summary["files"])
    estimates = pd.read_csv(out / "estimates.csv", index_col="parameter")
    assert list(estimates.index) == ["mu", "tau", "sigma"]
    assert "std_difference" in pd.read_csv(out / "statistics.csv").columns
    assert main(argv) == 2 and "--force" in capsys.readouterr().err  # an earlier fit is not replaced
    assert main(["show", str(out), "--json"]) == 0
    shown = last_json(capsys)
    assert shown["content"]["params"] == summary["params"]
    assert main(["fit", str(scenario), "--data", str(data), "--bootstrap", "many"]) == 2
    assert "--bootstrap takes 'auto' or a number" in capsys.readouterr().err


PER_KG = ROOT / "scenarios" / "data"


def test_fit_per_kg_data_with_the_published_model_from_model_options(tmp_path, capsys):
    # Random ka and CL, V = CL / ke, additive error, on doses per kg (a subject with a positive
    # concentration at time 0): the file was simulated at the scenario's [truth].
    from simfit.scenario import load_scenario

    truth = load_scenario(PER_KG / "pk_per_kg.toml").truth
    out = tmp_path / "fit"
    argv = ["fit", str(PER_KG / "pk_per_kg.toml"), "--data", str(PER_KG / "pk_per_kg.csv"), "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = last_json(capsys)
    assert summary["converged"] and not summary["unit_fit_failures"].get("concentration.nls.converged")
    assert set(summary["params"]) == set(truth) == {"log_ka", "ka_sd", "log_cl", "cl_sd", "log_ke", "sigma_add"}
    for name, value in truth.items():
        lower, upper = summary["conf_int_95"][name]
        assert lower < value < upper and abs(summary["params"][name] - value) < 4 * summary["se"][name], name
    assert "subject.ke" in pd.read_csv(out / "population.csv").iloc[:, 0].tolist()


def test_the_per_kg_data_file_is_what_its_script_writes(tmp_path):
    out = tmp_path / "pk_per_kg.csv"
    subprocess.run([sys.executable, str(PER_KG / "make_pk_per_kg.py"), str(out)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.read_bytes() == (PER_KG / "pk_per_kg.csv").read_bytes()
    frame = pd.read_csv(out)
    assert frame["subject"].nunique() == 12 and (frame.groupby("subject").size() == 11).all()
    assert frame["dose_mg_per_kg"].between(3.0, 6.0).all() and (frame.loc[frame["time_h"] == 0, "conc_mg_L"] > 0).any()


def test_a_scenario_with_options_and_fixed_parameters_runs_through_every_command(tmp_path, capsys):
    scenario = tmp_path / "fixed.toml"
    prior = "".join(f'{n} = {{ dist = "normal", mean = {m}, sd = 0.5 }}\n' for n, m in (("log_ka", 0.5), ("log_cl", -3.2), ("log_ke", -2.4)))
    prior += 'ka_sd = { dist = "halfnormal", scale = 1 }\ncl_sd = { dist = "halfnormal", scale = 0.5 }\n'
    scenario.write_text(
        (PER_KG / "pk_per_kg.toml").read_text().replace('data = "pk_per_kg.csv"', f'data = "{PER_KG / "pk_per_kg.csv"}"')
        + "[fixed]\nsigma_add = 0.5\n[prior]\n" + prior + '[sample]\nmethod = "abc-smc"\nn_particles = 40\nmax_generations = 1\n'
    )
    data = tmp_path / "simulated.csv"
    assert main(["simulate", str(scenario), "--out", str(data), "--json"]) == 0
    summary = last_json(capsys)
    assert summary["fixed"] == {"sigma_add": 0.5} and "sigma_add" not in summary["truth"]
    assert main(["fit", str(scenario), "--data", str(data), "--n-sims", "5", "--bootstrap", "0", "--out", str(tmp_path / "fit")]) == 0
    text = capsys.readouterr().out
    assert "Fixed (not estimated): sigma_add = 0.5" in text and "Fixed (not estimated): sigma_add = 0.5" in (tmp_path / "fit" / "summary.txt").read_text()
    assert "sigma_add" not in pd.read_csv(tmp_path / "fit" / "estimates.csv")["parameter"].tolist()
    assert main(["check", str(scenario), "--reps", "5", "--json"]) == 0
    assert last_json(capsys)["fixed"] == {"sigma_add": 0.5}
    assert main(["run", str(scenario), "--reps", "1", "--out", str(tmp_path / "study"), "--no-progress", "--json"]) == 0
    assert set(last_json(capsys)["params"]) == {"log_ka", "ka_sd", "log_cl", "cl_sd", "log_ke"}
    assert main(["sample", str(scenario), "--data", str(data), "--out", str(tmp_path / "post"), "--no-progress"]) == 0
    assert "fixed (not estimated): sigma_add = 0.5" in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "post" / "draws.csv").columns[2:-1]) == ["log_ka", "ka_sd", "log_cl", "cl_sd", "log_ke"]
