"""Check, and refresh, the links from docs/ to lines of the source code.

The pages link to source lines with ordinary relative Markdown links, e.g.

    [`Conv2d.backward`](../../minitorch_cnn/nn/conv.py#L55-L64)
    [`dw_col = cols.T @ g`](../../minitorch_cnn/nn/conv.py#L59)

Line numbers go stale when the code moves, so the text of such a link says
what the lines are:

* a dotted name in backticks (`Conv2d.backward`, `im2col`, `MODELS`) names a
  function, class or module-level variable: its definition must start inside
  the linked range; ``relink`` sets the range to the whole definition;
* any other code in backticks (`dw_col = cols.T @ g`) is a snippet that must
  appear inside the linked range; ``relink`` moves the range (keeping its
  length) to where the snippet is now;
* plain text only needs the file and the line range to exist.

A link on a line that also holds ``<!-- pending -->`` may point at a path that
does not exist yet (a results folder still to be committed, say); everything
else about it is checked as usual once the path exists.

Links to .md pages may carry a ``#heading`` anchor, checked against the
page's headings (GitHub's slugs).

    python docs/tools/relink.py            # rewrite stale ranges in docs/**/*.md, list what changed
    python docs/tools/relink.py --check    # only report problems; exit 1 if any

``tests/test_docs.py`` runs the same checks.
"""
import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent

LINK = re.compile(r"\[((?:`[^`\n]*`|[^\]`\n])+)\]\(([^)\s]+)\)")  # ] may appear inside `code`
LINES = re.compile(r"^L(\d+)(?:-L(\d+))?$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\(\))?$")
CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)\([^()]*\)$")      # Normalize(mean, std)
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass
class Link:
    page: Path          # the .md file
    line: int           # 1-based line of the page
    text: str           # the link text
    target: str         # as written
    start: int          # offset of the target in the page text
    end: int
    pending: bool = False  # the line is marked <!-- pending -->: the path may not exist yet

    @property
    def path(self):
        return (self.page.parent / self.target.split("#", 1)[0]).resolve()

    @property
    def anchor(self):
        return self.target.split("#", 1)[1] if "#" in self.target else None

    @property
    def line_range(self):
        """(first, last) for a #Ln or #Ln-Lm anchor, else None."""
        m = LINES.match(self.anchor or "")
        if not m:
            return None
        a = int(m.group(1))
        return a, int(m.group(2) or a)

    @property
    def code(self):
        """The text inside backticks, or None for plain text."""
        t = self.text.strip()
        if len(t) > 2 and t[0] == "`" and t[-1] == "`":
            return t.strip("`").strip()
        return None

    @property
    def symbol(self):
        """The dotted name the text names: `Conv2d.backward`, `im2col()`, and, when it
        is defined in the linked file, the callee of a call such as `Normalize(mean, std)`."""
        c = self.code
        if not c:
            return None
        if NAME.match(c):
            return c[:-2] if c.endswith("()") else c
        m = CALL.match(c)
        if m and self.path.suffix == ".py" and self.path.exists() \
                and resolve(self.path, m.group(1)) is not None:
            return m.group(1)
        return None

    def where(self):
        return f"{_rel(self.page)}:{self.line}: [{self.text}]({self.target})"


def _rel(path):
    path = Path(path)
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def pages(root=DOCS):
    return sorted(p for p in root.rglob("*.md"))


def links(page, text=None):
    """Every relative link of a page (its file, or ``text`` given for it), outside fenced
    code blocks."""
    text = page.read_text(encoding="utf-8") if text is None else text
    out, offset, fenced = [], 0, False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            for m in LINK.finditer(line):
                target = m.group(2)
                if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                    continue
                out.append(Link(page, number, m.group(1), target, offset + m.start(2),
                                offset + m.end(2), "<!-- pending -->" in line))
        offset += len(line)
    return out


# ------------------------------------------------------------------ source symbols
def definitions(path):
    """{qualified name: (first line, last line)} of the functions, classes and
    module-level assignments of a Python file (decorators included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                found.setdefault(name, (first, child.end_lineno))
                visit(child, name + ".")
            elif prefix == "" and isinstance(child, (ast.Assign, ast.AnnAssign)):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        found.setdefault(t.id, (child.lineno, child.end_lineno))

    visit(tree, "")
    return found


def resolve(path, dotted):
    """(first, last) lines of ``dotted`` in the file: the full qualified name, or
    its longest suffix that names something (``kernels.im2col`` -> ``im2col``);
    a bare name may also match a nested definition if that is unambiguous."""
    defs = definitions(path)
    parts = dotted.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[i:])
        if name in defs:
            return defs[name]
    if len(parts) > 1:
        return None
    nested = [v for k, v in defs.items() if k.endswith("." + dotted)]
    return nested[0] if len(nested) == 1 else None


# ------------------------------------------------------------------ markdown anchors
def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> '-'."""
    s = re.sub(r"`|\*\*|\$", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(page):
    seen, out, fenced = {}, set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not fenced:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


# ------------------------------------------------------------------ checking
def _squash(s):
    return re.sub(r"\s+", " ", s).strip()


def problems(link):
    """What is wrong with one link ([] when it is fine)."""
    path = link.path
    if not path.exists():
        if link.pending:
            return []
        return [f"{link.where()}: {_rel(path)} does not exist"]
    if path.suffix == ".md" and link.anchor:
        if link.anchor not in anchors(path):
            return [f"{link.where()}: no heading #{link.anchor} in {path.name}"]
        return []
    rng = link.line_range
    if link.anchor and rng is None:
        return [f"{link.where()}: anchor #{link.anchor} is not of the form #L10 or #L10-L20"]
    if rng is None:
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    first, last = rng
    if not 1 <= first <= last <= len(lines):
        return [f"{link.where()}: lines {first}-{last} are outside {path.name} "
                f"({len(lines)} lines)"]
    if link.symbol and path.suffix == ".py":
        span = resolve(path, link.symbol)
        if span is None:
            return [f"{link.where()}: {link.symbol} is not defined in {path.name}"]
        if not first <= span[0] <= last:
            return [f"{link.where()}: {link.symbol} now starts at line {span[0]}, outside "
                    f"{first}-{last} (run python docs/tools/relink.py)"]
        return []
    if link.code:
        body = _squash(" ".join(lines[first - 1:last]))
        if _squash(link.code) not in body:
            return [f"{link.where()}: `{link.code}` is not in lines {first}-{last} of "
                    f"{path.name} (run python docs/tools/relink.py)"]
    return []


def check(paths=None):
    out = []
    for page in paths or pages():
        for link in links(page):
            out.extend(problems(link))
    return out


# ------------------------------------------------------------------ refreshing
def fresh_range(link):
    """The line range the link should have now, or None to leave it alone."""
    rng, path = link.line_range, link.path
    if rng is None or not path.exists() or path.suffix != ".py" or not link.code:
        return None
    if link.symbol:
        return resolve(path, link.symbol)
    lines = path.read_text(encoding="utf-8").splitlines()
    want = _squash(link.code)
    first, last = rng
    hits = [i + 1 for i, line in enumerate(lines) if want in _squash(line)]
    if not hits:
        return None
    inside = [h for h in hits if first <= h <= last]
    offset = inside[0] - first if inside else 0
    hit = min(hits, key=lambda h: abs(h - offset - first))
    return hit - offset, hit - offset + (last - first)


def relink(page):
    """Rewrite the stale line ranges of one page; returns a list of changes."""
    text = page.read_text(encoding="utf-8")
    changes, pieces, pos = [], [], 0
    for link in links(page):
        new = fresh_range(link)
        if new is None or new == link.line_range:
            continue
        base = link.target.split("#", 1)[0]
        anchor = f"L{new[0]}" if new[0] == new[1] else f"L{new[0]}-L{new[1]}"
        pieces += [text[pos:link.start], f"{base}#{anchor}"]
        pos = link.end
        changes.append(f"{link.where()} -> #{anchor}")
    if changes:
        pieces.append(text[pos:])
        page.write_text("".join(pieces), encoding="utf-8")
    return changes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages (default: docs/**/*.md)")
    parser.add_argument("--check", action="store_true", help="report problems, change nothing")
    args = parser.parse_args(argv)
    targets = [p.resolve() for p in args.pages] or pages()
    if not args.check:
        for page in targets:
            for change in relink(page):
                print(change)
    found = check(targets)
    for p in found:
        print(p, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
