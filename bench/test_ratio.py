"""Test lines per code line, per app and overall (issue 13: raise it toward 1.0).

A line counts when it holds Python other than a comment: blank lines and comment-only lines do
not count; docstrings and other strings do (``tokenize`` decides, so a ``#`` inside a string is
not a comment). Migrations and ``__pycache__`` are left out everywhere.

- code of an app: the ``.py`` files under its folder (``sdk/promptledger`` for the SDK);
- tests of an app: ``tests/<app>/`` (the SDK's are ``tests/client/`` and ``sdk/tests/``);
- overall: every app's code against every test file (``tests/`` and ``sdk/tests/``, so
  ``tests/browser/``, the shared factories and the top-level tests count here, not per app).

Standard library only; it reads files and prints a table:

    .venv/bin/python bench/test_ratio.py [--root PATH]
"""

import argparse
import io
import sys
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# app -> (code folders, test folders), relative to the repository root
APPS = {
    "approvals": (["approvals"], ["tests/approvals"]),
    "audit": (["audit"], ["tests/audit"]),
    "core": (["core"], ["tests/core"]),
    "evals": (["evals"], ["tests/evals"]),
    "registry": (["registry"], ["tests/registry"]),
    "webhooks": (["webhooks"], ["tests/webhooks"]),
    "config": (["config"], ["tests/config"]),
    "demo": (["demo"], ["tests/demo"]),
    "sdk/promptledger": (["sdk/promptledger"], ["tests/client", "sdk/tests"]),
}
ALL_TESTS = ["tests", "sdk/tests"]
SKIPPED_PARTS = {"migrations", "__pycache__"}
NOT_CODE = {
    tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
    tokenize.ENCODING, tokenize.ENDMARKER,
}


def python_files(root, folders):
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if not SKIPPED_PARTS & set(path.relative_to(base).parts):
                yield path


def code_lines(path):
    """Lines of ``path`` that hold a token other than a comment (a string spanning lines counts
    each of its lines). A file that does not tokenize (someone is halfway through editing it)
    falls back to counting lines that are neither blank nor start with ``#``."""
    source = path.read_bytes()
    lines = set()
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type not in NOT_CODE:
                lines.update(range(token.start[0], token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError) as exc:
        print(f"warning: {path}: {exc}; counted by a plain line scan", file=sys.stderr)
        text = source.decode("utf-8", errors="replace").splitlines()
        return sum(1 for line in text if line.strip() and not line.lstrip().startswith("#"))
    return len(lines)


def count(root, folders):
    files = list(python_files(root, folders))
    return len(files), sum(code_lines(path) for path in files)


def ratio(tests, code):
    return f"{tests / code:.2f}" if code else "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="the repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    header = f"{'app':<18} {'code files':>10} {'code lines':>10} {'test files':>10} {'test lines':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    total_code = total_code_files = 0
    for app, (code_folders, test_folders) in APPS.items():
        code_files, code = count(root, code_folders)
        test_files, tests = count(root, test_folders)
        total_code += code
        total_code_files += code_files
        print(f"{app:<18} {code_files:>10} {code:>10} {test_files:>10} {tests:>10} {ratio(tests, code):>6}")
    all_test_files, all_tests = count(root, ALL_TESTS)
    print("-" * len(header))
    print(
        f"{'overall':<18} {total_code_files:>10} {total_code:>10} {all_test_files:>10} {all_tests:>10} "
        f"{ratio(all_tests, total_code):>6}"
    )
    print("\noverall counts every test file (tests/ and sdk/tests/), including those of no single app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
