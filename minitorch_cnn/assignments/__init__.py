"""Graded assignments made from the library's own source.

The bodies a student writes are marked in the source with nbgrader/otter
comments (``### BEGIN SOLUTION <task>`` / ``### END SOLUTION <task>``).
``minitorch-cnn assignment make NAME --out DIR`` cuts them into a student
copy; ``minitorch-cnn assignment grade DIR`` grades it task by task, each
task with the student's code for that task and the reference for everything
else. docs/teaching.md walks through it.

Built-in assignments (:data:`ASSIGNMENTS`): ``seed-project2`` (the seed
document's Project #2), ``layers`` (every layer's forward and backward) and
``variants`` (layers the library does not have).
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
        return sum(t.points for t in self.tasks)


ASSIGNMENTS = {a.name: a for a in [
    Assignment("seed-project2", "Project #2: CNN Architecture Implementation",
               "the seed document's assignment: the bottleneck block (Question 1) and "
               "ResNet50_layer4 (Question 2), with the block's backward pass (Question 3)",
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
