"""The assignment machinery: markers, stubs, splicing, hints, isolation, reports.

The self-verification of the built-in assignments (solution copies score
full marks, blanks score zero on exactly their tasks, planted bugs cost their
own task only) is in test_assignments_selfcheck.py.
"""
import ast
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minitorch_cnn.assignments import ASSIGNMENTS, get_assignment, markers
from minitorch_cnn.assignments.compare import Expected, compare, overlap_mask
from minitorch_cnn.assignments.grade import GradingError, grade
from minitorch_cnn.assignments.make import make
from minitorch_cnn.assignments.report import gradescope, table
from minitorch_cnn.assignments.tasks import PACKAGE, marked_files, region_index

ROOT = Path(__file__).resolve().parents[1]

SOURCE = '''\
import numpy as np


class Layer:
    def forward(self, x):
        """Doubles x, then adds one. x (N, C) -> (N, C)."""
        y = x
        ### BEGIN SOLUTION double
        z = 2 * y
        ### END SOLUTION double
        ### BEGIN SOLUTION add_one
        z = z + 1
        ### END SOLUTION add_one
        return z
'''


# ------------------------------------------------------------------ markers
def test_regions_pair_up_and_name_their_task():
    regions = markers.find_regions(SOURCE)
    assert [(r.task, r.begin, r.end) for r in regions] == [("double", 7, 9), ("add_one", 10, 12)]
    assert markers.functions_of(SOURCE, "double") == ["Layer.forward"]


@pytest.mark.parametrize("bad, message", [
    ("### BEGIN SOLUTION a\n### BEGIN SOLUTION b\n", "inside the region"),
    ("### END SOLUTION a\n", "without a BEGIN"),
    ("### BEGIN SOLUTION a\nx = 1\n", "never closed"),
    ("### BEGIN SOLUTION a\n### END SOLUTION b\n", "closes the region of a"),
    ("### BEGIN SOLUTION\n### END SOLUTION\n", "needs a task name"),
])
def test_broken_markers_are_reported_with_their_line(bad, message):
    with pytest.raises(markers.MarkerError, match=message):
        markers.find_regions(bad, path="f.py")


def test_blank_keeps_the_signature_docstring_and_the_other_tasks_code():
    out = markers.blank(SOURCE, {"double"}, lambda t, needs, body: [
        f"# needs {needs}", f"raise NotImplementedError('{t}')"])
    assert '"""Doubles x, then adds one.' in out and "def forward(self, x):" in out
    assert "z = 2 * y" not in out and "z = z + 1" in out           # only the chosen task is cut
    assert "### BEGIN TASK double" in out and "### END TASK double" in out
    assert "# needs ['z']" in out                                   # the lines after read z
    assert "SOLUTION" not in out and "### BEGIN GIVEN add_one" in out  # given code stays marked
    ns = {}
    exec(compile(out, "<blank>", "exec"), ns)                       # still a valid module
    with pytest.raises(NotImplementedError, match="double"):
        ns["Layer"]().forward(1)


def test_markers_are_comments_only_in_the_library():
    """Stripping the markers leaves the same program (the library runs unchanged)."""
    files = marked_files()
    assert files, "no SOLUTION markers found in the package"
    for rel, source in files.items():
        assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(markers.strip_markers(source))), rel


def test_every_built_in_task_has_a_marked_region():
    index = region_index()
    missing = [f"{a.name}/{t.name}" for a in ASSIGNMENTS.values() for t in a.tasks
               if t.name not in index]
    assert not missing, f"tasks without a ### BEGIN SOLUTION region: {missing}"
    for task, places in index.items():
        for rel, qualname in places:
            assert markers.function_node(ast.parse((PACKAGE / rel).read_text()), qualname), \
                (task, rel, qualname)


def test_fill_takes_the_students_region_and_the_reference_for_the_rest():
    student = SOURCE.replace("        ### BEGIN SOLUTION double\n        z = 2 * y\n",
                             "        ### BEGIN TASK double\n            z = 3 * y   # odd indent\n")
    student = student.replace("### END SOLUTION double", "### END TASK double")
    student = student.replace("z = z + 1", "z = z + 100")           # another task's region
    filled = markers.fill(SOURCE, student, "double", "ref.py", "student.py")
    ns = {}
    exec(filled.source, ns)
    assert ns["Layer"]().forward(2) == 7                            # 3 * 2 + 1: theirs, then ours
    line = filled.source.splitlines().index("        z = 3 * y   # odd indent") + 1
    assert filled.origins[line] == ("student.py", 9) and not filled.notes
    # their new imports and helpers come too (after the reference's code)
    student = "import math\n" + SOURCE.replace("z = 2 * y", "z = helper() * y") + \
        "\n\ndef helper():\n    return math.pi\n"
    ns = {}
    exec(markers.fill(SOURCE, student, "double", "ref.py", "s.py").source, ns)
    assert ns["Layer"]().forward(1) == np.pi + 1


def test_fill_falls_back_to_the_whole_function_when_the_markers_are_gone():
    student = SOURCE.replace("        ### BEGIN SOLUTION double\n", "").replace(
        "        ### END SOLUTION double\n", "").replace("z = 2 * y", "z = 5 * y")
    filled = markers.fill(SOURCE, student, "double", "ref.py", "s.py")
    ns = {}
    exec(filled.source, ns)
    assert ns["Layer"]().forward(1) == 6 and "graded your whole Layer.forward" in filled.notes[0]
    with pytest.raises(markers.MarkerError, match="no Layer.forward"):
        markers.fill(SOURCE, "x = 1\n", "double", "ref.py", "s.py")


def test_blank_arguments_leaves_calls_and_kept_keywords():
    body = ["    m = Seq(Conv(in_channels=3, out=64, dtype=dtype, **kw),\n",
            "            Pool((1, 1), stride=2), ReLU(inplace=True))\n"]
    lines, n = markers.blank_arguments(body, keep=("dtype", "inplace"))
    assert n == 4 and "".join(lines) == (
        "    m = Seq(Conv(in_channels=___, out=___, dtype=dtype, **kw),\n"
        "            Pool(___, stride=___), ReLU(inplace=True))\n")


# ------------------------------------------------------------------- hints
def _hint(ok_msg):
    ok, msg = ok_msg
    assert not ok
    return msg


def test_compare_accepts_a_right_answer_and_names_what_is_wrong():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 5, 4, 3))
    assert compare("dx", w + 1e-12, w) == (True, "")
    assert "sign is flipped" in _hint(compare("dx", -w, w))
    assert "shape (2, 3, 5, 4)" in _hint(compare("dx", w.transpose(0, 3, 1, 2), w))
    assert "NHWC vs NCHW" in _hint(compare("dx", w.transpose(0, 3, 1, 2), w))
    assert "a missing mean" in _hint(compare("dx", 8 * w, Expected(w, factors=[("a missing mean", 8)])))
    assert "NaN" in _hint(compare("dx", w * np.nan, w))
    assert "all zeros" in _hint(compare("dx", 0 * w, w))
    k = rng.standard_normal((4, 3, 3, 3))
    assert "transposed" in _hint(compare("dW", np.swapaxes(k, 2, 3), k))
    assert "flipped" in _hint(compare("dW", k[:, :, ::-1, ::-1], k))


def test_compare_locates_an_overlap_bug():
    shape = (1, 7, 7, 1)
    mask = overlap_mask(shape, 3, 3, 2, 2, 0, 0)
    want = np.random.default_rng(1).standard_normal(shape)
    got = np.where(mask, 0.0, want)                              # wrong only where windows overlap
    msg = _hint(compare("dx", got, Expected(want, masks=[("shared pixels (`+=`)", mask)])))
    assert "wrong only at shared pixels" in msg and "at " in msg


def test_structural_results_are_compared_without_showing_the_answer():
    want = ["a (1,)", "b (2,)"]
    msg = _hint(compare("keys", ["b (2,)", "a (1,)"], Expected(want, mistakes=[("swapped", ["b (2,)", "a (1,)"])])))
    assert "swapped" in msg and "entry 0 is b (2,)" in msg and "a (1,)" not in msg
    assert compare("keys", list(want), want) == (True, "")
    assert "1 entries, expected 2" in _hint(compare("keys", ["a (1,)"], want))
    msg = _hint(compare("stride", "(1, 1)", "(2, 2)"))
    assert "(1, 1)" in msg and "(2, 2)" not in msg


# ------------------------------------------------------------- isolation
@pytest.fixture(scope="module")
def variants_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("variants") / "student"
    make("variants", out)
    return out


def _write_region(copy, rel, task, body):
    """Replace the student's region of ``task`` in ``copy`` by ``body`` (dedented lines)."""
    path = copy / "minitorch_cnn" / rel
    lines = path.read_text().splitlines(keepends=True)
    r = next(r for r in markers.find_regions(path.read_text(), "TASK") if r.task == task)
    new = [r.indent + line + "\n" for line in textwrap.dedent(body).strip("\n").splitlines()]
    path.write_text("".join(lines[:r.begin + 1] + new + lines[r.end:]))


def test_a_student_copy_holds_no_solution(variants_copy):
    assert not (variants_copy / "minitorch_cnn" / "assignments" / "solutions").exists()
    text = (variants_copy / "minitorch_cnn" / "exercises" / "group_norm.py").read_text()
    assert "g_hat.sum(axis=(1, 2, 4)" not in text and "### BEGIN TASK group_norm_backward" in text
    manifest = json.loads((variants_copy / ".assignment.json").read_text())
    assert manifest["assignment"] == "variants" and len(manifest["tasks"]) == 4


def test_exceptions_loops_and_syntax_errors_cost_their_task_only(variants_copy, tmp_path):
    import shutil
    copy = tmp_path / "c"
    shutil.copytree(variants_copy, copy)
    solution = PACKAGE / "assignments" / "solutions"
    # a right answer for group_norm_forward, typed by the "student"
    ref = (solution / "group_norm.py").read_text()
    r = next(r for r in markers.find_regions(ref) if r.task == "group_norm_forward")
    _write_region(copy, "exercises/group_norm.py", "group_norm_forward",
                  "".join(r.body(ref.splitlines(keepends=True))))
    _write_region(copy, "exercises/group_norm.py", "group_norm_backward", "while True:\n    pass")
    _write_region(copy, "exercises/dilated_conv.py", "dilated_conv2d_forward", "y = (")
    _write_region(copy, "exercises/dilated_conv.py", "dilated_conv2d_backward",
                  "print('hello')\ndx = np.zeros((1, 2))")
    report = grade(copy, timeout=4)
    got = {r.name: r for r in report.results}
    fwd, loop = got["group_norm_forward"], got["group_norm_backward"]
    syntax, shape = got["dilated_conv2d_forward"], got["dilated_conv2d_backward"]
    assert fwd.score == fwd.points
    assert loop.score == 0 and "timed out after 4 s" in loop.first_failure.message
    assert syntax.score == 0 and "SyntaxError" in syntax.first_failure.message
    assert "(at exercises/dilated_conv.py:" in syntax.first_failure.message or \
        "line" in syntax.first_failure.message
    assert shape.score == 0 and "has shape (1, 2), expected (2, 7, 7, 3)" in shape.first_failure.message
    assert any("printed: hello" in n for n in shape.notes)


def test_grade_reports_and_gradescope_results(variants_copy):
    report = grade(variants_copy, key="instructor-key")
    assert report.score == 0 and report.points == 70
    results = gradescope(report)
    assert {"score", "tests"} <= set(results)
    for t in results["tests"]:
        assert set(t) == {"name", "score", "max_score", "output", "visibility"}
    hidden = [t for t in results["tests"] if t["visibility"] == "after_due_date"]
    assert len(hidden) == 4 and all("(hidden cases)" in t["name"] for t in hidden)
    assert abs(sum(t["max_score"] for t in results["tests"]) - 70) < 1e-6
    text = table(report)
    assert text.splitlines()[0].split() == ["task", "points", "score", "first", "failing",
                                            "check", "/", "hint"]
    assert "not written yet" in text


def test_hidden_cases_come_from_the_key_and_are_not_in_the_copy(variants_copy):
    t = get_assignment("variants").task("dilated_conv2d_backward")
    one, again, other = (t.all_cases(k) for k in ("k1", "k1", "k2"))
    hidden = [c for c in one if c.hidden]
    assert hidden and [c.params for c in hidden] == [c.params for c in again if c.hidden]
    assert [c.params for c in hidden] != [c.params for c in other if c.hidden]
    stored = json.loads((variants_copy / "tests/expected/dilated_conv2d_backward.json").read_text())
    assert set(stored) == {c.name for c in t.cases}


def test_cli_list_make_and_grade_exit_codes(tmp_path, capsys):
    from minitorch_cnn.cli import main
    assert main(["assignment", "list"]) == 0
    listing = capsys.readouterr().out
    for a in ASSIGNMENTS.values():
        assert f"{a.name}  ({a.points:g} points)" in listing
        for t in a.tasks:
            assert t.name in listing
    assert main(["assignment", "grade", str(tmp_path)]) == 2        # not a copy: the grader's error
    assert "grading error" in capsys.readouterr().err
    assert main(["assignment", "make", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown assignment 'nope'" in capsys.readouterr().err
    with pytest.raises(GradingError):
        grade(tmp_path)


def test_cli_grade_exits_zero_when_the_student_loses_points(variants_copy, capsys):
    from minitorch_cnn.cli import main
    assert main(["assignment", "grade", str(variants_copy), "--tasks", "group_norm_forward",
                 "--json", str(variants_copy / "gs.json")]) == 0
    out = capsys.readouterr().out
    assert "group_norm_forward" in out and "total" in out
    assert json.loads((variants_copy / "gs.json").read_text())["score"] == 0
    assert (variants_copy / "report.md").read_text().startswith("# Grade report")


# ------------------------------------------------------------- the variants
def _variant_layers(rng):
    from minitorch_cnn.assignments.solutions.dilated_conv import DilatedConv2d
    from minitorch_cnn.assignments.solutions.group_norm import GroupNorm
    conv = DilatedConv2d(3, 4, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 3),
                         dtype=np.float64, rng=rng)
    gn = GroupNorm(3, 6, dtype=np.float64)
    gn.weight.data[:] = rng.uniform(0.5, 1.5, 6)
    gn.bias.data[:] = rng.standard_normal(6)
    return conv, gn


def test_variant_references_pass_a_gradient_check():
    from minitorch_cnn.gradcheck import gradcheck
    rng = np.random.default_rng(4)
    conv, gn = _variant_layers(rng)
    for layer, shape in [(conv, (1, 7, 6, 3)), (gn, (2, 3, 2, 6))]:
        errors = gradcheck(layer, rng.standard_normal(shape))
        assert max(errors.values()) < 1e-7, errors


def test_variant_references_equal_pytorch(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    conv, gn = _variant_layers(rng)
    cases = [(conv, rng.standard_normal((2, 9, 7, 3)),
              lambda t, w, b: F.conv2d(t, w, b, stride=(2, 1), padding=(2, 1), dilation=(2, 3))),
             (gn, rng.standard_normal((2, 4, 5, 6)),
              lambda t, w, b: F.group_norm(t, 3, w, b, 1e-5))]
    for layer, x, fn in cases:
        y = layer(x)
        g = rng.standard_normal(y.shape)
        dx = layer.backward(g)
        xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
        w = torch.tensor(layer.weight.data, requires_grad=True)
        b = torch.tensor(layer.bias.data, requires_grad=True)
        yt = fn(xt, w, b)
        yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
        np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)
        np.testing.assert_allclose(layer.weight.grad, w.grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(layer.bias.grad, b.grad.numpy(), atol=1e-12)
