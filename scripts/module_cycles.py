#!/usr/bin/env python3
"""Finds import cycles between the modules (files) of a crate.

Usage: scripts/module_cycles.py worker/src

Every `use crate::…`, `use super::…` tree and inline `crate::a::b` path of a
file (test modules excluded) is resolved to the longest known module prefix
(a name the crate root re-exports, like `crate::Worker`, to its module);
the strongly connected components of that graph with more than one module
are the cycles. Exit status 1 when there is one.
"""
import os
import re
import sys


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+tests", text)
    return text[: m.start()] if m else text


def expand(tree):
    """Paths of a use tree like `a::{b, c::{d, e}}`."""
    tree = tree.strip()
    if "{" not in tree:
        return [tree.split(" as ")[0].strip()]
    i = tree.index("{")
    prefix = tree[:i]
    body = tree[i + 1 : tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out += [prefix + q for q in expand(p)]
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "worker/src"
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".rs") and n != "main.rs":
                p = os.path.join(d, n)
                files[module_of(root, p)] = p
    mods = set(files)
    graph = {m: set() for m in mods}
    # Names the crate root re-exports (`pub use context::Worker;`) count as
    # uses of the module that defines them.
    reexports = {}
    lib = os.path.join(root, "lib.rs")
    if os.path.exists(lib):
        for u in re.findall(r"\bpub\s+use\s+([^;]*);", strip(open(lib).read()), re.S):
            for path in expand(re.sub(r"\s+", " ", u)):
                segs = [x for x in path.replace(" ", "").split("::") if x]
                if segs and segs[-1] != "self" and tuple(segs) not in mods:
                    reexports[segs[-1]] = segs[:-1]
    for m, p in files.items():
        text = strip(open(p).read())
        paths = []
        for u in re.findall(r"\buse\s+((?:crate|super)::[^;]*);", text, re.S):
            paths += expand(re.sub(r"\s+", " ", u))
        # Inline paths; a use tree's own prefix (`crate::a::{…}`) ends in `::`.
        paths += [
            p
            for p in re.findall(r"(?<![:\w])(?:crate|super)::[\w:]+", text)
            if not p.endswith("::")
        ]
        # Children declared here (`mod x;`) are named without a prefix.
        for child in re.findall(r"\bmod\s+(\w+)\s*;", text):
            if re.search(r"(?<![:\w])" + child + r"::", text):
                paths.append("self::" + child)
        for path in paths:
            segs = [s for s in path.replace(" ", "").split("::") if s]
            if segs[0] == "self":
                base, rest = m, segs[1:]
            elif segs[0] == "crate":
                base, rest = (), segs[1:]
                if rest and rest[0] in reexports:
                    rest = reexports[rest[0]] + rest
            else:
                base, rest = m, segs
                while rest and rest[0] == "super":
                    base, rest = base[:-1], rest[1:]
            target = base
            for s in rest:
                if target + (s,) in mods:
                    target = target + (s,)
                else:
                    break
            if target != m and target in mods and target != ():
                graph[m].add(target)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(mods):
        if v not in index:
            visit(v)
    edges = sum(len(v) for v in graph.values())
    print(f"{len(mods)} modules, {edges} edges, {len(sccs)} cycle(s)")
    for c in sccs:
        print("cycle:", " <-> ".join(sorted("::".join(x) for x in c)))
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
