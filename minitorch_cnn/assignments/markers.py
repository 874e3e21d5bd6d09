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

    ``stub`` returns the lines (without indentation) of the placeholder, e.g. a
    ``raise NotImplementedError(...)``; ``needs`` are the names the rest of the
    function reads from the region. Regions of other tasks keep their code
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
            out.extend(f"{ind}{s}\n" if s else "\n" for s in stub(r.task, needs))
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
class Spliced:
    """A function's source with a student's regions in it, and where each line came from."""
    qualname: str
    source: str                 # dedented, ready to compile
    origins: list               # per line: (path, 1-based line) or None
    missing: list               # task regions the student file lacks


def splice(ref_source, student_source, task, qualname, ref_path, student_path):
    """The reference's ``qualname`` with ``task``'s regions taken from the student's file.

    The student's regions are looked up by task name (TASK markers, SOLUTION
    markers in an instructor's copy, GIVEN markers for a task not blanked), in order. If the student's file has no
    region for the task but defines ``qualname``, the student's whole function
    is used instead. Raises MarkerError when neither is there.
    """
    ref_lines = ref_source.splitlines(keepends=True)
    tree = ast.parse(ref_source)
    node = function_node(tree, qualname)
    if node is None:
        raise MarkerError(f"{ref_path}: no function {qualname}")
    start, stop = _start(node) - 1, node.end_lineno    # 0-based [start, stop)
    all_ref = [r for r in find_regions(ref_source, path=ref_path) if r.task == task]
    ref_regions = [r for r in all_ref if start <= r.begin < stop]
    if not ref_regions:
        raise LookupError(f"{ref_path}: {qualname} holds no region of task {task}")
    student_lines = student_source.splitlines(keepends=True)
    theirs = []
    for kind in ("TASK", "SOLUTION", "GIVEN"):
        theirs = [r for r in find_regions(student_source, kind, student_path) if r.task == task]
        if theirs:
            break
    # the student's regions pair with the reference's in order
    if len(theirs) != len(all_ref):
        return _whole_function(student_source, qualname, student_path, task, len(theirs))
    mine = dict(zip(all_ref, theirs))
    lines, origins, i = [], [], start
    for r in ref_regions:
        lines.extend(ref_lines[i:r.begin + 1])
        origins.extend([None] * (r.begin + 1 - i))
        s = mine[r]
        body = textwrap.dedent("".join(s.body(student_lines))).splitlines(keepends=True)
        for k, line in enumerate(body):
            lines.append(r.indent + line if line.strip() else "\n")
            origins.append((student_path, s.begin + 2 + k))
        i = r.end
    lines.extend(ref_lines[i:stop])
    origins.extend([None] * (stop - i))
    return Spliced(qualname, _dedent(lines), origins, [])


def _whole_function(student_source, qualname, student_path, task, found):
    try:
        tree = ast.parse(student_source)
    except SyntaxError as e:
        raise MarkerError(f"{student_path}:{e.lineno}: syntax error: {e.msg}") from None
    node = function_node(tree, qualname)
    if node is None:
        raise MarkerError(f"{student_path}: the task markers of {task} are gone ({found} "
                          f"found) and there is no {qualname} to grade instead")
    lines = student_source.splitlines(keepends=True)[_start(node) - 1:node.end_lineno]
    origins = [(student_path, _start(node) + k) for k in range(len(lines))]
    return Spliced(qualname, _dedent(lines), origins, [task])


def _dedent(lines):
    text = "".join(lines)
    if not text.endswith("\n"):
        text += "\n"
    return textwrap.dedent(text)


def student_extras(student_source, ref_source):
    """Top-level imports and new top-level functions/classes of the student's file, as source.

    A student may add ``import math`` or a helper function at the top of the
    file; they are compiled into the grading namespace too. Names the
    reference defines are left alone.
    """
    try:
        tree = ast.parse(student_source)
    except SyntaxError:
        return ""
    known = {n.name for n in ast.parse(ref_source).body
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    ref_imports = {ast.dump(n) for n in ast.parse(ref_source).body
                   if isinstance(n, (ast.Import, ast.ImportFrom))}
    lines = student_source.splitlines(keepends=True)
    keep = []
    for n in tree.body:
        if isinstance(n, (ast.Import, ast.ImportFrom)) and ast.dump(n) not in ref_imports \
                and not (isinstance(n, ast.ImportFrom) and n.level):
            keep.append("".join(lines[n.lineno - 1:n.end_lineno]))
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name not in known:
            keep.append("".join(lines[_start(n) - 1:n.end_lineno]))
    return "\n".join(keep)
