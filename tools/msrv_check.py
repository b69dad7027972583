#!/usr/bin/env python3
"""Checks that the crate's declared `rust-version` is honest: at least the
highest `rust-version` any locked dependency declares (normal, build and
dev dependencies, every feature), and at least what the lock file's format
needs.

Usage (from the crate root; CI runs it from .ci/run):

    python3 tools/msrv_check.py

It reads `cargo metadata --format-version 1 --all-features --locked`, so
it checks the versions Cargo.lock pins, and exits 1 naming the packages
that need a newer compiler than the crate declares. A dependency without
a `rust-version` does not constrain anything here; a build with the
declared toolchain is the only complete check (the compiler's own
features and std APIs are checked by clippy's `incompatible_msrv` lint,
which reads the same field).
"""

import json
import subprocess
import sys


def version(text):
    parts = [int(p) for p in text.split('.')]
    return tuple(parts + [0] * (3 - len(parts)))


def show(v):
    return '.'.join(str(p) for p in v)


def main():
    out = subprocess.run(
        ['cargo', 'metadata', '--format-version', '1', '--all-features', '--locked'],
        check=True, capture_output=True, text=True).stdout
    meta = json.loads(out)
    packages = {p['id']: p for p in meta['packages']}
    root = packages[meta['resolve']['root']]
    declared = root.get('rust_version')
    if not declared:
        print('%s declares no rust-version' % root['name'])
        return 1
    declared = version(declared)

    # Every package the root reaches, through any kind of dependency.
    nodes = {n['id']: n for n in meta['resolve']['nodes']}
    seen, stack = set(), [root['id']]
    while stack:
        for dep in nodes[stack.pop()]['deps']:
            if dep['pkg'] not in seen:
                seen.add(dep['pkg'])
                stack.append(dep['pkg'])
    needs = sorted(
        ((version(packages[i]['rust_version']), packages[i]['name'], packages[i]['version'])
         for i in seen if packages[i].get('rust_version')),
        reverse=True)

    # Cargo.lock format 4 is read by Cargo 1.78 and later.
    with open('Cargo.lock') as f:
        lock = f.read()
    floor = (1, 78, 0) if 'version = 4' in lock.split('[[package]]')[0] else (1, 0, 0)

    highest = max([floor] + [n[0] for n in needs])
    print('declared rust-version %s; locked dependencies need up to %s (%s %s); Cargo.lock format needs %s'
          % (show(declared), show(needs[0][0]) if needs else '-', needs[0][1] if needs else '-',
             needs[0][2] if needs else '', show(floor)))
    if declared < highest:
        too_new = [n for n in needs if n[0] > declared]
        for v, name, ver in too_new:
            print('  %s %s needs Rust %s' % (name, ver, show(v)))
        if floor > declared:
            print('  Cargo.lock format 4 needs Cargo %s' % show(floor))
        print('raise rust-version in Cargo.toml to %s (or lock older dependencies)' % show(highest))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
