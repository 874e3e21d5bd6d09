"""What ``assignment grade`` writes: the printed table, ``report.md`` and Gradescope's
``results.json``. Tasks marked ``extra`` are shown apart, outside the total."""
import json
import re
import textwrap
from pathlib import Path


def _hint(message):
    m = re.search(r"\(hint: (.*)\)\s*$", message or "")
    return m.group(1) if m else ""


def _problem(message):
    return re.sub(r"\s*\(hint: .*\)\s*$", "", message or "")


def _clip(text, width):
    return text if len(text) <= width else text[:width - 1] + "…"


def table(report, width=96):
    """The printed table: task, points, score, the first failing check and its hint."""
    rows = [("task", "points", "score", "first failing check / hint")]
    for r in report.results:
        f = r.first_failure
        what = "" if f is None else _clip(f"{f.name}: {_problem(f.message)}", width)
        rows.append((r.name + (" (extra)" if r.extra else ""), f"{r.points:g}", f"{r.score:g}",
                     what))
        if f is not None and _hint(f.message):
            for k, line in enumerate(textwrap.wrap(_hint(f.message), width - 6)):
                rows.append(("", "", "", ("hint: " if k == 0 else "      ") + line))
    rows.append(("total", f"{report.points:g}", f"{report.score:g}",
                 "extra tasks are not in the total" if any(r.extra for r in report.results)
                 else ""))
    w = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{w[0]}}  {b:>{w[1]}}  {c:>{w[2]}}  {d}".rstrip() for a, b, c, d in rows]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([lines[0], rule] + lines[1:-1] + [rule, lines[-1]])


def markdown(report):
    out = [f"# Grade report: {report.title} (`{report.assignment}`)", "",
           f"**Total: {report.score:g} / {report.points:g}**", ""]
    out += [f"> {n}" for n in report.notes] + ([""] if report.notes else [])
    out += ["| task | points | score | first failing check | hint |", "| --- | --- | --- | --- | --- |"]
    for r in report.results:
        f = r.first_failure
        esc = (lambda s: s.replace("|", "\\|"))
        out.append(f"| {r.name}{' (extra)' if r.extra else ''} | {r.points:g} | {r.score:g} | "
                   f"{esc(f'{f.name}: {_problem(f.message)}') if f else ''} | "
                   f"{esc(_hint(f.message)) if f else ''} |")
    for r in report.results:
        out += ["", f"## {r.title} (`{r.name}`): {r.score:g} / {r.points:g}", ""]
        out += [f"- note: {n}" for n in r.notes]
        for c in r.checks:
            mark = "pass" if c.passed else "FAIL"
            out.append(f"- {mark}: {c.name}" + ("" if c.passed else f" -- {c.message}"))
    return "\n".join(out) + "\n"


def gradescope(report):
    """Gradescope's results.json: one test per task (and one per task's hidden cases)."""
    tests = []
    for r in report.results:
        if r.extra:                  # outside the total: shown, worth nothing on Gradescope
            tests.append({"name": f"{r.title} (extra, not in the total: {r.score:g} / "
                                  f"{r.points:g})", "score": 0, "max_score": 0,
                          "output": "\n".join(f"{'pass' if c.passed else 'FAIL'}: {c.name}"
                                              for c in r.checks), "visibility": "visible"})
            continue
        for hidden in (False, True):
            part = [c for c in r.checks if c.hidden == hidden]
            if not part:
                continue
            total = sum(c.weight for c in r.checks) or 1.0
            share = sum(c.weight for c in part) / total
            got = sum(c.weight for c in part if c.passed) / total
            lines = [f"{'pass' if c.passed else 'FAIL'}: {c.name}" + ("" if c.passed else
                                                                      f" -- {c.message}")
                     for c in part] + [f"note: {n}" for n in r.notes]
            tests.append({"name": r.title + (" (hidden cases)" if hidden else ""),
                          "score": round(r.points * got, 2),
                          "max_score": round(r.points * share, 2),
                          "output": "\n".join(lines),
                          "visibility": "after_due_date" if hidden else "visible"})
    return {"score": report.score, "tests": tests, "visibility": "visible",
            "stdout_visibility": "hidden"}


def write(report, folder, json_path=None):
    folder = Path(folder)
    (folder / "report.md").write_text(markdown(report))
    path = Path(json_path) if json_path else folder / "results.json"
    path.write_text(json.dumps(gradescope(report), indent=1) + "\n")
    return path
