"""Learning curves: smoothing and aggregation against hand-computed NumPy, the PNG, the CLI."""

import csv
import json
import struct
import sys

import numpy as np
import pytest

from ember_rl.__main__ import main
from ember_rl.plotting import aggregate_runs, load_results, moving_average, plot_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _write_run(directory, steps, returns):
    directory.mkdir(parents=True)
    with open(directory / "episodes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "episode_return", "episode_length"])
        writer.writerows([s, r, 10] for s, r in zip(steps, returns))
    return directory


def test_moving_average_matches_a_loop():
    values = np.array([3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0])
    for window in (1, 2, 3, 10):
        expected = [values[max(0, i - window + 1) : i + 1].mean() for i in range(len(values))]
        np.testing.assert_allclose(moving_average(values, window), expected)
    with pytest.raises(ValueError):
        moving_average(values, 0)


def test_aggregate_runs_matches_hand_computed_reference():
    run_a = (np.array([10.0, 20.0, 20.0, 40.0]), np.array([0.0, 2.0, 4.0, 6.0]))
    run_b = (np.array([0.0, 30.0, 50.0]), np.array([1.0, 3.0, 5.0]))
    grid, mean, std = aggregate_runs([run_a, run_b], smoothing=2, n_points=4)
    # smoothed (window 2): a = [0, 1, 3, 5] at steps 10, 20, 20, 40 -> last per step: 20 -> 3
    #                      b = [1, 2, 4] at steps 0, 30, 50
    # common range [10, 40]: grid 10, 20, 30, 40
    a = np.array([0.0, 3.0, 4.0, 5.0])  # 30 lies halfway between 20 (3) and 40 (5)
    b = np.array([1 + 10 / 30, 1 + 20 / 30, 2.0, 2 + 10 / 20 * 2])
    np.testing.assert_allclose(grid, [10, 20, 30, 40])
    np.testing.assert_allclose(mean, (a + b) / 2)
    np.testing.assert_allclose(std, np.abs(a - b) / 2)
    grid, mean, std = aggregate_runs([run_a, run_b], x="episodes", smoothing=1, n_points=3)
    np.testing.assert_allclose(grid, [1, 2, 3])  # run b has 3 episodes
    np.testing.assert_allclose(mean, [0.5, 2.5, 4.5])
    with pytest.raises(ValueError):
        aggregate_runs([(np.array([0.0, 1.0]), np.ones(2)), (np.array([2.0, 3.0]), np.ones(2))])


def test_plot_results_writes_a_png_of_the_requested_size(tmp_path):
    rng = np.random.default_rng(0)
    runs = [
        _write_run(tmp_path / f"seed{s}", np.arange(1, 41) * 25, rng.normal(size=40).cumsum())
        for s in range(3)
    ]
    steps, returns = load_results(runs[0])
    assert steps[0] == 25 and len(returns) == 40
    out = plot_results(runs, tmp_path / "curve.png", smoothing=5, figsize=(5, 3), dpi=80)
    assert _png_size(out) == (400, 240)
    out = plot_results({"a": runs[:1], "b": runs[1:]}, tmp_path / "two.png", x="episodes")
    assert _png_size(out) == (640, 480)


def test_plot_command_line(tmp_path, capsys):
    run = _write_run(tmp_path / "run", [10, 20, 30], [1.0, 2.0, 3.0])
    out = tmp_path / "curve.png"
    assert main(["plot", str(run), str(run), "--out", str(out), "--smoothing", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "runs": 2}
    assert _png_size(out) == (640, 480)


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    run = _write_run(tmp_path / "run", [10, 20], [1.0, 2.0])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"ember-rl\[plot\]"):
        plot_results([run], tmp_path / "curve.png")
