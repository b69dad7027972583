#!/usr/bin/env python3
"""Oracle for src/location.rs: what upstream Cinder does with image-location URLs.

Usage (with the Cinder 29.0.0 venv's interpreter):

    # answer for a JSON array of strings given on stdin
    python tools/location_oracle.py < inputs.json > answers.json

    # regenerate tests/data/location_cases.json (the default seed)
    python tools/location_oracle.py --gen-inputs \
        | python tools/location_oracle.py > tests/data/location_cases.json

Every answer comes from calling the real upstream code; nothing here
re-implements it:

* ``rbd``: ``cinder.volume.drivers.rbd.RBDDriver._parse_location(url)``:
  ``{"pieces": [...]}`` or ``{"reason": "<ImageUnacceptable reason>"}``;
* ``cinder``: ``CreateVolumeFromSpecTask._extract_cinder_ids([url])``:
  ``{"id": "..."}``, ``{"ignored": true}`` (empty list returned) or
  ``{"raise": "<ExceptionClass>", "message": "<str(exc)>"}``;
* ``split``: ``oslo_utils.netutils.urlsplit(url)`` as a five-element list, or
  ``{"raise": ..., "message": ...}``;
* ``uuid_like``: ``oslo_utils.uuidutils.is_uuid_like(url)`` on the whole input.
"""

import json
import os
import random
import sys
import warnings

warnings.simplefilter('ignore')


def answer(urls):
    # Imported lazily so that --gen-inputs works without Cinder installed.
    from cinder import exception
    from cinder.volume.drivers.rbd import RBDDriver
    from cinder.volume.flows.manager.create_volume import (
        CreateVolumeFromSpecTask)
    from oslo_utils import netutils
    from oslo_utils import uuidutils

    out = []
    for url in urls:
        case = {'url': url}
        try:
            case['rbd'] = {'pieces': RBDDriver._parse_location(url)}
        except exception.ImageUnacceptable as e:
            case['rbd'] = {'reason': str(e.kwargs['reason'])}
        try:
            ids = CreateVolumeFromSpecTask._extract_cinder_ids([url])
        except Exception as e:  # upstream lets these escape the flow
            case['cinder'] = {'raise': type(e).__name__, 'message': str(e)}
        else:
            if ids:
                assert len(ids) == 1
                case['cinder'] = {'id': ids[0]}
            else:
                case['cinder'] = {'ignored': True}
        try:
            case['split'] = list(netutils.urlsplit(url))
        except Exception as e:
            case['split'] = {'raise': type(e).__name__, 'message': str(e)}
        case['uuid_like'] = uuidutils.is_uuid_like(url)
        out.append(case)
    return out


# --------------------------------------------------------------------------
# Input generation (hand-picked cases plus seeded fuzz).

U = '43a09914-e495-475f-b862-0bda3c8918e4'
UH = U.replace('-', '')

HAND = [
    # upstream test tables
    'rbd://fsid/pool/image/snap', 'rbd://%2F/%2F/%2F/%2F', 'rbd://image',
    'http://path/to/somewhere/else', 'rbd://image/extra', 'rbd://image/',
    'rbd://fsid/pool/image/', 'rbd://fsid/pool/image/snap/', 'rbd://///',
    'cinder://' + U, 'cinder://glance-store-name/' + U,
    'cinder://glance/store/name/' + U, 'cinder://glance:store:name/' + U,
    'cinder://glance:store,name/' + U, 'rbd://' + U, 'http://' + U,
    'cinder://glance:store,name/%s/garbage' % U,
    'cinder://glance:store,name/%s-garbage' % U, U,
    'cinder://store-name/12345678', 'cinder://', 'some-random-crap', '',
    # rbd
    'rbd://', 'rbd:/a/b/c/d', 'RBD://a/b/c/d', ' rbd://a/b/c/d',
    'rbd://a/b/c/d ', 'rbd://a//c/d', 'rbd://a/b/c/d/e', 'rbd:///b/c/d',
    'rbd://a/b/c/', 'rbd://a/b/c', 'rbd://%/%/%/%', 'rbd://%2/%g0/%%/%%%',
    'rbd://%ff/%C3/%C3%A9/%e2%82%ac', 'rbd://%C3%/%C3é/é%A9/%E2%82',
    'rbd://%ED%A0%80/%F0%9F%98%80/%F0%9F%98/%F4%90%80%80',
    'rbd://%C0%AF/%E0%80%AF/%F8%88%80%80%80/%FE%FF',
    'rbd://%00/%0a/%0D/%09', 'rbd://a%2Fb/c%2fd/e%252F/f',
    'rbd://fs id/po ol/im\tage/sn\nap', 'rbd://é/ü/日本/😀',
    'rbd://a/b/c/d?x=1', 'rbd://a/b/c/d#frag', 'rbd://a/b/c/d%',
    'rbd://a/b/c/%', 'rbd://a/b/c/%4', 'rbd://a/b/c/%41%42%4',
    'rbd://+/+/+/+', 'rbd://%2B/%20/%7E/~', 'rbd://\x00/\x01/\x7f/\x80',
    'rbd://a/b/c/d/', 'rbd:////', 'rbd://%2F%2F/%2F/%2F/',
    # cinder shapes
    'cinder://' + U.upper(), 'CINDER://' + U, 'Cinder://' + U,
    'cinder://{%s}' % U, 'cinder://urn:uuid:' + U, 'cinder://uuid:' + U,
    'cinder://urn:' + U, 'cinder://' + UH, 'cinder://{' + UH + '}',
    'cinder://{{' + U + '}}', 'cinder://{' + U, 'cinder://' + U + '}',
    'cinder://-' + UH, 'cinder://' + '-'.join(UH), 'cinder://' + UH + '-',
    'cinder://' + UH[:-1], 'cinder://' + UH + '0', 'cinder://0x' + UH[2:],
    'cinder://' + UH[:16] + '_' + UH[16:31], 'cinder://+' + UH[1:],
    'cinder://' + U + '/', 'cinder://store/' + U + '/', 'cinder:///' + U,
    'cinder:' + U, 'cinder:/' + U, 'cinder:store/' + U, 'cinder:////' + U,
    'cinder://store/' + U + '?a=b', 'cinder://store/' + U + '#frag',
    'cinder://' + U + '?x', 'cinder://' + U + '#x', 'cinder://?' + U,
    'cinder://#' + U, 'cinder://store?/' + U, 'cinder://store#/' + U,
    'cinder://user@' + U, 'cinder://' + U + ':8080', 'cinder://store:8080/' + U,
    'cinder://user:pw@store:1/' + U, 'cinder://@/' + U, 'cinder://:/' + U,
    ' cinder://' + U, '\x00cinder://' + U, '\x1f\x01 \tcinder://' + U,
    'cinder://' + U + ' ', 'cinder://' + U + '\t', 'cinder://' + U[:8] + '\t' + U[8:],
    'cin\nder://' + U, 'cinder:/\r/' + U, 'cinder://st\tore/' + U,
    '\x7fcinder://' + U, '\u00a0cinder://' + U, '\ufeffcinder://' + U,
    'cinder ://' + U, 'cinder+x://' + U, 'cinder.://' + U, '1cinder://' + U,
    'c1nder://' + U, 'ćinder://' + U, 'cinder', 'cinder:', 'cinder:/',
    'cinder:///', ':cinder://' + U, '://' + U, '//' + U, '/' + U,
    'cinder://[::1]/' + U, 'cinder://[::1]:8080/' + U, 'cinder://[' + U + ']',
    'cinder://[fe80::1%eth0]/' + U, 'cinder://[fe80::1%]/' + U,
    'cinder://[fe80::1%%]/' + U, 'cinder://[1.2.3.4]/' + U,
    'cinder://[v1.x]/' + U, 'cinder://[V1.x]/' + U, 'cinder://[v.x]/' + U,
    'cinder://[v1.]/' + U, 'cinder://[vg.x]/' + U, 'cinder://[vF0.:]/' + U,
    'cinder://[::ffff:1.2.3.4]/' + U, 'cinder://[::ffff:01.2.3.4]/' + U,
    'cinder://[::ffff:1.2.3.256]/' + U, 'cinder://[1:2:3:4:5:6:7:8]/' + U,
    'cinder://[1:2:3:4:5:6:7:8:9]/' + U, 'cinder://[1::2::3]/' + U,
    'cinder://[:1:2:3:4:5:6:7]/' + U, 'cinder://[1:2:3:4:5:6:7:]/' + U,
    'cinder://[::]/' + U, 'cinder://[:::]/' + U, 'cinder://[]/' + U,
    'cinder://[/' + U, 'cinder://]/' + U, 'cinder://][/' + U,
    'cinder://[a]b]/' + U, 'cinder://[[::1]]/' + U, 'cinder://a[::1]b/' + U,
    'cinder://[::1/' + U + ']', 'cinder://x/[' + U, 'cinder:[' + U,
    'http://[', 'http://]', '//[', 'x://[\'a"]', "x://['b]", 'x://["c]',
    'x://[\\]', 'x://[é\u0378\ue000\U0010ffff\u2028\x85\xa0 ]',
    'x://[\x00\x1b\x7f]', 'x://[\U0001f600]', 'x://[\u200b\u00ad]',
    'cinder://\u2100/' + U, 'cinder://\u2100' + U, 'cinder://a\uff1ab/' + U,
    'cinder://\ufe6b/' + U, 'cinder://\u2047/' + U, 'cinder://\u2a74/' + U,
    'cinder://\ufb01/' + U, 'cinder://\u2460/' + U, 'cinder://é@:/' + U,
    'http://\u2100', 'http://a/\u2100', 'http://a?\u2100', 'http://a#\u2100',
    'cinder://' + U + '\u2100', 'cinder://\uff0f/' + U,
    'rbd://[', 'rbd://a/b/c/[', 'rbd://[::1]/b/c/d',
    # whole-input uuid spellings (is_uuid_like on the raw string)
    '{' + U + '}', 'urn:uuid:' + U, 'uuid:' + U, 'urn:' + U,
    'urn:uuid:{' + U + '}', '{urn:uuid:' + U + '}', 'uurn:rn:' + U,
    'uuuid:id:' + U, 'urn:urn:' + U, 'urnuuid::' + U, '---' + UH + '---',
    '{-' + UH + '-}', '-{' + UH + '}-', U.upper(), UH.upper(),
    ' ' + UH[1:], UH[1:] + '\n', '\u0661' + UH[1:], 'ｆ' + UH[1:],
    U + '\x00', '{}' + U + '{}', '{}{' + U + '}}{',
]


def _rand_unicode(rng):
    choice = rng.random()
    if choice < 0.5:
        return chr(rng.randrange(0x80, 0x800))
    if choice < 0.8:
        c = rng.randrange(0x800, 0x10000)
        while 0xd800 <= c < 0xe000:
            c = rng.randrange(0x800, 0x10000)
        return chr(c)
    return chr(rng.randrange(0x10000, 0x110000))


TOKENS = [
    'rbd://', 'cinder://', 'CINDER:', 'cinder:', '://', '//', '/', '/', '/',
    '%', '%2F', '%2f', '%ff', '%C3', '%A9', '%C3%A9', '%E2%82%AC', '%F0', '%9F',
    '%41', '%4', '%g1', '%25', '%00', '%0A', '%80', '%BF', '%ED%A0%80',
    '[', ']', '?', '#', '@', ':', '::', '{', '}', '-', 'urn:', 'uuid:',
    '\t', '\r', '\n', '\x00', '\x01', '\x1f', ' ', '\x7f', '\x85', '\xa0',
    'é', '\u2100', '\ufe55', '\uff20', '\U0001f600', '\u0378', '\u2028',
    '\ufeff', '\ue000', '\U0010ffff', '\u0301', '\uff0f', '\ufb01',
    'a', 'b', 'Z', '0', '9', 'f', 'fsid', 'pool', 'img', 'snap', 'store',
    U, UH, U.upper(), '1.2.3.4', '::1', 'fe80::1', '%eth0', 'v1.x', '8080',
    "'", '"', '\\',
]


def _token_fuzz(rng):
    n = rng.randrange(0, 12)
    parts = []
    for _ in range(n):
        if rng.random() < 0.1:
            parts.append(_rand_unicode(rng))
        else:
            parts.append(rng.choice(TOKENS))
    return ''.join(parts)


def _pct_bytes(rng):
    n = rng.randrange(1, 7)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            b = rng.choice([0x00, 0x2f, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1,
                            0xc2, 0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0,
                            0xf4, 0xf5, 0xf8, 0xfe, 0xff, 0x9f, 0xa0, 0x90,
                            0x8f])
        else:
            b = rng.randrange(256)
        fmt = '%%%02X' if rng.random() < 0.5 else '%%%02x'
        out.append(fmt % b)
        if rng.random() < 0.15:
            out.append(rng.choice(['a', 'é', '%', '%4', '\U0001f600', '/']))
    return ''.join(out)


def _rbd_fuzz(rng):
    n = rng.choice([1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5])
    pieces = []
    for _ in range(n):
        r = rng.random()
        if r < 0.02:
            pieces.append('')
        elif r < 0.6:
            pieces.append(_pct_bytes(rng))
        else:
            pieces.append(_token_fuzz(rng).replace('/', ''))
    prefix = 'rbd://' if rng.random() < 0.95 else rng.choice(
        ['rbd:/', 'RBD://', ' rbd://', 'rbd:\t//', ''])
    return prefix + '/'.join(pieces)


def _hextet(rng):
    return ''.join(rng.choice('0123456789abcdefABCDEF')
                   for _ in range(rng.choice([0, 1, 1, 2, 3, 4, 4, 5])))


def _ipv6ish(rng):
    r = rng.random()
    if r < 0.3:
        n = rng.randrange(1, 11)
        s = ':'.join(_hextet(rng) for _ in range(n))
    elif r < 0.6:
        a = ':'.join(_hextet(rng) for _ in range(rng.randrange(0, 6)))
        b = ':'.join(_hextet(rng) for _ in range(rng.randrange(0, 6)))
        s = a + '::' + b
    elif r < 0.75:
        octs = [rng.choice(['0', '1', '01', '255', '256', '999', '1000', '',
                            'a', '\u0661', '12']) for _ in range(
                                rng.choice([3, 4, 4, 4, 5]))]
        v4 = '.'.join(octs)
        s = rng.choice(['', '::', '::ffff:', '1:2:3:4:5:6:', '1::', ':']) + v4
    elif r < 0.85:
        s = 'v' + ''.join(rng.choice('0123456789abcdefgAF.:x')
                          for _ in range(rng.randrange(0, 6)))
        if rng.random() < 0.3:
            s = s.upper()
    else:
        s = _token_fuzz(rng).replace('/', '').replace('?', '').replace(
            '#', '').replace(']', '').replace('[', '')
    if rng.random() < 0.2:
        s += '%' + rng.choice(['eth0', '', '%', '1', 'é', 'a%b', ' '])
    return s


def _cinder_fuzz(rng):
    scheme = rng.choice(['cinder', 'cinder', 'cinder', 'CINDER', 'Cinder',
                         'http', 'rbd', '', 'c1+-.', '1x', 'ci nder'])
    sep = rng.choice(['://', '://', '://', ':', ':/', ':///', '//', ''])
    r = rng.random()
    if r < 0.3:
        netloc = rng.choice(['', 'store', 'glance-store', 'a:b', 'u@h',
                             'u:p@h:1', '\u2100', 'é', '\ufe13x', 'h:80',
                             U, '{' + U + '}', 'urn:uuid:' + U])
    elif r < 0.6:
        netloc = '[' + _ipv6ish(rng) + ']' + rng.choice(['', ':8080', 'x',
                                                         ':', ']', '['])
        if rng.random() < 0.2:
            netloc = rng.choice(['a', 'u@', '']) + netloc
    else:
        netloc = _token_fuzz(rng)
    ident = rng.choice([
        U, U.upper(), UH, '{' + U + '}', 'urn:uuid:' + U, U[:-1], U + 'x',
        '-'.join(UH), '', '12345678', _token_fuzz(rng)])
    tail = rng.choice(['', '', '', '/', '?q=1', '#f', '?a#b', '#a?b',
                       _token_fuzz(rng)])
    body = netloc + rng.choice(['/', '/', '', '/x/']) + ident + tail
    lead = rng.choice(['', '', '', '', ' ', '\x00', '\t', '\x1f ', '\xa0'])
    s = lead + scheme + sep + body
    if rng.random() < 0.1:
        i = rng.randrange(len(s) + 1)
        s = s[:i] + rng.choice(['\t', '\r', '\n']) + s[i:]
    return s


def _bracket_repr_fuzz(rng):
    # exercise the repr() in ipaddress' ValueError message
    chars = []
    for _ in range(rng.randrange(1, 6)):
        r = rng.random()
        if r < 0.3:
            chars.append(chr(rng.randrange(0, 0x80)))
        elif r < 0.6:
            chars.append(_rand_unicode(rng))
        else:
            chars.append(rng.choice(["'", '"', '\\', '\x7f', '\x85', '\xad',
                                     '\u2028', '\u0378', '\U000e0001',
                                     '\U000f0000', '\u3000', '\u1680']))
    host = ''.join(chars)
    for c in '/?#[]\t\r\n':
        host = host.replace(c, '')
    return 'x://[' + host + ']/'


def _uuid_fuzz(rng):
    r = rng.random()
    h = ''.join(rng.choice('0123456789abcdefABCDEF') for _ in range(
        rng.choice([31, 32, 32, 32, 33])))
    if r < 0.3:
        s = '-'.join([h[:8], h[8:12], h[12:16], h[16:20], h[20:]])
    elif r < 0.5:
        s = ''.join(c + ('-' if rng.random() < 0.1 else '') for c in h)
    else:
        s = h
    s = (rng.choice(['', '', '{', '{{', '}', 'urn:', 'uuid:', 'urn:uuid:',
                     'urn:uuid:{', '{urn:uuid:', '-', 'uurn:rn:'])
         + s + rng.choice(['', '', '}', '}}', '{', '-', '\n', 'g']))
    if rng.random() < 0.5:
        s = rng.choice(['cinder://', 'cinder://store/', 'cinder:']) + s
    return s


def gen_inputs(seed=20240601, scale=1):
    rng = random.Random(seed)
    cases = list(HAND)
    # very long strings
    cases.append('rbd://' + '/'.join(['x' * 5000] * 4))
    cases.append('rbd://' + '%41' * 3000 + '/p/i/s')
    cases.append('cinder://' + 's' * 10000 + '/' + U)
    cases.append('cinder://[' + ':' * 5000 + ']')
    cases.append('\x00' * 5000 + 'cinder://' + U)
    cases.append('cinder://' + U + '/' * 5000)
    cases.append('%' * 10000)
    cases.append('rbd://' + '/' * 3000)
    cases.append('é' * 4000)
    # fuzz
    for _ in range(900 * scale):
        cases.append(_rbd_fuzz(rng))
    for _ in range(1000 * scale):
        cases.append(_cinder_fuzz(rng))
    for _ in range(400 * scale):
        cases.append(_token_fuzz(rng))
    for _ in range(250 * scale):
        cases.append(_bracket_repr_fuzz(rng))
    for _ in range(300 * scale):
        cases.append(_uuid_fuzz(rng))
    for _ in range(150 * scale):
        cases.append('cinder://[' + _ipv6ish(rng) + ']/' + U)
    seen = set()
    out = []
    for c in cases:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def main():
    args = sys.argv[1:]
    if '--gen-inputs' in args:
        # --seed N / --scale K give other (larger) fuzz sets for ad-hoc runs:
        # LOCATION_CASES=<answers.json> cargo test --test location_python_diff
        seed = int(args[args.index('--seed') + 1]) if '--seed' in args \
            else 20240601
        scale = int(args[args.index('--scale') + 1]) if '--scale' in args \
            else 1
        json.dump(gen_inputs(seed, scale), sys.stdout, ensure_ascii=False,
                  indent=0)
        sys.stdout.write('\n')
        return
    urls = json.load(sys.stdin)
    # Cinder logs through oslo.log; keep stdout clean.
    with open(os.devnull, 'w') as devnull:
        old = sys.stderr
        sys.stderr = devnull
        try:
            result = answer(urls)
        finally:
            sys.stderr = old
    # one case per line: small, and reviewable in diffs
    sys.stdout.write('[\n')
    sys.stdout.write(',\n'.join(json.dumps(case, ensure_ascii=False)
                                for case in result))
    sys.stdout.write('\n]\n')


if __name__ == '__main__':
    main()
