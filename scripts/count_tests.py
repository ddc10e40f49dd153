#!/usr/bin/env python3
"""Adds up test results: doctest's case counts from meson test logs (testlog.json),
pytest's from a JUnit XML file, and fuzz runs from scripts/fuzz.sh summary lines (.txt).
Prints one line per source, then the total as "tests: N passed, M failed". Exits 1 if
anything failed or a log is missing."""
import json
import re
import sys
import xml.etree.ElementTree as ET

DOCTEST = re.compile(r"\[doctest\] test cases:\s*(\d+) \|\s*(\d+) passed \|\s*(\d+) failed")
# Scripts that are not doctest end with a plain "name: N passed, M failed" line.
PLAIN = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed$", re.M)


def from_meson(path):
    passed = failed = 0
    skipped = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            out = rec.get("stdout", "") or ""
            if rec.get("result") == "SKIP":  # e.g. the install test in a cross build: not a pass
                skipped.append(rec.get("name", "?"))
                continue
            m = DOCTEST.search(out)
            p = None if m else PLAIN.search(out)
            if m:
                passed += int(m.group(2))
                failed += int(m.group(3))
            elif p:
                passed += int(p.group(1))
                failed += int(p.group(2))
            if rec.get("result") != "OK":
                counted_fail = int(m.group(3)) if m else int(p.group(2)) if p else 0
                failed += 0 if counted_fail else 1  # a crash or timeout: count the binary
    if skipped:
        print(f"{path}: skipped (not counted): {', '.join(skipped)}")
    return passed, failed


def from_junit(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests - bad - skipped, bad


def from_fuzz(path):
    """scripts/fuzz.sh summary lines: one run per line, passed when it ends in '0 crashes'."""
    passed = failed = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("fuzz "):
                if line.rstrip().endswith(" 0 crashes"):
                    passed += 1
                else:
                    failed += 1
    if passed + failed == 0:
        raise ValueError("no fuzz runs recorded")
    return passed, failed


def main(paths):
    total_p = total_f = 0
    ok = True
    for p in paths:
        try:
            if p.endswith(".xml"):
                passed, failed = from_junit(p)
            elif p.endswith(".txt"):
                passed, failed = from_fuzz(p)
            else:
                passed, failed = from_meson(p)
        except (OSError, ValueError, ET.ParseError) as e:
            print(f"{p}: no results ({e})")
            ok = False
            continue
        print(f"{p}: {passed} passed, {failed} failed")
        total_p += passed
        total_f += failed
    print(f"tests: {total_p} passed, {total_f} failed")
    return 0 if ok and total_f == 0 and total_p > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
