"""Every script in examples/ runs to the end with small settings and draws its pictures.

Each example is run as its own process (``sys.executable examples/x.py``) in a
temporary working directory, with ``MINITORCH_EXAMPLE_FAST=1`` (smaller
inputs, fewer steps) and ``MINITORCH_EXAMPLE_OUT`` pointing at a temporary
folder. The examples share that folder in numeric order, so 06 finds the
checkpoint that 04 trained, as it does for a student who runs them in turn.
"""
import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
HAS_TORCH = importlib.util.find_spec("torch") is not None

# the pictures (and files) each example must leave behind
OUTPUTS = {
    "01_gradient_check.py": ["gradcheck_step_size.png"],
    "02_im2col_step_by_step.py": ["im2col.png", "im2col_stride2_pad1.png"],
    "03_residual_block_by_hand.py": ["residual_gradient_flow.png"],
    "04_train_small_resnet.py": ["shapes_samples.png", "training_curves.png",
                                 "confusion_matrix.png", "small_resnet.npz"],
    "05_load_pytorch_weights.py": (["pytorch_vs_minitorch_logits.png"] if HAS_TORCH else [])
    + ["seed_model_ours.npz"],
    "06_visualise_trained_network.py": ["filters.png", "feature_maps_stem.png",
                                        "feature_maps_layer3.png", "confusion_trained.png",
                                        "test_samples.png"],
    "07_write_your_own_layer.py": ["own_layer.png"],
}


def run_example(script, workdir, out, extra_env=None, timeout=300):
    env = dict(os.environ)
    env.update({"MINITORCH_EXAMPLE_FAST": "1", "MINITORCH_EXAMPLE_OUT": str(out),
                "MPLBACKEND": "Agg"})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra_env or {})
    return subprocess.run([sys.executable, str(script)], cwd=workdir, env=env, text=True,
                          capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """(working dir, output dir) shared by the examples of this module, in order."""
    base = tmp_path_factory.mktemp("examples")
    return base, base / "out"


def test_every_example_is_listed():
    assert [e.name for e in EXAMPLES] == sorted(OUTPUTS)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_percent_notebook(script):
    source = script.read_text(encoding="utf-8")
    ast.parse(source)
    cells = [line for line in source.splitlines() if line.startswith("# %%")]
    assert len(cells) >= 4, "cells are marked with '# %%' lines"
    assert "# %% [markdown]" in source
    assert "MINITORCH_EXAMPLE_FAST" in source and "MINITORCH_EXAMPLE_OUT" in source


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_draws(script, shared):
    workdir, out = shared
    result = run_example(script, workdir, out)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for name in OUTPUTS[script.name]:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, f"{script.name} did not write {name}"
        if name.endswith(".png"):
            h, w = imread(path).shape[:2]
            assert h >= 100 and w >= 100, f"{name} is {w}x{h} pixels"


@pytest.mark.slow
def test_visualisation_example_trains_its_own_model_without_a_checkpoint(tmp_path):
    out = tmp_path / "out"
    script = ROOT / "examples" / "06_visualise_trained_network.py"
    result = run_example(script, tmp_path, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no checkpoint" in result.stdout
    assert (out / "filters.png").stat().st_size > 0
