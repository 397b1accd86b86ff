"""The benchmark scripts run and print their tables (tiny sizes: what is checked is that the
scripts work, not how fast anything is; the README's numbers come from full runs)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"

CASES = {
    "step_speed.py": (
        ["--layouts", "3000x3", "--only", "Adam,RMSProp", "--repeats", "2", "--warm-cache"],
        ["## cpu: summary (ms per step)", "| Adam | 3,000 values in 3 tensors |", "| RMSProp |"],
    ),
    "sweep_speed.py": (  # jax may be missing: its column is then skipped, with a note
        [
            "--quick",
            "--size",
            "playground",
            "--engines",
            "eager,loop",
            "--rounds",
            "1",
            "--sample",
            "2",
        ],  # fmt: skip
        ["| playground: 55 configurations × 50 steps |", "ratio (playground): the loop takes"],
    ),
    "train_speed.py": (
        ["--epochs", "1", "--repeats", "1", "--layers", "64,16,10", "--zero-grad", "zeros"],
        ["MLP 64-16-10 ReLU (1,210 parameters)", "zero_grad(set_to_none=False)", "ratio"],
    ),
}


@pytest.mark.parametrize("script", CASES)
def test_the_benchmark_runs_and_prints_its_table(script):
    args, expected = CASES[script]
    r = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    for text in expected:
        assert text in r.stdout, r.stdout[-2000:]
    assert "Traceback" not in r.stderr
