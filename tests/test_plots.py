"""Recovery plots are written as PNG, also when no replication converged."""

import numpy as np

from simfit.plots import plot_coverage, plot_recovery
from simfit.study import RecoveryResult


def record(rep, converged, value):
    d = {"a": value, "b": 2 * value}
    return {
        "rep": rep, "truth": {"a": 1.0, "b": 2.0}, "estimate": d, "se": {"a": 0.1, "b": 0.2},
        "lower": {k: v - 0.3 for k, v in d.items()}, "upper": {k: v + 0.3 for k, v in d.items()},
        "converged": converged, "message": "", "jtest": None, "jtest_p": None, "seconds": 0.1,
    }


def test_plots_are_png(tmp_path):
    rng = np.random.default_rng(1)
    result = RecoveryResult(["a", "b"], [record(r, True, 1 + 0.1 * rng.normal()) for r in range(10)])
    for plot, name in ((plot_recovery, "r.png"), (plot_coverage, "c.png")):
        path = plot(result, tmp_path / name)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_plots_without_converged_replications(tmp_path):
    result = RecoveryResult(["a", "b"], [record(r, False, float("nan")) for r in range(3)])
    assert plot_recovery(result, tmp_path / "r.png").exists()
    assert plot_coverage(result, tmp_path / "c.png").exists()


def test_statistics_plot_marks_what_the_screen_flags(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import matplotlib.pyplot as plt
    import pandas as pd

    from simfit.plots import plot_statistics_fit
    from simfit.screen import screen_statistics

    rng = np.random.default_rng(3)
    draws = rng.normal(size=(500, 3))
    draws[:20, 1] = 1e5  # heavy tails in b
    names = ("a", "b", "c")
    screen = screen_statistics(draws, np.array([0.1, 0.0, 9.0]), names)  # c: far beyond every panel
    table = pd.DataFrame({"std_difference": [0.1, 0.0, 1.5], "robust_z": screen.robust_z,
                          "heavy_tails": [n in screen.heavy for n in names]}, index=list(names))
    result = SimpleNamespace(statistics_table=lambda: table, screen=screen, model=SimpleNamespace(name="m"))
    seen = {}
    monkeypatch.setattr(plt, "close", lambda fig: seen.setdefault("labels", [t.get_text() for t in fig.axes[0].get_yticklabels()]))
    path = plot_statistics_fit(result, tmp_path / "s.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert seen["labels"] == ["a", "b  [heavy tails]", "c  [mismatch]"]
