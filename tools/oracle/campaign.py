#!/usr/bin/env python
"""Random differential campaign: real Cinder 29 against the crate.

Usage (with the Cinder 29.0.0 virtualenv, from the repository root):

    /tmp/c/bin/python tools/oracle/campaign.py --seed S --count N --out DIR
        [--start I] [--per-file K] [--shrink K] [--shrink-budget R]
        [--crate BIN] [--no-build] [--store DIR --store-count M]

1. Draws N vectors of seed S (``random_vectors.draw``, indexes I..I+N-1)
   and writes them to ``DIR/vectors/`` (JSON arrays of K vectors).
2. Runs every vector through real Cinder in this one process
   (``runner.run_vector``, as ``oracle.py`` does); results go to
   ``DIR/oracle.jsonl``. The file doubles as a checkpoint: rerunning the
   same command skips the vectors it already holds.
3. Builds and runs the crate's conformance runner once over the vector
   directory (``cargo run --release --example conformance -- DIR/vectors``,
   JSON Lines); results go to ``DIR/crate.jsonl``.
4. Compares the two by FORMAT.md §12 (``results.compare``) and groups the
   differences into classes: operation, differing fields, and the
   expected/obtained ``error`` and ``path``.
5. Shrinks up to K vectors per class (default 1) to a minimal vector by
   delta debugging over the vector's parts (list elements, object members:
   config options, rows, locations, pools, images, snapshots, fields),
   keeping only reductions that still differ in the same class and that
   real Cinder still accepts as a vector; at most R oracle runs per vector.
   The minimal vectors, with Cinder's result inline as ``expected``, go to
   ``DIR/shrunk/``.
6. Writes ``DIR/report.md`` (pass rate per operation, the classes, their
   shrunk vectors) and prints it.

Vectors the oracle rejects (``vector_error``/``harness_error``) are a
generator bug; they are reported and left out of the pass rates.

``--store DIR --store-count M`` additionally writes the first M vectors
that both sides ran, with Cinder's result (without ``trace``) inline as
``expected``, to DIR as JSON arrays: the stored random set of the test
suite (tests/vectors/random).
"""

import argparse
import collections
import copy
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import random_vectors  # noqa: E402

NOT_CINDER = ('vector_error', 'harness_error')


# --- the two sides ----------------------------------------------------------------

def load_oracle():
    import warnings
    warnings.simplefilter('ignore')
    import logging
    import cinder.tests.unit  # noqa: F401  (eventlet monkey-patching first)
    import results
    import runner
    logging.disable(logging.CRITICAL)
    return runner, results


def build_crate():
    cmd = ['cargo', 'build', '--release', '--example', 'conformance']
    subprocess.check_call(cmd, cwd=REPO)
    return os.path.join(REPO, 'target', 'release', 'examples', 'conformance')


def run_crate(binary, paths):
    """Results of the crate's runner (JSON Lines), by vector name."""
    out = subprocess.run([binary] + list(paths), cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         check=False)
    if out.returncode not in (0, 1):
        raise SystemExit('conformance runner failed (%d): %s'
                         % (out.returncode, out.stderr.decode()[-2000:]))
    got = {}
    for line in out.stdout.decode().splitlines():
        line = line.strip()
        if not line.startswith('{'):
            continue
        r = json.loads(line)
        got[r.get('name')] = r
    return got


class Oracle(object):
    """Real Cinder, in this process."""

    def __init__(self):
        self.runner, self.results = load_oracle()
        self.runs = 0

    def run(self, vector):
        self.runs += 1
        # the oracle reads the vector as a file would hold it
        return self.runner.run_vector(json.loads(json.dumps(vector)))

    def compare(self, got, expected):
        bad, _trace = self.results.compare(got, expected)
        return bad


# --- classes -------------------------------------------------------------------------

def brief(r):
    return '%s/%s' % (r.get('error') or r.get('outcome'), r.get('path') or '-')


def difference_class(op, bad, expected, got):
    """The class of a difference: what differs and how."""
    return '%s: %s | cinder %s | crate %s' % (op, ','.join(bad),
                                               brief(expected), brief(got))


def shrink_key(op, bad, expected, got):
    """What a reduction must keep: the outcomes (error and path) of both
    sides, and when those agree, the first differing field. The full list
    of differing fields may change (e.g. fewer cache rows to differ on)."""
    b1, b2 = brief(expected), brief(got)
    return (op, b1, b2, bad[0] if b1 == b2 else None)


# --- shrinking -------------------------------------------------------------------------

KEEP = {('name',), ('operation',), ('volume', 'id'), ('image', 'id'),
        ('request', 'source_volid'), ('request', 'snapshot_id')}


def atoms(vector):
    """Paths of the parts that can be removed (leaves and list elements)."""
    out = []

    def walk(x, path):
        if isinstance(x, dict):
            for k in sorted(x):
                p = path + (k,)
                if p in KEEP or (len(p) == 1 and k == 'description'):
                    continue
                out.append(p)
                walk(x[k], p)
        elif isinstance(x, list):
            for i, item in enumerate(x):
                p = path + (i,)
                out.append(p)
                walk(item, p)
    walk(vector, ())
    return out


def without(vector, paths):
    """A copy of ``vector`` without the parts at ``paths``."""
    v = copy.deepcopy(vector)
    chosen = set(paths)
    # a part inside a removed part goes with it
    top = [p for p in chosen
           if not any(p[:n] in chosen for n in range(1, len(p)))]
    # deepest first, and within a list the highest index first: a removal
    # then never shifts the position of one still to come
    for p in sorted(top, key=lambda p: (len(p), p), reverse=True):
        parent = v
        for k in p[:-1]:
            parent = parent[k]
        del parent[p[-1]]
    return v


def shrink(vector, key, oracle, crate_bin, budget, log):
    """Delta debugging (ddmin over the removable parts) keeping ``key``
    (``shrink_key``)."""
    start_runs = oracle.runs

    def still(candidate):
        with tempfile.NamedTemporaryFile('w', suffix='.json',
                                         delete=False) as f:
            json.dump(candidate, f)
            path = f.name
        try:
            got = run_crate(crate_bin, [path]).get(candidate['name'])
        finally:
            os.unlink(path)
        if got is None:
            return False
        expected = oracle.run(candidate)
        if expected.get('outcome') in NOT_CINDER:
            return False
        bad = oracle.compare(got, expected)
        return bool(bad) and shrink_key(candidate['operation'], bad,
                                        expected, got) == key

    def over():
        return oracle.runs - start_runs >= budget

    def ddmin(base, parts):
        """Remove as many of ``parts`` of ``base`` as possible (Zeller's
        ddmin; the paths stay relative to ``base``)."""
        removed = []
        current = base
        n = 2
        while parts and not over():
            n = min(n, len(parts))
            size = (len(parts) + n - 1) // n
            chunks = [parts[i:i + size] for i in range(0, len(parts), size)]
            for chunk in chunks:
                if over():
                    break
                candidate = without(base, removed + chunk)
                if still(candidate):
                    current = candidate
                    removed += chunk
                    parts = [p for p in parts if p not in chunk]
                    n = max(n - 1, 2)
                    break
            else:
                if n >= len(parts):
                    break
                n = min(2 * n, len(parts))
        return current

    # Hierarchical: whole objects and rows first, their fields after.
    current = vector
    depth = 1
    while not over():
        parts = [p for p in atoms(current) if len(p) == depth]
        if not parts and depth > max((len(p) for p in atoms(current)),
                                     default=0):
            break
        current = ddmin(current, parts)
        depth += 1
    log('  shrunk %s: %d -> %d parts in %d oracle runs'
        % (vector['name'], len(atoms(vector)), len(atoms(current)),
           oracle.runs - start_runs))
    return current


# --- output ------------------------------------------------------------------------------

def strip_result(result):
    return {k: v for k, v in result.items() if k != 'trace'}


def read_jsonl(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    out[r['name']] = r
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('--seed', default='1')
    p.add_argument('--count', type=int, default=1000)
    p.add_argument('--start', type=int, default=0)
    p.add_argument('--out', required=True)
    p.add_argument('--per-file', type=int, default=250)
    p.add_argument('--shrink', type=int, default=1,
                   help='vectors shrunk per difference class')
    p.add_argument('--shrink-budget', type=int, default=600,
                   help='oracle runs per shrunk vector at most')
    p.add_argument('--crate', help='conformance runner binary (else built)')
    p.add_argument('--no-build', action='store_true')
    p.add_argument('--store')
    p.add_argument('--store-count', type=int, default=0)
    args = p.parse_args(argv)

    def log(msg):
        sys.stderr.write(msg + '\n')
        sys.stderr.flush()

    t0 = time.time()
    drawn = random_vectors.draw_many(args.seed, args.count, args.start)
    vectors = [v for v, _f in drawn]
    features = {v['name']: f for v, f in drawn}
    vdir = os.path.join(args.out, 'vectors')
    if os.path.isdir(vdir):
        for f in os.listdir(vdir):
            if f.endswith('.json'):
                os.remove(os.path.join(vdir, f))
    random_vectors.write_batches(vectors, vdir, args.per_file, args.seed)
    log('%d vectors written to %s' % (len(vectors), vdir))

    # real Cinder
    oracle = Oracle()
    opath = os.path.join(args.out, 'oracle.jsonl')
    expected = read_jsonl(opath)
    todo = [v for v in vectors if v['name'] not in expected]
    log('oracle: %d to run (%d from %s)' % (len(todo),
                                            len(vectors) - len(todo), opath))
    t1 = time.time()
    with open(opath, 'a') as f:
        for i, v in enumerate(todo):
            r = oracle.run(v)
            expected[v['name']] = r
            f.write(json.dumps(r) + '\n')
            if (i + 1) % 100 == 0:
                f.flush()
                el = time.time() - t1
                log('oracle %d/%d (%.2f s/vector)' % (i + 1, len(todo),
                                                      el / (i + 1)))
    oracle_s = time.time() - t1

    # the crate
    crate_bin = args.crate
    if not crate_bin:
        crate_bin = os.path.join(REPO, 'target', 'release', 'examples',
                                 'conformance')
        if not args.no_build:
            crate_bin = build_crate()
    t2 = time.time()
    got = run_crate(crate_bin, [vdir])
    crate_s = time.time() - t2
    with open(os.path.join(args.out, 'crate.jsonl'), 'w') as f:
        for v in vectors:
            f.write(json.dumps(got.get(v['name'])) + '\n')

    # compare
    per_op = collections.OrderedDict((o, [0, 0, 0]) for o, _w in
                                     random_vectors.OPERATIONS)
    classes = collections.OrderedDict()
    keys = {}
    not_cinder = []
    for v in vectors:
        name, op = v['name'], v['operation']
        exp = expected[name]
        if exp.get('outcome') in NOT_CINDER:
            err = str(exp.get('error')).strip().splitlines() or ['']
            not_cinder.append((name, exp.get('outcome'), err[-1][-300:]))
            continue
        res = got.get(name)
        if res is None:
            res = {'name': name, 'operation': op, 'outcome': 'missing'}
        bad = oracle.compare(res, exp)
        per_op[op][0] += 1
        if not bad:
            per_op[op][1] += 1
            continue
        per_op[op][2] += 1
        klass = difference_class(op, bad, exp, res)
        classes.setdefault(klass, []).append(name)
        keys[name] = shrink_key(op, bad, exp, res)
    with open(os.path.join(args.out, 'differences.json'), 'w') as f:
        json.dump(classes, f, indent=1)

    # shrink
    sdir = os.path.join(args.out, 'shrunk')
    os.makedirs(sdir, exist_ok=True)
    shrunk = collections.OrderedDict()
    by_name = {v['name']: v for v in vectors}
    for ci, (klass, names) in enumerate(classes.items()):
        for name in names[:args.shrink]:
            log('shrinking %s (%s)' % (name, klass))
            small = shrink(by_name[name], keys[name], oracle, crate_bin,
                           args.shrink_budget, log)
            small = dict(small)
            small['description'] = ('shrunk from %s; class %s'
                                    % (name, klass))
            small['expected'] = strip_result(oracle.run(small))
            path = os.path.join(sdir, 'class-%02d-%s.json' % (ci + 1, name))
            with open(path, 'w') as f:
                f.write(json.dumps(small, indent=1, sort_keys=True) + '\n')
            shrunk.setdefault(klass, []).append(path)

    # the stored set
    if args.store and args.store_count:
        keep = [v for v in vectors
                if expected[v['name']].get('outcome') not in NOT_CINDER]
        keep = keep[:args.store_count]
        stored = []
        for v in keep:
            # The name says seed and index; random_vectors.py --show NAME
            # prints the features the long description would list.
            s = {k: x for k, x in v.items() if k != 'description'}
            s['expected'] = strip_result(expected[v['name']])
            stored.append(s)
        if os.path.isdir(args.store):
            for f in os.listdir(args.store):
                if f.startswith('rnd-') and f.endswith('.json'):
                    os.remove(os.path.join(args.store, f))
        paths = random_vectors.write_batches(stored, args.store,
                                             args.per_file, args.seed)
        log('stored %d vectors in %d files under %s'
            % (len(stored), len(paths), args.store))

    report = render_report(args, per_op, classes, shrunk, not_cinder,
                           features, oracle_s, crate_s, time.time() - t0,
                           len(todo))
    with open(os.path.join(args.out, 'report.md'), 'w') as f:
        f.write(report)
    sys.stdout.write(report)
    return 1 if not_cinder else 0


def render_report(args, per_op, classes, shrunk, not_cinder, features,
                  oracle_s, crate_s, total_s, oracle_runs):
    lines = []
    cmd = ('/tmp/c/bin/python tools/oracle/campaign.py --seed %s --count %d'
           % (args.seed, args.count))
    if args.start:
        cmd += ' --start %d' % args.start
    cmd += ' --out %s' % args.out
    lines.append('# Random campaign, seed %s, %d vectors' % (args.seed,
                                                            args.count))
    lines.append('')
    lines.append('    %s' % cmd)
    lines.append('')
    lines.append('| operation | vectors | match | differ | pass rate |')
    lines.append('|---|---:|---:|---:|---:|')
    tot = [0, 0, 0]
    for op, (n, ok, bad) in per_op.items():
        tot = [tot[0] + n, tot[1] + ok, tot[2] + bad]
        lines.append('| %s | %d | %d | %d | %s |'
                     % (op, n, ok, bad, rate(ok, n)))
    lines.append('| **all** | %d | %d | %d | %s |'
                 % (tot[0], tot[1], tot[2], rate(tot[1], tot[0])))
    lines.append('')
    lines.append('Timing: oracle %.0f s for %d vectors, crate runner %.1f s, '
                 'total %.0f s.' % (oracle_s, oracle_runs, crate_s, total_s))
    lines.append('')
    if not_cinder:
        lines.append('## Vectors real Cinder rejected (generator bugs): %d'
                     % len(not_cinder))
        for name, outcome, err in not_cinder[:20]:
            lines.append('* %s %s: %s' % (name, outcome, err))
        lines.append('')
    lines.append('## Difference classes: %d' % len(classes))
    for klass, names in classes.items():
        lines.append('')
        lines.append('* `%s`: %d vector(s), e.g. %s' % (
            klass, len(names), ', '.join(names[:5])))
        common = common_features([features[n] for n in names])
        if common:
            lines.append('  * features shared by all: %s' % common)
        for path in shrunk.get(klass, []):
            lines.append('  * shrunk: %s' % path)
    lines.append('')
    return '\n'.join(lines)


def common_features(feature_sets):
    if not feature_sets:
        return ''
    first = feature_sets[0]
    out = []
    for dim, lvs in first.items():
        for lv in lvs:
            if all(lv in f.get(dim, ()) for f in feature_sets[1:]):
                out.append('%s=%s' % (dim, lv))
    return ', '.join(out[:25]) + (' ...' if len(out) > 25 else '')


def rate(ok, n):
    return '%.2f%%' % (100.0 * ok / n) if n else '-'


if __name__ == '__main__':
    sys.exit(main())
