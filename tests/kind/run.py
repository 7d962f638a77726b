#!/usr/bin/env python3
"""`make kind-test`: runs each test class of tests/kind/test_lab.py in its own process,
KIND_TEST_JOBS (default 3) at a time (most of the time is spent starting the fakes, one
Python process per call), and ends with one line "kind-test: N passed, N failed".
"""

import os
import re
import subprocess
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def classes() -> list[str]:
    sys.path.insert(0, str(HERE))
    suite = unittest.defaultTestLoader.discover(str(HERE), pattern="test_*.py", top_level_dir=str(HERE))
    names = []

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            elif isinstance(t, unittest.loader._FailedTest):  # an import error: report it
                names.append(t.id())
            else:
                name = f"{type(t).__module__}.{type(t).__qualname__}"
                if name not in names:
                    names.append(name)
    walk(suite)
    return names


def run(name: str) -> tuple[str, int, int, str]:
    r = subprocess.run([sys.executable, "-m", "unittest", "-v", name], cwd=HERE, capture_output=True, text=True)
    out = r.stderr + r.stdout
    ran = int((re.search(r"^Ran (\d+) tests?", out, re.M) or [0, 0])[1])
    m = re.search(r"^FAILED \((.*)\)", out, re.M)
    failed = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", m.group(1))) if m else 0
    if r.returncode != 0 and not failed:
        failed = max(1, ran)
    return name, ran, failed, out


def main() -> int:
    names = classes()
    if not names:
        print("kind-test: no tests found", file=sys.stderr)
        return 1
    jobs = int(os.environ.get("KIND_TEST_JOBS", "3"))
    passed = failed = 0
    with ThreadPoolExecutor(jobs) as pool:
        for name, ran, bad, out in pool.map(run, names):
            passed += max(ran - bad, 0)
            failed += bad
            print(f"{'FAIL' if bad else 'ok  '} {name} ({ran} tests)", flush=True)
            if bad:
                print(out, flush=True)
    print(f"kind-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
