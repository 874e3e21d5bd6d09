"""``minitorch-cnn assignment list|make|grade|notebooks``."""
import sys
from pathlib import Path


def add_assignment_parser(subparsers):
    p = subparsers.add_parser(
        "assignment", help="graded assignments made from the library's own source",
        description="Make a student copy of an assignment, grade one, or turn the examples "
                    "into notebooks. docs/teaching.md walks through it.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the assignments and their tasks, with points").set_defaults(
        func=run_list)
    m = sub.add_parser("make", help="write a student copy (or --solution: the instructor's)")
    m.add_argument("name", metavar="NAME", help="an assignment (see `assignment list`)")
    m.add_argument("--out", required=True, help="folder to write (must be empty)")
    m.add_argument("--solution", action="store_true",
                   help="the instructor's copy: solutions in place, markers kept")
    m.add_argument("--tasks", help="comma-separated tasks to blank (default: all)")
    m.add_argument("--force", action="store_true", help="replace a non-empty --out")
    m.set_defaults(func=run_make)
    g = sub.add_parser("grade", help="grade a copy, each task in isolation")
    g.add_argument("folder", metavar="DIR")
    g.add_argument("--json", metavar="PATH", help="Gradescope results (default DIR/results.json)")
    g.add_argument("--key", help="the instructor's key: adds hidden randomised cases")
    g.add_argument("--tasks", help="comma-separated tasks to grade (default: the copy's)")
    g.add_argument("--all", action="store_true",
                   help="grade every task of the assignment, the ones not blanked too")
    g.add_argument("--timeout", type=float, default=120.0,
                   help="wall and CPU seconds per task (default 120)")
    g.add_argument("--memory", type=int, default=4096, metavar="MB",
                   help="address space per task's process (default 4096 MB)")
    g.add_argument("--jobs", type=int, help="tasks graded at once (default: up to 4 cores)")
    g.set_defaults(func=run_grade)
    n = sub.add_parser("notebooks", help="notebooks (.ipynb) from the examples' percent scripts")
    n.add_argument("scripts", nargs="*", metavar="SCRIPT",
                   help="percent scripts (default: examples/*.py of the repository)")
    n.add_argument("--out", default="notebooks", help="output folder (default notebooks/)")
    n.add_argument("--colab-repo", metavar="OWNER/REPO",
                   help="GitHub repository for one-click 'Open in Colab' links")
    n.set_defaults(func=run_notebooks)
    return p


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def run_list(args):
    from . import ASSIGNMENTS
    for a in ASSIGNMENTS.values():
        print(f"{a.name}  ({a.points:g} points)  {a.title}")
        width = max(len(t.name) for t in a.tasks)
        for t in a.tasks:
            print(f"  {t.name:<{width}}  {t.points:>4g}  {t.title}" + (" (extra)" if t.extra else ""))
        print()
    return 0


def run_make(args):
    from .make import make
    try:
        manifest = make(args.name, args.out, solution=args.solution, tasks=_split(args.tasks),
                        force=args.force)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    kind = "instructor's copy" if args.solution else "student copy"
    print(f"wrote the {kind} of {args.name} to {args.out}: {len(manifest['tasks'])} tasks, "
          f"{manifest['total']:g} points")
    print(f"  students: cd {args.out} && python -m pytest tests")
    print(f"  grading:  minitorch-cnn assignment grade {args.out}")
    return 0


def run_grade(args):
    from .grade import GradingError, grade
    from .report import table, write
    try:
        report = grade(args.folder, key=args.key, tasks=_split(args.tasks), all_tasks=args.all,
                       timeout=args.timeout, memory_mb=args.memory, jobs=args.jobs)
    except GradingError as e:
        print(f"grading error: {e}", file=sys.stderr)
        return 2
    for note in report.notes:
        print(f"note: {note}")
    print(table(report))
    path = write(report, args.folder, args.json)
    print(f"wrote {Path(args.folder) / 'report.md'} and {path}")
    return 0


def run_notebooks(args):
    from .make import REPO
    from .notebook import convert
    scripts = [Path(s) for s in args.scripts] or sorted((REPO / "examples").glob("[0-9][0-9]_*.py"))
    if not scripts:
        print("error: no scripts given and no examples/ next to the package", file=sys.stderr)
        return 2
    for s in scripts:
        print(convert(s, args.out, repo=args.colab_repo, rel_dir=args.out))
    return 0
