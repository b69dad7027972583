#!/usr/bin/env python3
"""Oracle for the Python value rules the crate reproduces: what CPython 3.11
and oslo.utils do with a size string or a timestamp.

Usage (with the Cinder 29.0.0 venv's interpreter, CPython 3.11):

    # regenerate tests/data/python_values_cases.json (the default seed)
    python tools/python_values_oracle.py > tests/data/python_values_cases.json

Every answer comes from calling the real functions; nothing here
re-implements them:

* ``int``: ``int(s)``: ``{"value": "<decimal text>"}`` or
  ``{"raise": "<class>", "message": "<str(exc)>"}`` (Unicode digits and
  spaces, PEP 515 underscores, the 4300-digit limit of
  ``sys.get_int_max_str_digits()``);
* ``float``: ``float(s)``: ``{"value": "<repr>"}`` or ``{"raise": ...}``;
* ``timestamp``: ``oslo_utils.timeutils.parse_isotime(s)`` (the ``iso8601``
  library) converted to UTC with ``astimezone``: ``{"utc": "<RFC 3339>"}``
  (fraction of a second without trailing zeros, as the Rust side prints
  it) or ``{"raise": "<class>", "message": "<str(exc)>"}``.
"""

import datetime
import json
import random
import sys

DIGITS = ['0', '1', '5', '9', '\u0663', '\uff13', '\U0001d7d9', '\u07c1', '\u1811', '\u0e52', '\u00b2',
          '\u2155', '\u0f29']
SPACES = [' ', '\t', '\n', '\x0b', '\x0c', '\r', '\x1c', '\x1f', '\x85', '\xa0', '\u2003', '\u3000', '\u200b']
OTHER = ['_', '+', '-', '.', 'e', 'E', 'x', '\x00', '\u00e9', ',', 'n', 'a', 'i', 'f']


def int_inputs(rng):
    fixed = ['12', ' 12 ', '\u0661\u0662', '\uff13', '\u0661_\u0662', ' \u2003 \u0663 \u3000', '\u0663_',
             '+\u0663', '\u0663\u066b\u0665', '\U0001d7d9', '\u00b2', '\x1c5\x1f', '\x0b12\x0c', '12\x00',
             '\x8512\xa0', '_1', '1__1', '1_', '+_1', '- 1', '--1', '0_0', '00', '-0', 'x' * 300,
             '1' * 4300, '1' * 4301, '-' + '1' * 4300, '0' * 4301, '0' * 4300 + '1', '1_' * 4300 + '1',
             '1' * 4301 + 'x', '1' * 4301 + '_', '1' * 4300 + '__1', '\u0663' * 4301, '1' * 4301 + '\u00e9',
             '\u00e9' + '1' * 4301, ' ' * 3 + '1' * 4301, '1' * 641 + 'x', "it's", '"\'', '\\']
    out = list(fixed)
    alphabet = DIGITS * 3 + SPACES + OTHER
    for _ in range(1500):
        out.append(''.join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))))
    return out


def float_inputs(rng):
    fixed = ['1_0.5', '1._5', '_1.0', '1.0_', '1e1_0', '1__0.0', '\x1c1.0', '\u0661.\u0665e\u0661', 'nan',
             '-nan', '+inf', 'Infinity', 'infinit', '1e', '.', '5.', '.5', '0x10', '1.5\x00', '\u00e9',
             '\u0663\u0663\u0663x', '1e400', '1' * 400, ' \u2003 2.5 ', '1e3', '3.5', '2.5', '-1.5e-3']
    out = list(fixed)
    alphabet = DIGITS * 3 + SPACES + OTHER * 2
    for _ in range(1500):
        out.append(''.join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))))
    return out


def timestamp_inputs(rng):
    fixed = ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00+24:00', '2024-01-01T00:00:00+23:59',
             '2024-01-01T00:00:00-23:59', '2024-01-01T00:00:00+25:00', '2024-01-01T00:00:00+05:60',
             '2024-01-01T00:00:00+0530', '2024-01-01T00:00:00+05', '2024-01-01T00:00:00+05:30:15',
             '2016-12-31T23:59:60Z', '2024-01-01T24:00:00Z', '2024-02-30T00:00:00Z', '2024-02-29T00:00:00Z',
             '2023-02-29T00:00:00Z', '0000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '0001-01-01T00:00:00+01:00',
             '9999-12-31T23:59:59Z', '9999-12-31T23:59:59-01:00', '10000-01-01T00:00:00Z',
             '2024-01-01T00:00:00.1234567Z', '2024-01-01T00:00:00,5Z', '2024-01-01t00:00:00z',
             '2024-01-01 00:00:00Z', '2024-01-01', '2024-01-01T00:00Z', '20240101T000000Z',
             '2024-01-01T00:00:00', '2024-01-01T00:00:00-00:00', '2024-W01-1T00:00:00Z', '2024-001T00:00:00Z',
             '2024-01-01T00:00:00.Z', '2024-01-01T00Z', '2024-123', '2024', '202401', '2024-1-5',
             '2024-01-01T00:00:00Z\n', '2024-01-01T00:00:00Z\n\n', '2024-01-01T00:00:00.9999999999999999999999Z',
             '2024-01-01T00:00:00.0' + '9' * 30 + 'Z', '2024-01-01T00:00:00.' + '9' * 28 + 'Z', '2024-01-01T00:00:00.' + '9' * 29 + 'Z',
             '2024-01-01T00:00:00.' + '9' * 27 + '85Z', '2024-01-01T00:00:00.' + '9' * 27 + '95Z',
             '2024-01-01T00:00:00.' + '1' * 21 + '5Z', '2024-01-01T00:00:00.' + '1' * 20 + '25Z',
             '2024-01-01T00:00:00.' + '1' * 20 + '35Z', '2024-01-01T12:3', '2024-01-01T1230', '2024-01-01T123',
             '2024-01-01T12:30:5', '2024-01-01T12305', '2024-01-01T12:30:05+01', '2024-01-01T12:30:05-0130',
             '2024-13-01', '2024-00-10', '2024-12-00', '2024-01-01T00:60:00Z', '\u0662024-01-01', ' 2024-01-01']
    out = list(fixed)
    pieces = ['2024', '0001', '9999', '-', '-1', '-01', '-12', '-31', '01', '12', '30', 'T', ' ', '00', '23',
              '24', '59', '60', ':', '.', ',', '5', '123', '9999999', 'Z', '+', '-', '+05', '-23', ':30', '99',
              '\n', 'x']
    for _ in range(500):
        out.append('2024' + ''.join(rng.choice(pieces) for _ in range(rng.randint(0, 9))))
    # Shaped like timestamps, with each part varied.
    years = ['2024', '2023', '0001', '9999', '0000']
    months = ['', '-1', '-01', '-02', '-12', '-13', '01', '02', '12', '13', '-00', '00']
    days = ['', '-1', '-28', '-29', '-30', '-31', '01', '29', '31', '00', '-5']
    hours = ['00', '12', '23', '24', '1']
    minutes = ['', ':30', '30', ':59', ':60', ':5']
    seconds = ['', ':00', '00', ':59', ':60', '5', ':5']
    fractions = ['', '.5', ',25', '.1234567', '.', '.999999999', '.000001']
    zones = ['', 'Z', 'z', '+01', '-23:59', '+23:59', '+24:00', '-24:00', '+0530', '+05:60', '-00:30', '+1',
             '+01:3', '-1200']
    for _ in range(2500):
        t = rng.choice(years) + rng.choice(months) + rng.choice(days)
        if rng.random() < 0.8:
            t += rng.choice([' ', 'T', 'T', 'T', 't']) + rng.choice(hours) + rng.choice(minutes)
            t += rng.choice(seconds) + rng.choice(fractions) + rng.choice(zones)
        out.append(t + rng.choice(['', '', '', '', '\n', 'x', ' ']))
    return out


def answer_int(s):
    try:
        return {'s': s, 'value': str(int(s))}
    except Exception as e:  # noqa: BLE001 - the class is the answer
        return {'s': s, 'raise': type(e).__name__, 'message': str(e)}


def answer_float(s):
    try:
        return {'s': s, 'value': repr(float(s))}
    except Exception as e:  # noqa: BLE001
        return {'s': s, 'raise': type(e).__name__, 'message': str(e)}


def answer_timestamp(s):
    from oslo_utils import timeutils
    try:
        t = timeutils.parse_isotime(s)
        u = t.astimezone(datetime.timezone.utc)
    except Exception as e:  # noqa: BLE001
        return {'s': s, 'raise': type(e).__name__, 'message': str(e)}
    text = '%04d-%02d-%02dT%02d:%02d:%02d' % (u.year, u.month, u.day, u.hour, u.minute, u.second)
    if u.microsecond:
        text += ('.%06d' % u.microsecond).rstrip('0')
    return {'s': s, 'utc': text + 'Z'}


def main():
    rng = random.Random(11)
    seen = set()

    def unique(items):
        out = []
        for i in items:
            if i not in seen:
                seen.add(i)
                out.append(i)
        return out

    cases = {'python': sys.version.split()[0], 'int_max_str_digits': sys.get_int_max_str_digits()}
    cases['int'] = [answer_int(s) for s in unique(int_inputs(rng))]
    seen.clear()
    cases['float'] = [answer_float(s) for s in unique(float_inputs(rng))]
    seen.clear()
    cases['timestamp'] = [answer_timestamp(s) for s in unique(timestamp_inputs(rng))]
    json.dump(cases, sys.stdout, ensure_ascii=True, indent=0)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
