"""Graded assignments made from the library's own source.

The bodies a student writes are marked in the source with nbgrader/otter
comments (``### BEGIN SOLUTION <task>`` / ``### END SOLUTION <task>``).
``minitorch-cnn assignment make NAME --out DIR`` cuts them into a student
copy; ``minitorch-cnn assignment grade DIR`` grades it task by task, each
task with the student's code for that task and the reference for everything
else, in a confined process. docs/teaching.md walks through it.

The map of this package:

* the engine -- ``markers.py`` (find regions, blank them, put a student's code
  into the reference's file: source text and ``ast`` only), ``tasks.py``
  (:class:`~.tasks.Task`, :class:`~.tasks.Case`; the reference's results, in one
  place), ``compare.py`` (a result against the reference's, with hints;
  structural values as salted digests), ``package.py`` (the teaching path a
  copy holds and each task is graded in), ``runner.py`` (the grading child:
  confined, runs the cases, writes only outputs), ``public.py`` (the public
  checks stored in a copy and run there);
* the commands -- ``cli.py`` (``assignment list|make|grade|notebooks``),
  ``make.py``, ``grade.py`` (the parent: assembles, runs the children,
  compares, scores), ``report.py`` (table, report.md, results.json),
  ``notebook.py`` (percent scripts to notebooks);
* the content -- ``layers.py``, ``seed_project2.py``, ``variants.py`` (each a
  list ``TASKS``), ``common.py`` (their shared inputs and helpers) and
  ``solutions/`` (the variants' references, never copied).

To add a task: mark its lines in the source (``### BEGIN SOLUTION name`` /
``### END SOLUTION name``, inside a function) and add a :class:`~.tasks.Task`
to a content module's ``TASKS``: the file its checks import, a check function
``run(mod, **params)`` returning ``{result: value}`` computed through ``mod``,
its public cases, and optionally ``explain`` (the mistakes that explain a
wrong answer, each with the value it gives), ``hidden(rng)`` (the ``--key``
cases), ``uses`` (the tasks its checks run through), ``blanks``, ``redact``
and ``extra``. To add an assignment: a content module with its ``TASKS`` and
an :class:`Assignment` in :data:`ASSIGNMENTS` below. The self-check, leak and
attack tests (tests/test_assignments_selfcheck.py, test_grader_attacks.py)
pick both up.
"""
from dataclasses import dataclass

from . import layers, seed_project2, variants


@dataclass
class Assignment:
    name: str
    title: str
    summary: str
    tasks: list

    def task(self, name):
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"assignment {self.name} has no task {name!r}; its tasks: "
                       + ", ".join(t.name for t in self.tasks))

    @property
    def points(self):
        """The total; ``extra`` tasks are outside it."""
        return sum(t.points for t in self.tasks if not t.extra)


ASSIGNMENTS = {a.name: a for a in [
    Assignment("seed-project2", "Project #2: CNN Architecture Implementation",
               "the seed document's assignment: the bottleneck block (Question 1) and "
               "ResNet50_layer4 (Question 2), and, as an extra outside its 105 points, the "
               "block's backward pass",
               seed_project2.TASKS),
    Assignment("layers", "Layers and their backward passes",
               "Linear, ReLU, cross-entropy, im2col/col2im, Conv2d, pooling, BatchNorm2d and "
               "SGD with momentum, in the order the docs teach them", layers.TASKS),
    Assignment("variants", "Variants: layers the library does not have",
               "a dilated convolution and group normalisation; their answers are not in the "
               "library's source", variants.TASKS),
]}


def get_assignment(name):
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise KeyError(f"unknown assignment {name!r}; built in: {', '.join(ASSIGNMENTS)}") from None


__all__ = ["ASSIGNMENTS", "Assignment", "get_assignment"]
