"""Figures of recovery studies, fits and posteriors, saved as PNG (matplotlib, non-interactive backend)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = ["plot_recovery", "plot_coverage", "plot_statistics_fit", "plot_posterior", "POSTERIOR_PLOTS"]

#: The files :func:`plot_posterior` writes: trace plots (with each parameter's density beside its
#: chains) and marginal posteriors.
POSTERIOR_PLOTS = ("trace.png", "marginals.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_recovery(result, path: str | Path) -> Path:
    """True against estimated values, one panel per parameter, with the identity line and the
    intervals of the estimates."""
    plt = _pyplot()
    names = result.param_names
    rep = result.replications
    ok = rep[np.isfinite(rep[[f"estimate_{n}" for n in names]].to_numpy(dtype=float)).all(axis=1)]
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        t = ok[f"truth_{name}"].to_numpy(dtype=float)
        e = ok[f"estimate_{name}"].to_numpy(dtype=float)
        lo = ok[f"lower_{name}"].to_numpy(dtype=float)
        hi = ok[f"upper_{name}"].to_numpy(dtype=float)
        if not len(t):
            ax.text(0.5, 0.5, "no replication with an estimate", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(name)
            continue
        jitter = 0.0 if np.ptp(t) > 0 else 0.02 * (np.ptp(e) or 1.0)
        x = t + jitter * np.linspace(-1, 1, len(t)) if jitter else t
        span = np.concatenate([t, e])
        # Intervals of unidentified estimates can be (nearly) infinite: draw them to the edge of
        # the plot instead of stretching it.
        reach = 2.0 * (np.nanmax(span) - np.nanmin(span) or 1.0)
        lo = np.clip(lo, np.nanmin(span) - reach, e)
        hi = np.clip(hi, e, np.nanmax(span) + reach)
        conv = ok["converged"].to_numpy(dtype=bool)
        ax.errorbar(x[conv], e[conv], yerr=[(e - lo)[conv], (hi - e)[conv]], fmt="o", ms=3, alpha=0.6, elinewidth=0.6, color="C0",
                    label="converged")
        if (~conv).any():
            ax.errorbar(x[~conv], e[~conv], yerr=[(e - lo)[~conv], (hi - e)[~conv]], fmt="o", ms=3, mfc="none", alpha=0.6,
                        elinewidth=0.6, color="C3", label="not converged")
        if span.size:
            a, b = np.nanmin(span), np.nanmax(span)
            ax.plot([a, b], [a, b], "k--", lw=1, label="identity")
        ax.set_title(name)
        ax.set_xlabel("true value")
        ax.set_ylabel("estimate")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"Parameter recovery ({int(rep['converged'].sum())} converged of {len(rep)} replications)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_coverage(result, path: str | Path) -> Path:
    """Interval coverage per parameter with a binomial 95% band around the nominal level."""
    plt = _pyplot()
    summary = result.summary()
    cov_col = [c for c in summary.columns if c.startswith("coverage")][0]
    nominal = 1 - result.alpha
    n = max(int(summary["n"].max()), 1) if len(summary) else 1
    band = 1.96 * np.sqrt(nominal * (1 - nominal) / n)
    fig, ax = plt.subplots(figsize=(1.2 * len(summary) + 3, 3.5))
    pos = np.arange(len(summary))
    ax.bar(pos, summary[cov_col].astype(float), color="C0", alpha=0.8)
    ax.axhline(nominal, color="k", ls="--", lw=1, label=f"nominal {nominal:.0%}")
    ax.axhspan(nominal - band, nominal + band, color="grey", alpha=0.2, label="95% binomial band")
    ax.set_xticks(pos, list(summary.index))
    low = summary[cov_col].astype(float).min()
    ax.set_ylim(max(0.0, min(0.5, (low if np.isfinite(low) else 0.5) - 0.05)), 1.0)
    ax.set_ylabel("interval coverage")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_statistics_fit(result, path: str | Path) -> Path:
    """The fit of each statistic: the observed value against the distribution of the simulated
    mean statistic at the estimate, in its standard deviations (``statistics_table``); a point
    outside the band of +-2 is a statistic the model does not reproduce. Crosses give the same on
    the fit's robust scale, and statistics the fit's screen flags (heavy tails, a mismatch the sd
    hides) are named in red."""
    plt = _pyplot()
    table = result.statistics_table()
    z = table["std_difference"].to_numpy()
    robust = table["robust_z"].to_numpy() if "robust_z" in table else np.zeros(0)
    n = len(table)
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.32 * n))
    y = np.arange(n)[::-1]
    finite = np.abs(np.concatenate([z, robust]))
    finite = finite[np.isfinite(finite)]
    lim = min(max(3.0, float(finite.max()) * 1.1 if finite.size else 3.0), 20.0)  # beyond 20 sds: drawn at the edge
    ax.axvspan(-2.0, 2.0, color="0.9", label="simulated +-2 sd")
    ax.axvline(0.0, color="0.5", lw=0.8)
    ok = np.abs(z) <= 2.0
    ax.scatter(np.clip(z[ok], -lim, lim), y[ok], color="tab:blue", zorder=3, label="observed")
    ax.scatter(np.clip(z[~ok], -lim, lim), y[~ok], color="tab:red", zorder=3, label="observed, outside +-2 sd")
    labels = list(table.index)
    if robust.size:
        # The fit's screen: on a robust scale, which heavy simulated tails do not inflate.
        ax.scatter(np.clip(robust, -lim, lim), y, marker="x", color="tab:purple", zorder=4, label="observed, in robust sds")
        heavy, mismatched = set(result.screen.heavy), set(result.screen.mismatched)
        labels = [f"{n}  [{'heavy tails' if n in heavy else 'mismatch'}]" if n in heavy | mismatched else n for n in labels]
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    for tick, name in zip(ax.get_yticklabels(), labels):
        if name.endswith("]"):
            tick.set_color("tab:red")
    ax.set_xlabel("observed - simulated, in simulated sds")
    ax.set_xlim(-lim, lim)
    ax.legend(loc="best", fontsize=7)
    ax.set_title(f"Fit of the statistics ({result.model.name})")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_posterior(posterior, folder: str | Path) -> dict:
    """Trace plots and marginal posteriors of every parameter, written to ``folder`` as
    :data:`POSTERIOR_PLOTS`.

    Where ArviZ is installed it draws them (``az.plot_trace`` and ``az.plot_posterior`` of
    ``posterior.to_arviz()``, which resamples weighted ABC-SMC particles to equal weights);
    otherwise matplotlib alone draws the same: per parameter, its density and its chains' traces,
    and a weighted histogram with the posterior mean and 90% interval.

    Parameters
    ----------
    posterior : Posterior
    folder : path
        An existing folder.

    Returns
    -------
    dict
        ``files``: the paths written; ``by``: ``"arviz"`` or ``"matplotlib"``.
    """
    plt = _pyplot()  # the Agg backend before ArviZ imports pyplot
    try:
        import arviz as az
    except ImportError:
        az = None
    if az is None:
        figures, by = (_trace_figure(plt, posterior), _marginals_figure(plt, posterior)), "matplotlib"
    else:
        data = posterior.to_arviz()
        with warnings.catch_warnings():  # ArviZ's own use of matplotlib's deprecated calls
            warnings.simplefilter("ignore", DeprecationWarning)
            figures = (_figure_of(az.plot_trace(data, compact=False)), _figure_of(az.plot_posterior(data, hdi_prob=0.9, round_to=3)))
        by = "arviz"
    paths = []
    try:
        for fig, name in zip(figures, POSTERIOR_PLOTS):
            fig.suptitle(f"Posterior of {posterior.model.name} by {posterior.method}")
            fig.tight_layout()
            paths.append(Path(folder) / name)
            fig.savefig(paths[-1], dpi=90)
    finally:
        for fig in figures:
            plt.close(fig)
    return {"files": paths, "by": by}


def _figure_of(axes):
    """The figure of ArviZ's axes (one axis or an array of them)."""
    return np.ravel(axes)[0].figure


def _flat_draws(posterior) -> tuple[np.ndarray, np.ndarray | None]:
    """All chains' draws, shape (n, n_params), and their weights (None: equal)."""
    flat = posterior.draws.reshape(-1, posterior.draws.shape[2])
    return flat, None if posterior.weights is None else posterior.weights.reshape(-1)


def _trace_figure(plt, posterior):
    """Per parameter: its density (all chains, weights included) and each chain's draws."""
    names = posterior.param_names
    flat, weights = _flat_draws(posterior)
    fig, axes = plt.subplots(len(names), 2, figsize=(10.0, 2.0 * len(names) + 0.6), squeeze=False)
    for j, name in enumerate(names):
        axes[j, 0].hist(flat[:, j], bins=40, weights=weights, density=True, color="C0", alpha=0.7)
        axes[j, 0].set_title(name)
        for c in range(posterior.n_chains):
            axes[j, 1].plot(posterior.draws[c, :, j], lw=0.5, alpha=0.8, color=f"C{c % 10}")
        axes[j, 1].set_title(name)
        axes[j, 1].set_xlabel("draw" if weights is None else "particle")
    return fig


def _marginals_figure(plt, posterior):
    """Per parameter: a (weighted) histogram with the posterior mean and central 90% interval."""
    names = posterior.param_names
    flat, weights = _flat_draws(posterior)
    mean, interval = posterior.mean(), posterior.interval(0.1)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows + 0.6), squeeze=False)
    for ax, (j, name) in zip(axes.flat, enumerate(names)):
        ax.hist(flat[:, j], bins=40, weights=weights, density=True, color="C0", alpha=0.7)
        ax.axvline(mean[name], color="k", lw=1, label=f"mean {mean[name]:.3g}")
        for bound in interval.loc[name]:
            ax.axvline(bound, color="k", ls="--", lw=0.8)
        ax.set_title(name)
        ax.legend(loc="best", fontsize=7, title="90% interval dashed", title_fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return fig
