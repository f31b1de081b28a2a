#!/usr/bin/env python3
"""The code's shape, checked by CI (.ci/run), as ARCHITECTURE.md and issue 18 set it:

- no file under src/ over MAX_FILE lines;
- no function outside tests over MAX_FN lines (test modules and *tests.rs files are exempt);
- the core (src/core) imports no adapter crate (serenity, sqlx, reqwest, axum);
- adapters reach storage only through the core's ports: only the wiring (src/wiring.rs,
  src/server.rs, src/main.rs, src/cli/, src/probe.rs) and the storage adapter itself
  (src/store/) name `crate::store`.

Prints every violation with its place and exits 1 if there is any.
"""
import os
import re
import sys

MAX_FILE = 800
MAX_FN = 80
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")
WIRING = ("wiring.rs", "server.rs", "main.rs", "probe.rs", "cli" + os.sep, "store" + os.sep)
FN = re.compile(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
TEST_MOD = re.compile(r"\s*#\[cfg\(test\)\]")


def strip(line):
    """The line without string literals, char literals and a trailing // comment (enough to
    count braces in rustfmt-formatted code)."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//", 1)[0]


def block_end(lines, i):
    """The index of the line that closes the item starting at line `i` (the line itself for
    an item without a body, such as `mod tests;`)."""
    depth, opened, j = 0, False, i
    while j < len(lines):
        code = strip(lines[j])
        depth += code.count("{") - code.count("}")
        opened = opened or "{" in code
        if opened and depth <= 0:
            return j
        if not opened and code.rstrip().endswith(";"):
            return j
        j += 1
    return len(lines) - 1


def long_functions(lines):
    """(line, name, length) of each function over MAX_FN lines, skipping `#[cfg(test)]`
    items (test modules, test-only functions)."""
    found, i = [], 0
    while i < len(lines):
        if TEST_MOD.match(lines[i]):
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith("#["):
                j += 1
            i = block_end(lines, j) + 1
            continue
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        j = block_end(lines, i)
        if j - i + 1 > MAX_FN:
            found.append((i + 1, m.group(6), j - i + 1))
        # Nested functions are counted within their parent.
        i = j + 1
    return found


def main():
    problems = []
    for dirpath, _, files in os.walk(SRC):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, ROOT)
            in_src = os.path.relpath(path, SRC)
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            n = len(lines) - (1 if lines and lines[-1] == "" else 0)
            if n > MAX_FILE:
                problems.append(f"{rel}: {n} lines (at most {MAX_FILE}: split it by topic)")
            is_test_file = f == "tests.rs" or f.endswith("_tests.rs") or "tests" + os.sep in in_src
            if not is_test_file:
                for line, name, length in long_functions(lines):
                    problems.append(
                        f"{rel}:{line}: fn {name} is {length} lines (at most {MAX_FN}: "
                        "extract named steps)"
                    )
            if in_src.startswith("core" + os.sep):
                for k, l in enumerate(lines):
                    if re.search(r"\b(serenity|sqlx|reqwest|axum)::", strip(l)):
                        problems.append(f"{rel}:{k + 1}: the core imports an adapter crate: {l.strip()}")
            elif not in_src.startswith(WIRING):
                for k, l in enumerate(lines):
                    if re.search(r"\bcrate::store\b", strip(l)):
                        problems.append(
                            f"{rel}:{k + 1}: an adapter reaches storage past the core's ports: "
                            f"{l.strip()}"
                        )
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check-shape: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check-shape: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
