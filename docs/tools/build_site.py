"""Build the docs site into site/ (one command; needs ``pip install -e '.[docs]'``).

    python docs/tools/build_site.py            # site/index.html; warnings are errors
    python docs/tools/build_site.py --out DIR  # elsewhere

Sphinx reads README.md, docs/ (the pages, and the examples executed by
docs/tools/freeze_examples.py) and benchmarks/ from the repository root with
the settings in docs/conf.py. Nothing is fetched and nothing is executed:
the site opens offline, from the folder or through any static file server
(``python -m http.server -d site``).
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "site"), help="where to write the site (default: site/)")
    parser.add_argument("--keep-going", action="store_true", help="report warnings without failing")
    args = parser.parse_args(argv)
    from freeze_examples import scripts, is_stale, frozen_path
    stale = [frozen_path(s).relative_to(ROOT).as_posix() for s in scripts() if is_stale(s)]
    if stale:
        print("warning: stale example notebooks (python docs/tools/freeze_examples.py re-runs them):",
              ", ".join(stale), file=sys.stderr)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(ROOT / "docs"),
               "-d", str(ROOT / "build" / "site-doctrees"), str(ROOT), args.out]
    if not args.keep_going:
        command[3:3] = ["-W", "--keep-going"]
    out = Path(args.out)
    if (out / "index.html").exists() or (out / "searchindex.js").exists():
        shutil.rmtree(out)          # a page or file dropped from the sources leaves the site too
    start = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT)
    if code and (out / "index.html").exists():
        (out / "index.html").unlink()   # a failed build must not pass for a site (tests reuse site/)
    print(f"site {'built' if code == 0 else 'FAILED'} in {time.perf_counter() - start:.0f} s: "
          f"{Path(args.out) / 'index.html'}", file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
