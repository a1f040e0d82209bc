#!/usr/bin/env python3
"""Lists functions longer than a limit (default 80 lines) under a directory.

Usage: scripts/fn_lengths.py worker/src/pipeline [80]
"""
import os
import re
import sys

root = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 80
long = 0
for d, _, names in os.walk(root):
    for n in sorted(names):
        if not n.endswith(".rs"):
            continue
        p = os.path.join(d, n)
        lines = open(p).read().split("\n")
        i = 0
        while i < len(lines):
            if re.match(r"\s*(pub(\([\w:]+\))?\s+)?(async\s+)?fn\s+\w+", lines[i]):
                depth, started, j = 0, False, i
                while j < len(lines):
                    code = re.sub(r"//.*", "", lines[j])
                    code = re.sub(r'"(\\.|[^"\\])*"', '""', code)
                    depth += code.count("{") - code.count("}")
                    started |= "{" in code
                    if started and depth <= 0:
                        break
                    if not started and code.rstrip().endswith(";"):
                        break
                    j += 1
                if j - i + 1 > limit:
                    long += 1
                    name = re.search(r"fn\s+(\w+)", lines[i]).group(1)
                    print(f"{p}:{i + 1}: {name} is {j - i + 1} lines")
                i = j + 1 if started else i + 1
            else:
                i += 1
print(f"{long} function(s) over {limit} lines")
sys.exit(1 if long else 0)
