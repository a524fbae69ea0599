#!/usr/bin/env python3
"""Top-level module dependency graph of a crate's src/ and its cycles.

For each top-level module (src/X.rs or src/X/), every `crate::Y` path
(in `use` or in expressions, grouped imports included) and, in the module's
own root file, every `super::Y`, is an edge X -> Y when Y is another
top-level module. Comments and string literals are stripped first.
With --no-tests, `#[cfg(test)]` items (brace-matched), files named tests.rs,
and directories named tests/ are left out.
"""
import os, re, sys

def strip(src):
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith('//', i):
            j = src.find('\n', i); i = n if j < 0 else j
        elif src.startswith('/*', i):
            j = src.find('*/', i); i = n if j < 0 else j + 2
        elif src[i] == '"' :
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == '\\' else 1
            out.append('""'); i = j + 1
        elif src.startswith('r#"', i) or src.startswith('r"', i):
            hashes = 1 if src.startswith('r#"', i) else 0
            end = '"' + '#' * hashes
            j = src.find(end, i + 2 + hashes); i = n if j < 0 else j + len(end)
            out.append('""')
        elif src[i] == "'" and i + 2 < n and (src[i+2] == "'" or (src[i+1] == '\\')):
            j = src.find("'", i + 2 if src[i+1] != '\\' else i + 3); i = j + 1 if j >= 0 else n
        else:
            out.append(src[i]); i += 1
    return ''.join(out)

def drop_cfg_test(src):
    out, i = [], 0
    for m in re.finditer(r'#\[cfg\(test\)\]', src):
        pass
    while True:
        m = re.search(r'#\[cfg\(test\)\]', src[i:])
        if not m:
            out.append(src[i:]); break
        s = i + m.start(); out.append(src[i:s])
        # skip to the end of the next item: a `;` before any `{`, or a brace block
        j = s + len(m.group(0))
        semi, brace = src.find(';', j), src.find('{', j)
        if brace < 0 or (0 <= semi < brace):
            i = semi + 1; continue
        depth, k = 0, brace
        while k < len(src):
            if src[k] == '{': depth += 1
            elif src[k] == '}':
                depth -= 1
                if depth == 0: break
            k += 1
        i = k + 1
    return ''.join(out)

def paths_in_use_tree(tree):
    """Expand `a::{b, c::{d}}` into first segments after the prefix: we only need `crate::Y`."""
    return tree

def top_modules(src_dir):
    mods = {}
    for e in sorted(os.listdir(src_dir)):
        p = os.path.join(src_dir, e)
        if e in ('lib.rs', 'main.rs') or e.startswith('.'):
            continue
        if e.endswith('.rs'):
            mods.setdefault(e[:-3], []).append(p)
        elif os.path.isdir(p):
            if e == 'bin':
                continue
            mods.setdefault(e, []).append(p)
    return mods

def files_of(paths, no_tests):
    for p in paths:
        if os.path.isfile(p):
            yield p
        else:
            for root, dirs, files in os.walk(p):
                if no_tests:
                    dirs[:] = [d for d in dirs if d != 'tests']
                for f in files:
                    if f.endswith('.rs') and not (no_tests and f == 'tests.rs'):
                        yield os.path.join(root, f)

def crate_refs(text):
    refs = set()
    # grouped: use crate::{a, b::c, d};
    for m in re.finditer(r'\bcrate::\{', text):
        depth, k = 1, m.end()
        while k < len(text) and depth:
            if text[k] == '{': depth += 1
            elif text[k] == '}': depth -= 1
            k += 1
        inner = text[m.end():k-1]
        # top-level items of the group
        depth, cur, items = 0, '', []
        for ch in inner:
            if ch == '{': depth += 1
            elif ch == '}': depth -= 1
            if ch == ',' and depth == 0:
                items.append(cur); cur = ''
            else:
                cur += ch
        items.append(cur)
        for it in items:
            name = re.match(r'\s*([A-Za-z_][A-Za-z0-9_]*)', it)
            if name: refs.add(name.group(1))
    for m in re.finditer(r'\bcrate::([A-Za-z_][A-Za-z0-9_]*)', text):
        refs.add(m.group(1))
    return refs

def graph(crate_dir, no_tests):
    src = os.path.join(crate_dir, 'src')
    mods = top_modules(src)
    edges = {m: {} for m in mods}
    for m, paths in mods.items():
        roots = {p if os.path.isfile(p) else os.path.join(p, 'mod.rs') for p in paths}
        for f in files_of(paths, no_tests):
            text = strip(open(f, encoding='utf-8', errors='replace').read())
            if no_tests:
                text = drop_cfg_test(text)
            refs = crate_refs(text)
            if f in roots:
                refs |= {x for x in re.findall(r'\bsuper::([A-Za-z_][A-Za-z0-9_]*)', text)}
            for r in refs:
                if r in mods and r != m:
                    edges[m].setdefault(r, set()).add(os.path.relpath(f, crate_dir))
    return edges

def sccs(edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            out.append(sorted(comp))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]

if __name__ == '__main__':
    no_tests = '--no-tests' in sys.argv
    for crate in [a for a in sys.argv[1:] if not a.startswith('--')]:
        e = graph(crate, no_tests)
        print(f'== {crate} ({"without" if no_tests else "with"} tests): {len(e)} top-level modules')
        for m in sorted(e):
            print(f'  {m} -> {", ".join(sorted(e[m])) or "-"}')
        cyc = sccs(e)
        if not cyc:
            print('  cycles: none')
        for c in cyc:
            print('  CYCLE among: ' + ', '.join(c))
            for a in c:
                for b in sorted(e[a]):
                    if b in c:
                        print(f'    {a} -> {b}: ' + ', '.join(sorted(e[a][b])))
