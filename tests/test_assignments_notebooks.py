"""Notebooks from the percent scripts: the converter agrees with jupytext, and the
generated notebooks run (nbclient, the engine nbmake uses) -- an assignment's
walkthrough on the instructor's copy and two examples, a few seconds each.

jupytext, nbclient, nbformat and ipykernel come with ``pip install -e .[test]``
(CI installs them); without them the tests that need them are skipped.
"""
import json
import os
from pathlib import Path

import pytest

from minitorch_cnn.assignments import notebook
from minitorch_cnn.assignments.make import make

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
RUN = ["02_im2col_step_by_step.py"]   # a few seconds when FAST (tests/test_examples.py runs them all)


def test_percent_scripts_become_notebooks_with_a_colab_line(tmp_path):
    path = notebook.convert(EXAMPLES[0], tmp_path, repo="owner/repo")
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    first = "".join(nb["cells"][0]["source"])
    assert "colab.research.google.com/github/owner/repo/blob/main/notebooks/" in first
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3
    assert all(c["outputs"] == [] for c in nb["cells"] if c["cell_type"] == "code")
    text = EXAMPLES[0].read_text()
    assert text.count("\n# %%") == len(nb["cells"]) - 1          # one cell per marker, + Colab


def test_cells_and_metadata_match_jupytext():
    jupytext = pytest.importorskip("jupytext", reason="pip install -e .[test]")
    script = ("# %% [markdown]\n# # Title\n#\n# text\n\n"
              '# %% nbgrader={"grade": true, "grade_id": "t", "points": 5}\ncheck("t")\n\n'
              "# %%\nx = 1\n")
    for text in [script] + [p.read_text() for p in EXAMPLES]:
        ours = notebook.parse_cells(text)
        theirs = jupytext.reads(text, fmt="py:percent").cells
        assert [(k, s) for k, s, _ in ours] == [(c.cell_type, c.source) for c in theirs]
    nb = jupytext.reads(script, fmt="py:percent")
    assert notebook.parse_cells(script)[1][2] == {"nbgrader": nb.cells[1].metadata["nbgrader"]}


def _execute(path, cwd, env=None):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e .[test]")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e .[test]")
    pytest.importorskip("ipykernel", reason="pip install -e .[test]")
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def test_an_assignment_walkthrough_runs_and_carries_nbgrader_metadata(tmp_path):
    out = tmp_path / "variants"
    make("variants", out, solution=True)
    nb = json.loads((out / "walkthrough.ipynb").read_text())
    graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if "nbgrader" in c["metadata"]]
    assert [g["grade_id"] for g in graded] == ["dilated_conv2d_forward", "dilated_conv2d_backward",
                                              "group_norm_forward", "group_norm_backward"]
    assert all(g["grade"] and g["points"] > 0 and g["schema_version"] == 3 for g in graded)
    ran = _execute(out / "walkthrough.ipynb", out)
    printed = "".join(o.get("text", "") for c in ran.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert printed.count("public cases pass") == 4


@pytest.mark.parametrize("name", RUN)
def test_example_notebooks_run(tmp_path, name):
    path = notebook.convert(ROOT / "examples" / name, tmp_path / "notebooks")
    env = {"MINITORCH_EXAMPLE_FAST": "1", "MINITORCH_EXAMPLE_OUT": str(tmp_path / "out"),
           "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    _execute(path, tmp_path, env)
    assert any((tmp_path / "out").glob("*.png"))
