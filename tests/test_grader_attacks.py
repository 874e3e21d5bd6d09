"""The grader under attack, and what a student copy must not hold (docs/teaching.md, "What the
grader guarantees").

Each attack of tests/grader_attacks.py -- a patched comparison, a forged
message, a pickled payload, delegation to a shipped implementation or to an
installed library, reading the reference's source from disk or the grader's
own copy of it, an infinite loop, a memory bomb -- is planted in one task of
an instructor's copy (every task right): it scores zero on its task, the
other task keeps its marks, and nothing it sends runs in the grading process.
On the grader before issue 24, the patched comparison, the forged message,
the pickled payload (which ran its code in the grader), the delegation to the
fast path and reading the reference's source each scored full marks.

The leak test makes every built-in assignment's student copy and checks that
no structural answer and no line of a blanked task's solution appears in any
of its files, that the fast path, the Numba kernels and the fused kernels
that compute a task's answer are not there, and that the public checks still
give their hints.
"""
import os
import shutil
import subprocess
import sys

import pytest

from grader_attacks import ATTACKS, plant
from minitorch_cnn.assignments import ASSIGNMENTS, get_assignment, markers, runner
from minitorch_cnn.assignments.grade import grade
from minitorch_cnn.assignments.make import make
from minitorch_cnn.assignments.tasks import PACKAGE, marked_files, reference_results
from test_assignments_selfcheck import BUGS

LANDLOCK = runner.landlock_abi() >= 1


@pytest.fixture(scope="module")
def layers_key(tmp_path_factory):
    out = tmp_path_factory.mktemp("attacks") / "solution"
    make("layers", out, solution=True)
    return out


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_attack_scores_zero_on_its_task_and_leaves_the_rest(layers_key, tmp_path, name):
    if name.startswith("reading the") and not LANDLOCK:
        pytest.skip("needs Linux Landlock to keep the reference's files unreadable")
    assignment, task, _ = ATTACKS[name]
    copy = tmp_path / "copy"
    shutil.copytree(layers_key, copy)
    marker = tmp_path / "ran-in-the-grader"
    plant(copy, name, marker, PACKAGE)
    other = "linear_forward"
    report = grade(copy, tasks=[task, other], key="attack", timeout=6, memory_mb=1024)
    scores = {r.name: r for r in report.results}
    assert scores[task].score == 0, (name, scores[task].first_failure)
    assert scores[other].score == scores[other].points, scores[other].first_failure
    assert not marker.exists(), "the attack's code ran in the grading process"
    assert not (copy / "results.json").exists()          # the grader writes only when asked


def test_the_attacks_would_pass_with_the_reference_in_reach(layers_key, tmp_path):
    """The delegation attack is real: with the fast path importable it computes the right
    dx (so its zero above comes from the student copy's teaching path, not from a typo)."""
    import numpy as np
    from minitorch_cnn import nn
    from minitorch_cnn.fast.im2col import Im2colGemm
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 7, 6, 3))
    y = conv(x)
    g = rng.standard_normal(y.shape)
    cache = conv._cache
    alg = Im2colGemm(cache.x_shape, conv.weight.data.shape, conv.stride, conv.padding)
    dx, _ = alg.backward(g, (cache.x_shape, cache.cols, cache.w_col), conv.weight.data, True)
    np.testing.assert_allclose(dx, conv.backward(g), atol=1e-12)


# ------------------------------------------------------------------------ leaks
def _structural(value):
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


def _squeeze(line):
    return " ".join(line.split("#")[0].split())


def _solution_lines(task):
    """The distinctive lines of the reference's regions of ``task`` (whitespace squeezed):
    at least 16 characters and found nowhere else in the reference package."""
    mine, elsewhere = set(), set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        source = path.read_text()
        lines = source.splitlines(keepends=True)
        inside = set()
        if rel in marked_files():
            for r in markers.find_regions(source, path=rel):
                if r.task == task.name:
                    body = r.body(lines)
                    blanked = markers.blank_arguments(body, task.blanks)[0] \
                        if task.blanks is not None else [None] * len(body)
                    inside.update(r.begin + 1 + k for k, (a, b) in enumerate(zip(body, blanked))
                                  if a != b)        # the code left in a "blanks" task is given
        for i, line in enumerate(lines):
            (mine if i in inside else elsewhere).add(_squeeze(line))
    return {line for line in mine - elsewhere if len(line) >= 16}


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_a_student_copy_holds_no_answer(tmp_path, name):
    out = tmp_path / "student"
    make(name, out)
    texts = {p.relative_to(out).as_posix(): p.read_text(errors="replace")
             for p in out.rglob("*") if p.is_file() and p.suffix != ".npz"}
    squeezed = {k: " ".join(v.split()) for k, v in texts.items()}
    pkg = out / "minitorch_cnn"
    assert [p.name for p in (pkg / "fast").iterdir()] == ["__init__.py"]
    assert "Im2colGemm" not in texts["minitorch_cnn/fast/__init__.py"]
    assert "import numba" not in texts["minitorch_cnn/kernels/numba_kernels.py"]
    assert not list(pkg.rglob("winograd*.py")) and not (pkg / "assignments" / "solutions").exists()
    for fn in ("batchnorm_backward", "relu_backward"):
        body = texts["minitorch_cnn/kernels/reference.py"].split(f"def {fn}(")[1].split("\ndef ")[0]
        assert "raise NotImplementedError" in body and "channel_sum" not in body, fn
    for task in get_assignment(name).tasks:
        for case, results in reference_results(task).items():
            for result, exp in results.items():
                for answer in (a for a in _structural(exp.value) if len(a) >= 12):
                    hits = [f for f, t in texts.items() if answer in t]
                    assert not hits, f"{task.name} / {result}: {answer!r} is in {hits}"
        for line in _solution_lines(task):
            hits = [f for f, t in squeezed.items() if line in t]
            assert not hits, f"{task.name}: its solution's line {line!r} is in {hits}"


def test_seed_project2_blanks_are_the_seeds(tmp_path):
    out = tmp_path / "student"
    make("seed-project2", out, tasks=["q2_blanks"])
    text = (out / "minitorch_cnn" / "models" / "seed.py").read_text()
    regions = [r for r in markers.find_regions(text, "TASK") if r.task == "q2_blanks"]
    body = "".join(line for r in regions for line in r.body(text.splitlines(keepends=True))
                   if not line.lstrip().startswith("#"))
    assert body.count(markers.BLANK) == 25
    squeezed = " ".join(body.split())
    for code in ["Conv2d(in_channels=___, out_channels=___, kernel_size=___, stride=___, "
                 "padding=___, **kw)", "BatchNorm2d(___, dtype=dtype)", "ReLU(inplace=True)",
                 "MaxPool2d(kernel_size=___, stride=___, padding=___)",
                 "Linear(___, ___, **kw)", "AvgPool2d(___, stride=___)"]:
        assert code in squeezed, code
    assert squeezed.count("ResidualBlock(in_channels=___, middle_channels=___, "
                          "out_channels=___, downsample=___, **block)") == 3
    redacted = '"""(Its description is left out of a student copy: it gives a task\'s answer.)"""'
    assert text.split("class ResNet50_layer4(Module):")[1].split("\n")[1].strip() == redacted
    a = get_assignment("seed-project2")
    assert a.points == 105 and [t.name for t in a.tasks if t.extra] == ["q3_block_backward"]
    assert {t.name: t.points for t in a.tasks if not t.extra} == {
        "q1_downsample": 20, "q1_no_downsample": 20, "q2_blanks": 25, "q2_layer3": 20,
        "q2_layer4": 20}


@pytest.mark.parametrize("bug", BUGS, ids=[f"{b[0]}/{b[1]}" for b in BUGS])
def test_the_public_checks_still_give_their_hints(tmp_path, bug):
    """A planted bug in an instructor's copy: the copy's own public checks (digests and
    stored values, no answer) fail on its task with the grader's hint."""
    name, task, rel, old, new, hint = bug
    out = tmp_path / "key"
    make(name, out, solution=True)
    path = out / "minitorch_cnn" / rel
    path.write_text(path.read_text().replace(old, new, 1))
    script = ("from minitorch_cnn.assignments.public import case_names, check_case\n"
              f"for t, c in case_names():\n    if t == {task!r}:\n        try:\n"
              "            check_case(t, c)\n        except AssertionError as e:\n"
              "            print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", script], cwd=out, env=env, capture_output=True,
                         text=True, timeout=300)
    assert hint in run.stdout, run.stdout + run.stderr


def test_the_child_sees_numpy_alone(layers_key, tmp_path):
    """What the student's code can import from: the assembled copy, the standard library and
    a folder holding NumPy alone (no site-packages, no PYTHONPATH, no editable install)."""
    copy = tmp_path / "copy"
    shutil.copytree(layers_key, copy)
    path = copy / "minitorch_cnn" / "nn" / "activation.py"
    text = path.read_text()
    path.write_text(text.replace("        y = np.maximum(x, 0)\n",
                                 "        import sys\n        print('PATH', sys.path, sys.flags.isolated)\n"
                                 "        y = np.maximum(x, 0)\n", 1))
    report = grade(copy, tasks=["relu"])
    (r,) = report.results
    printed = next(n for n in r.notes if "printed" in n)
    assert "PATH" in printed and printed.rstrip().endswith("1"), printed
    assert "site-packages" not in printed and str(PACKAGE.parent) not in printed, printed
    assert r.score == r.points
