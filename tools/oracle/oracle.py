#!/usr/bin/env python
"""Differential-testing oracle: run test vectors through real Cinder 29.

Usage (with the Cinder 29.0.0 virtualenv, see README.md):

    /tmp/c/bin/python tools/oracle/oracle.py [--check] [-v] PATH...

PATH is a vector file (one vector object or an array) or a directory (its
``*.json`` files except ``*.expected.json``, sorted by name). One JSON result
per vector is printed per line (FORMAT.md §11). With ``--check`` each result
is compared with the vector's expected result (its ``expected`` field or
``NAME.expected.json``) on the §12 fields; a differing ``trace`` is reported
as a warning only.
"""

import argparse
import logging
import os
import sys
import warnings

# Cinder's unit-test package monkey-patches eventlet on import; it has to
# come before anything else imports eventlet-sensitive modules.
warnings.simplefilter('ignore')
import cinder.tests.unit  # noqa: E402,F401

import results  # noqa: E402
import runner  # noqa: E402
import vectors  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--check', action='store_true',
                        help='compare with the expected results')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='print tracebacks of escaping errors to stderr')
    parser.add_argument('paths', nargs='+', metavar='PATH')
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)

    passed = failed = trace_warnings = 0
    for path in args.paths:
        if not os.path.exists(path):
            parser.error('no such file or directory: %s' % path)
        for fname, raw, expected in vectors.load_path(path):
            result = runner.run_vector(raw, verbose=args.verbose)
            sys.stdout.write(results.dumps(result) + '\n')
            sys.stdout.flush()
            if not args.check:
                continue
            if expected is None:
                failed += 1
                sys.stderr.write('FAIL %s: no expected result\n'
                                 % result.get('name'))
                continue
            bad, trace_differs = results.compare(result, expected)
            if bad:
                failed += 1
                sys.stderr.write('FAIL %s: %s\n'
                                 % (result.get('name'), ', '.join(bad)))
                for key in bad:
                    sys.stderr.write('  %s\n    got:      %s\n'
                                     '    expected: %s\n'
                                     % (key, results.dumps(result.get(key)),
                                        results.dumps(expected.get(key))))
            else:
                passed += 1
            if trace_differs:
                trace_warnings += 1
                sys.stderr.write(
                    'WARN %s: trace differs\n    got:      %s\n'
                    '    expected: %s\n'
                    % (result.get('name'), results.dumps(result.get('trace')),
                       results.dumps(expected.get('trace'))))
    if args.check:
        print('%d passed, %d failed' % (passed, failed))
        if trace_warnings:
            print('%d trace warnings' % trace_warnings)
        return 1 if failed else 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
