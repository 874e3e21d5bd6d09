"""Self-verification of every built-in assignment (the heart of the classroom issue).

For each assignment: the instructor's copy scores full marks; a student copy
with every other task blanked imports, passes its public tests on the parts
left in place (those whose checks do not run through a blanked task's code),
fails them on the blanked tasks, and grades to zero on exactly those and full
marks elsewhere (graded in isolation, nothing else depends on the blanks); and each planted classic bug costs
points on its own task only, with the matching hint.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from minitorch_cnn.assignments import ASSIGNMENTS, get_assignment, markers
from minitorch_cnn.assignments.grade import grade
from minitorch_cnn.assignments.make import make

NAMES = sorted(ASSIGNMENTS)

# assignment, task, file in the copy's package, text in the task's region, the bug, hint words
BUGS = [
    ("layers", "maxpool2d_backward", "kernels/reference.py",
     "np.add.at(dx, (batch, argmax, chan), grad_out)", "dx[batch, argmax, chan] = grad_out",
     "(`+=`, `np.add.at`)"),
    ("layers", "batchnorm2d_forward", "nn/normalization.py",
     "f * var * (m / (m - 1))", "f * var", "unbiased estimate"),
    ("layers", "conv2d_backward", "nn/conv.py",
     "return kernels.col2im(dcols", "return -kernels.col2im(dcols", "the sign is flipped"),
    ("seed-project2", "q3_block_backward", "models/blocks.py",
     "grad_main += grad_short", "pass", "the shortcut's gradient is missing"),
    ("seed-project2", "q1_downsample", "models/blocks.py",
     "conv1x1(in_channels, middle_channels, 2, 0, **kw),\n"
     "                conv3x3(middle_channels, middle_channels, 1, 1, **kw),\n"
     "                conv1x1(middle_channels, out_channels, 1, 0, **kw))",
     "conv1x1(in_channels, middle_channels, 1, 0, **kw),\n"
     "                conv3x3(middle_channels, middle_channels, 1, 1, **kw),\n"
     "                conv1x1(middle_channels, out_channels, 2, 0, **kw))",
     "the stride is on the wrong 1x1 convolution"),
    ("variants", "group_norm_backward", "exercises/group_norm.py",
     "dx = inv_std / m * (", "dx = inv_std * (", "a missing 1/M"),
    ("variants", "dilated_conv2d_backward", "exercises/dilated_conv.py",
     "dx_pad[:, rows, cols, :] += g @", "dx_pad[:, rows, cols, :] = g @", "(`+=`); with `=`"),
]


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """{(assignment, "solution" | "blank"): folder}, made on first use."""
    made = {}

    def get(name, kind):
        if (name, kind) not in made:
            out = tmp_path_factory.mktemp(name) / kind
            tasks = [t.name for t in get_assignment(name).tasks]
            make(name, out, solution=kind == "solution", tasks=None if kind == "solution"
                 else tasks[1::2])
            made[name, kind] = out
        return made[name, kind]
    return get


def _scores(report):
    return {r.name: (r.score, r.points) for r in report.results}


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_copy_scores_full_marks(copies, name):
    report = grade(copies(name, "solution"), key="ci")
    for r in report.results:
        assert r.score == r.points, (r.name, r.first_failure)


@pytest.mark.parametrize("name", NAMES)
def test_a_blank_copy_scores_zero_on_exactly_its_blanks(copies, name):
    folder = copies(name, "blank")
    blanked = {t.name for t in get_assignment(name).tasks[1::2]}
    report = grade(folder, all_tasks=True)
    for r in report.results:
        if r.name in blanked:
            assert r.score == 0 and "not written yet" in r.first_failure.message, r.name
        else:
            assert r.score == r.points, (r.name, r.first_failure)


@pytest.mark.parametrize("name", NAMES)
def test_a_fully_blank_copy_scores_zero(tmp_path, name):
    make(name, tmp_path / "blank")
    report = grade(tmp_path / "blank", key="ci")
    assert report.score == 0 and all(r.score == 0 for r in report.results)
    assert report.points == get_assignment(name).points


def test_a_wrong_blank_costs_exactly_one_point(copies, tmp_path):
    folder = tmp_path / "one-wrong-blank"
    shutil.copytree(copies("seed-project2", "solution"), folder)
    path = folder / "minitorch_cnn" / "models" / "seed.py"
    path.write_text(path.read_text().replace("kernel_size=7", "kernel_size=5", 1))
    report = grade(folder, tasks=["q2_blanks"])
    (r,) = report.results
    assert r.score == r.points - 1 == 24
    assert "layer1.0 Conv2d kernel_size is (5, 5)" in r.first_failure.message
    assert "(7, 7)" not in r.first_failure.message


@pytest.mark.parametrize("name", NAMES)
def test_a_blank_copy_runs_and_its_public_tests_fail_on_exactly_the_blanks(copies, name):
    folder = copies(name, "blank")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                          "tests"], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=300)
    lines = run.stdout.splitlines()
    failed = {m.group(1) for m in (re.match(r"FAILED \S+\[([^-\]]+)-", s) for s in lines) if m}
    passed = {m.group(1) for m in (re.match(r"PASSED \S+\[([^-\]]+)-", s) for s in lines) if m}
    a = get_assignment(name)
    blanked = {t.name for t in a.tasks[1::2]}
    # a task whose checks run through a blanked task's code cannot pass in the copy
    broken = set(blanked)
    while True:
        more = {t.name for t in a.tasks if set(t.uses) & broken} - broken
        if not more:
            break
        broken |= more
    working = {t.name for t in a.tasks} - broken
    assert blanked <= failed <= broken, run.stdout[-3000:]
    assert working and working <= passed and not working & failed, run.stdout[-3000:]


@pytest.mark.parametrize("bug", BUGS, ids=[f"{b[0]}/{b[1]}" for b in BUGS])
def test_a_planted_bug_costs_its_own_task_only_with_the_hint(copies, tmp_path, bug):
    name, task, rel, old, new, hint = bug
    folder = tmp_path / "buggy"
    shutil.copytree(copies(name, "solution"), folder)
    path = folder / "minitorch_cnn" / rel
    source = path.read_text()
    line = source[:source.index(old)].count("\n")
    assert any(r.begin < line < r.end for r in markers.find_regions(source) if r.task == task), \
        f"the bug is not inside a region of {task}"
    path.write_text(source.replace(old, new, 1))
    report = grade(folder, all_tasks=True)
    for r in report.results:
        if r.name == task:
            assert 0 <= r.score < r.points
            assert hint in r.first_failure.message, r.first_failure.message
        else:
            assert r.score == r.points, (r.name, r.first_failure)
