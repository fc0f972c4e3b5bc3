"""Learning curves: mean ± std over runs (seeds) of the smoothed episode returns, as a PNG.

A run is a directory written by ``python -m ember_rl train --out DIR`` (or by ``learn`` with
``log_path=DIR/episodes.csv``, or an :class:`~ember_rl.callbacks.EvalCallback` with
``log_path=DIR``). Each run's returns are smoothed with a trailing moving average (like SB3's
``ep_rew_mean``), interpolated onto a common grid over the steps every run covers, and
averaged across runs. Drawing needs matplotlib, the optional extra ``ember-rl[plot]``; the
computation (:func:`moving_average`, :func:`aggregate_runs`) needs NumPy only.
"""

from __future__ import annotations

import csv
import os
import re

import numpy as np

__all__ = ["aggregate_runs", "load_results", "moving_average", "plot_results"]

SOURCES = {  # source name: (file in the run directory, column plotted)
    "episodes": ("episodes.csv", "episode_return"),
    "evaluations": ("evaluations.csv", "mean_reward"),
}
X_AXES = {"steps": "env steps", "episodes": "episodes"}


def load_results(run_dir, source: str = "episodes"):
    """``(steps, values)`` arrays from a run directory's ``episodes.csv`` (training returns)
    or ``evaluations.csv`` (``source="evaluations"``: mean evaluation returns)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
    name, column = SOURCES[source]
    path = os.path.join(run_dir, name)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows")
    steps = np.array([float(row["step"]) for row in rows])
    values = np.array([float(row[column]) for row in rows])
    return steps, values


def moving_average(values, window: int):
    """Trailing mean of the last ``window`` values at each point (fewer at the start).

    >>> moving_average(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    array([1. , 1.5, 2.5, 3.5])
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    values = np.asarray(values, np.float64)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, len(values) + 1)
    begin = np.maximum(end - window, 0)
    return (sums[end] - sums[begin]) / (end - begin)


def _last_per_x(x, y):
    """Keep the last ``y`` of each distinct ``x`` (episodes of several envs end together)."""
    reverse_unique, first = np.unique(x[::-1], return_index=True)
    return reverse_unique, y[::-1][first]


def aggregate_runs(runs, x: str = "steps", smoothing: int = 100, n_points: int = 200):
    """``(grid, mean, std)`` of smoothed curves over runs, each run ``(steps, values)``.

    Each run's values are smoothed by :func:`moving_average` over ``smoothing`` points and
    placed at their step (``x="steps"``) or their 1-based index (``x="episodes"``); the
    curves are linearly interpolated onto ``n_points`` evenly spaced points between the
    largest first x and the smallest last x (the range every run covers), then averaged,
    with the population std across runs.

    >>> steps = np.array([1.0, 2.0])
    >>> runs = [(steps, np.array([0.0, 2.0])), (steps, np.array([2.0, 4.0]))]
    >>> aggregate_runs(runs, smoothing=1, n_points=3)
    (array([1. , 1.5, 2. ]), array([1., 2., 3.]), array([1., 1., 1.]))
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {sorted(X_AXES)}, got {x!r}")
    curves = []
    for steps, values in runs:
        smooth = moving_average(values, smoothing)
        xs = np.asarray(steps, np.float64) if x == "steps" else np.arange(1.0, len(values) + 1)
        curves.append(_last_per_x(xs, smooth))
    if not curves:
        raise ValueError("aggregate_runs needs at least one run")
    low, high = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    if low > high:
        raise ValueError(f"the runs share no range of {x}: they cannot be averaged")
    grid = np.linspace(low, high, n_points if high > low else 1)
    ys = np.stack([np.interp(grid, cx, cy) for cx, cy in curves])  # (runs, n_points)
    return grid, ys.mean(axis=0), ys.std(axis=0)


def _label(dirs) -> str:
    """``ppo_seed0``, ``ppo_seed1`` -> ``ppo (2 runs)``: the names' common start, less a seed."""
    names = [os.path.basename(os.path.normpath(str(d))) for d in dirs]
    if len(names) == 1:
        return names[0]
    prefix = re.sub(r"[_\-]*(seed)?\d*$", "", os.path.commonprefix(names))
    return f"{prefix or 'mean'} ({len(names)} runs)"


def _import_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib: pip install 'ember-rl[plot]' (or pip install matplotlib)"
        ) from error
    return Figure


def plot_results(
    dirs,
    out_png,
    x: str = "steps",
    smoothing: int = 100,
    source: str = "episodes",
    title: str | None = None,
    figsize=(6.4, 4.8),
    dpi: int = 100,
):
    """Draw learning curves (mean ± std over runs) into ``out_png``; returns its path.

    ``dirs`` is one run directory, a list of them (one curve averaged over them, e.g. seeds),
    or ``{label: [dirs]}`` for several curves. ``x`` is ``"steps"`` or ``"episodes"``,
    ``smoothing`` the moving-average window in episodes (evaluations for
    ``source="evaluations"``). The image is ``figsize * dpi`` pixels. Needs matplotlib
    (``pip install 'ember-rl[plot]'``).
    """
    Figure = _import_figure()
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    if not isinstance(dirs, dict):
        dirs = {_label(dirs): list(dirs)}
    fig = Figure(figsize=figsize, dpi=dpi)  # no pyplot: no global figure state, no GUI
    ax = fig.add_subplot()
    for label, group in dirs.items():
        runs = [load_results(run, source) for run in group]
        grid, mean, std = aggregate_runs(runs, x, smoothing)
        ax.plot(grid, mean, label=label)
        ax.fill_between(grid, mean - std, mean + std, alpha=0.25)
    what = "evaluation return" if source == "evaluations" else "episode return"
    ax.set_xlabel(X_AXES[x])
    ax.set_ylabel(f"{what} (moving average of {smoothing})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if title:
        ax.set_title(title)
    fig.savefig(out_png)
    return out_png
