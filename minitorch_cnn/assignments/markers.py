"""Solution markers in the source: find the regions, cut the blanks, splice a student's code back.

A region is the lines between two comment lines (nbgrader/otter-compatible,
one task name per region)::

    ### BEGIN SOLUTION conv2d_backward
    ...the lines a student writes...
    ### END SOLUTION conv2d_backward

They are comments: the library imports and runs unchanged. In a student copy
each blanked region becomes a *task region*, the student's lines between::

    ### BEGIN TASK conv2d_backward
    ...
    ### END TASK conv2d_backward

and the regions of tasks not blanked become ``### BEGIN GIVEN <task>`` ...
``### END GIVEN <task>`` around the reference's code, so that the grader can
still grade them one by one (``grade --all``).

Everything here works on source text and :mod:`ast`; nothing is imported.
"""
import ast
import re
import textwrap
from dataclasses import dataclass

_MARK = re.compile(r"^(?P<indent>[ \t]*)### (?P<kind>BEGIN|END) (?P<what>SOLUTION|TASK|GIVEN)"
                   r"(?: (?P<task>[A-Za-z_][\w-]*))?\s*(?:--.*)?$")


class MarkerError(ValueError):
    """Markers that do not pair up, or a task region that cannot be found."""


@dataclass(frozen=True)
class Region:
    """Lines ``begin + 1 .. end - 1`` (0-based indices into the file's lines) form task ``task``."""
    task: str
    begin: int          # index of the BEGIN line
    end: int            # index of the END line
    indent: str
    kind: str           # "SOLUTION" or "TASK"

    def body(self, lines):
        return lines[self.begin + 1:self.end]


def find_regions(source, kind="SOLUTION", path="<source>"):
    """Every region of ``kind`` in ``source``, in file order (MarkerError if unpaired)."""
    regions, open_ = [], None
    for i, line in enumerate(source.splitlines()):
        m = _MARK.match(line)
        if not m or m["what"] != kind:
            continue
        if m["kind"] == "BEGIN":
            if open_ is not None:
                raise MarkerError(f"{path}:{i + 1}: BEGIN {kind} inside the region opened at "
                                  f"line {open_[0] + 1}")
            if not m["task"]:
                raise MarkerError(f"{path}:{i + 1}: BEGIN {kind} needs a task name")
            open_ = (i, m["task"], m["indent"])
        else:
            if open_ is None:
                raise MarkerError(f"{path}:{i + 1}: END {kind} without a BEGIN")
            if m["task"] and m["task"] != open_[1]:
                raise MarkerError(f"{path}:{i + 1}: END {kind} {m['task']} closes the region "
                                  f"of {open_[1]} (line {open_[0] + 1})")
            regions.append(Region(open_[1], open_[0], i, open_[2], kind))
            open_ = None
    if open_ is not None:
        raise MarkerError(f"{path}:{open_[0] + 1}: BEGIN {kind} {open_[1]} is never closed")
    return regions


def tasks_in(source, kind="SOLUTION"):
    """Task names marked in ``source``, in order of first appearance."""
    return list(dict.fromkeys(r.task for r in find_regions(source, kind)))


def strip_markers(source):
    """The source without its SOLUTION marker lines (what the library runs is the same)."""
    lines = source.splitlines(keepends=True)
    drop = {i for r in find_regions(source) for i in (r.begin, r.end)}
    return "".join(line for i, line in enumerate(lines) if i not in drop)


# ------------------------------------------------------------------ functions
def enclosing_function(tree, lineno):
    """(qualname, node) of the outermost def holding 1-based ``lineno``: a module-level
    function or a method of a module-level class (nested defs stay inside it)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.lineno <= lineno <= node.end_lineno:
                return node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        item.lineno <= lineno <= item.end_lineno:
                    return f"{node.name}.{item.name}", item
    return None, None


def _start(node):
    """First line (1-based) of a def, decorators included."""
    return min([node.lineno] + [d.lineno for d in node.decorator_list])


def functions_of(source, task, path="<source>", kind="SOLUTION"):
    """Qualified names of the functions holding ``task``'s regions, in file order."""
    tree = ast.parse(source)
    names = []
    for r in find_regions(source, kind, path):
        if r.task != task:
            continue
        name, _ = enclosing_function(tree, r.begin + 1)
        if name is None:
            raise MarkerError(f"{path}:{r.begin + 1}: region {task} is not inside a function "
                              "or method")
        if name not in names:
            names.append(name)
    return names


def function_node(tree, qualname):
    parts = qualname.split(".")
    body = tree.body
    node = None
    for i, part in enumerate(parts):
        want = ast.ClassDef if i < len(parts) - 1 else (ast.FunctionDef, ast.AsyncFunctionDef)
        node = next((n for n in body if isinstance(n, want) and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return node


# ---------------------------------------------------------------- the blanks
def blank(source, tasks, stub, path="<source>"):
    """Replace the SOLUTION regions of ``tasks`` by TASK regions holding ``stub(task, needs)``.

    ``stub(task, needs, body)`` returns the lines (without indentation) of the
    placeholder, e.g. a ``raise NotImplementedError(...)``; ``needs`` are the
    names the rest of the function reads from the region, ``body`` its lines. Regions of other tasks keep their code
    between GIVEN markers. Returns the new source.
    """
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    regions = find_regions(source, path=path)
    out, i = [], 0
    for r in regions:
        out.extend(lines[i:r.begin])
        if r.task in tasks:
            _, node = enclosing_function(tree, r.begin + 1)
            needs = []
            if node is not None:
                fsrc = "".join(lines[_start(node) - 1:node.end_lineno])
                needs = _needs(fsrc, lines, r, _start(node))
            ind = r.indent
            out.append(f"{ind}### BEGIN TASK {r.task}\n")
            out.extend(f"{ind}{s}\n" if s else "\n" for s in stub(r.task, needs, r.body(lines)))
            out.append(f"{ind}### END TASK {r.task}\n")
        else:
            out.append(f"{r.indent}### BEGIN GIVEN {r.task}\n")
            out.extend(r.body(lines))
            out.append(f"{r.indent}### END GIVEN {r.task}\n")
        i = r.end + 1
    out.extend(lines[i:])
    return "".join(out)


def _needs(function_source, lines, region, start):
    """Names assigned in ``region`` and read later in the function (1-based ``start``)."""
    try:
        func = ast.parse(textwrap.dedent(function_source)).body[0]
        body = ast.parse(textwrap.dedent("".join(region.body(lines))) or "pass\n")
    except (SyntaxError, IndexError):
        return []
    stored = {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    end_line = region.end + 1 - start + 1          # 1-based line of END within the function text
    loaded = {n.id for n in ast.walk(func)
              if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.lineno > end_line}
    return sorted(stored & loaded)


# ------------------------------------------------------------------ splicing
@dataclass
class Filled:
    """A reference file with a student's code for one task in it, and where each line came from."""
    source: str
    origins: dict               # 1-based line -> (student path, 1-based line)
    notes: list                 # e.g. "the task markers are gone: graded your whole ..."


def fill(ref_source, student_source, task, ref_path, student_path):
    """The reference file with ``task``'s regions taken from the student's file.

    The student's regions are looked up by task name (TASK markers, SOLUTION
    markers in an instructor's copy, GIVEN markers for a task not blanked) and
    pair with the reference's in order; the other tasks' regions stay the
    reference's. If the student's markers are gone, each function holding the
    task is the student's whole function instead (MarkerError if there is
    none). The student's new top-level imports and functions come at the end.
    """
    ref_lines = ref_source.splitlines(keepends=True)
    ours = [r for r in find_regions(ref_source, path=ref_path) if r.task == task]
    theirs = []
    for kind in ("TASK", "SOLUTION", "GIVEN"):
        theirs = [r for r in find_regions(student_source, kind, student_path) if r.task == task]
        if theirs:
            break
    student_lines = student_source.splitlines(keepends=True)
    pieces, notes = [], []               # (first ref line, end ref line, [(text, origin)])
    if len(theirs) == len(ours):
        for r, s in zip(ours, theirs):
            body = textwrap.dedent("".join(s.body(student_lines))).splitlines(keepends=True)
            pieces.append((r.begin + 1, r.end, [
                (r.indent + line if line.strip() else "\n", (student_path, s.begin + 2 + k))
                for k, line in enumerate(body)]))
    else:
        tree = ast.parse(ref_source)
        try:
            their_tree = ast.parse(student_source)
        except SyntaxError as e:
            raise MarkerError(f"{student_path}:{e.lineno}: syntax error: {e.msg}") from None
        for q in functions_of(ref_source, task, ref_path):
            node, mine = function_node(tree, q), function_node(their_tree, q)
            if mine is None:
                raise MarkerError(f"{student_path}: the task markers of {task} are gone "
                                  f"({len(theirs)} found) and there is no {q} to grade instead")
            indent = re.match(r"[ \t]*", ref_lines[_start(node) - 1]).group(0)
            body = textwrap.dedent("".join(student_lines[_start(mine) - 1:mine.end_lineno]))
            pieces.append((_start(node) - 1, node.end_lineno, [
                (indent + line if line.strip() else "\n", (student_path, _start(mine) + k))
                for k, line in enumerate(body.splitlines(keepends=True))]))
            notes.append(f"the task markers in {student_path} are gone: graded your whole {q}")
    out, origins, i = [], {}, 0
    for begin, end, lines in sorted(pieces):
        out.extend(ref_lines[i:begin])
        for text, origin in lines:
            out.append(text if text.endswith("\n") else text + "\n")
            origins[len(out)] = origin
        i = end
    out.extend(ref_lines[i:])
    for first, chunk in student_extras(student_source, ref_source):
        out.append("\n")
        for k, line in enumerate(chunk.splitlines(keepends=True)):
            out.append(line if line.endswith("\n") else line + "\n")
            origins[len(out)] = (student_path, first + k)
    return Filled("".join(out), origins, notes)


def student_extras(student_source, ref_source):
    """[(first line, source)] of the student's new top-level imports, functions and classes.

    A student may add ``import math`` or a helper function at the top of the
    file; they are kept (after the reference's code). Names the reference
    defines are left alone.
    """
    try:
        tree = ast.parse(student_source)
    except SyntaxError:
        return []
    known = {n.name for n in ast.parse(ref_source).body
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    ref_imports = {ast.dump(n) for n in ast.parse(ref_source).body
                   if isinstance(n, (ast.Import, ast.ImportFrom))}
    lines = student_source.splitlines(keepends=True)
    keep = []
    for n in tree.body:
        if isinstance(n, (ast.Import, ast.ImportFrom)) and ast.dump(n) not in ref_imports \
                and not (isinstance(n, ast.ImportFrom) and n.level):
            keep.append((n.lineno, "".join(lines[n.lineno - 1:n.end_lineno])))
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                n.name not in known:
            keep.append((_start(n), "".join(lines[_start(n) - 1:n.end_lineno])))
    return keep


# ------------------------------------------------------ blanks inside given code
BLANK = "___"


def blank_arguments(body, keep=()):
    """``body`` (a region's lines) with every call argument that is not itself a call
    replaced by ``___``, except keywords in ``keep`` and ``**`` arguments; returns
    (lines, number of blanks). The seed's "fill in the blanks" questions."""
    text = textwrap.dedent("".join(body))
    indent = body[0][:len(body[0]) - len(body[0].lstrip())] if body else ""
    spots = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call):
            continue
        values = [a for a in node.args if not isinstance(a, ast.Starred)] + \
            [k.value for k in node.keywords if k.arg is not None and k.arg not in keep]
        spots.extend(v for v in values if not isinstance(v, ast.Call))
    lines = text.splitlines(keepends=True)
    for v in sorted(spots, key=lambda v: (v.lineno, v.col_offset), reverse=True):
        if v.lineno != v.end_lineno:
            raise MarkerError(f"a blank spans lines {v.lineno}-{v.end_lineno}")
        line = lines[v.lineno - 1]
        lines[v.lineno - 1] = line[:v.col_offset] + BLANK + line[v.end_col_offset:]
    return [indent + line if line.strip() else line for line in lines], len(spots)
