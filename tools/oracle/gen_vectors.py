#!/usr/bin/env python
"""Generate the oracle vector corpus tests/vectors/oracle/.

Usage (with the Cinder 29.0.0 virtualenv, see README.md), from the
repository root:

    /tmp/c/bin/python tools/oracle/gen_vectors.py [--out DIR] [--no-run]
                                                  [--only PREFIX] [--list]

Every vector is built from a small template (the shapes of the sample
vectors in /work/shared/conformance/vectors) by varying one or two things at
a time; the families follow cinder-rules.md sections 2-5 and 11. Nothing is
random: the same vectors and (the oracle being deterministic) the same
expected results are written on every run.

For each vector ``NAME`` the generator writes ``DIR/NAME.json`` and, by
running the oracle in-process (runner.run_vector), ``DIR/NAME.expected.json``
(the result object, pretty-printed with sorted keys in the layout of the
sample expected files). Stale ``*.json`` files of DIR that are no longer
generated are removed. A vector whose result is a ``vector_error`` or
``harness_error`` makes the run fail (exit status 1).

``--no-run`` writes the vectors only; ``--only PREFIX`` restricts the run to
the vectors whose name starts with PREFIX (nothing is removed then);
``--list`` prints the per-family counts and exits.
"""

import argparse
import collections
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUT = os.path.join(REPO, 'tests', 'vectors', 'oracle')
SAMPLES = '/work/shared/conformance/vectors'

GiB = 1 << 30
MiB = 1 << 20

FSID = '7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5'
OTHER_FSID = '7d5ab9c0-5e1b-4a2b-9c3d-0000000000aa'
IMG = 'aaaaaaaa-0000-4000-8000-000000000001'
IMG2 = 'aaaaaaaa-0000-4000-8000-000000000002'
IMG3 = 'aaaaaaaa-0000-4000-8000-000000000003'
VOL = '11111111-1111-4111-8111-111111111111'
SRC = '33333333-3333-4333-8333-333333333333'
SNAP = '55555555-5555-4555-8555-555555555555'
BACKUP = '88888888-8888-4888-8888-888888888888'
GROUP = '99999999-9999-4999-8999-999999999999'
HOST = 'hostA@ceph#ceph'


def iv(n):
    """Image-volume ids 2222...2221, 2222...2222, ..."""
    return '22222222-2222-4222-8222-22222222222%d' % n


def par(n):
    """Parent-chain volume ids 4444...4441, ..."""
    return '44444444-4444-4444-8444-44444444444%d' % n


def cv(n):
    """Cache image-volume ids 6666...6661, ..."""
    return '66666666-6666-4666-8666-66666666666%d' % n


def child(n):
    return '77777777-7777-4777-8777-77777777777%d' % n


def vn(vol_id):
    return 'volume-%s' % vol_id


def ts(seconds):
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return '2024-01-01T%02d:%02d:%02dZ' % (h, m, s)


# --- building blocks ---------------------------------------------------------

def rbd_url(pool='images', image=IMG, snap='snap', fsid=FSID):
    return 'rbd://%s/%s/%s/%s' % (fsid, pool, image, snap)


def loc(url):
    return {'url': url, 'metadata': {}}


def rimg(size=GiB, snaps=None, parent=None, **kw):
    d = {'size': size}
    if snaps is not None:
        d['snaps'] = snaps
    if parent is not None:
        d['parent'] = parent
    d.update(kw)
    return d


def snap(name, protected=True, **kw):
    d = {'name': name, 'protected': protected}
    d.update(kw)
    return d


def pref(image, snap_name, pool='volumes'):
    return {'pool': pool, 'image': image, 'snap': snap_name}


def glance_pool(protected=True, image=IMG, **kw):
    return {image: rimg(snaps=[snap('snap', protected)], **kw)}


def cluster(volumes=None, images=None, **kw):
    pools = {'volumes': volumes or {}}
    if images is not None:
        pools['images'] = images
    c = {'fsid': FSID, 'pools': pools}
    c.update(kw)
    return c


def image(**kw):
    d = {'id': IMG, 'owner': 'project-1', 'status': 'active',
         'container_format': 'bare', 'disk_format': 'raw', 'size': GiB,
         'virtual_size': GiB, 'min_disk': 0, 'locations': []}
    d.update(kw)
    return d


def target(size=10, **kw):
    d = {'id': VOL, 'host': HOST, 'project_id': 'project-1', 'size': size}
    d.update(kw)
    return d


def dbvol(vol_id, size=1, **kw):
    d = {'id': vol_id, 'host': HOST, 'project_id': 'project-1', 'size': size}
    d.update(kw)
    return d


def cfg(**kw):
    d = {'rbd_pool': 'volumes'}
    d.update(kw)
    return d


CACHE_CFG = {'cinder_internal_tenant_project_id': 'internal-project',
             'cinder_internal_tenant_user_id': 'internal-user',
             'image_volume_cache_enabled': True}
CINDER_CFG = {'allowed_direct_url_schemes': ['cinder']}


# --- the registry --------------------------------------------------------------

VECTORS = collections.OrderedDict()


def add(name, description, operation, **fields):
    if name in VECTORS:
        raise SystemExit('duplicate vector name %s' % name)
    v = {'name': name, 'description': description, 'operation': operation}
    for key, value in fields.items():
        if value is not None:
            v[key] = copy.deepcopy(value)
    VECTORS[name] = v
    return v


# =============================================================================
# create_from_image: driver clone (RBD clone_image, cinder-rules §4.1, §5.1-5.4)
# =============================================================================

GOOD = rbd_url()

# (tag, url, extra pools for the cluster, why it is not cloneable)
BAD_LOCATIONS = [
    ('arity3', 'rbd://%s/images/%s' % (FSID, IMG),
     '3 components: "Not an RBD snapshot" (RBD-4)'),
    ('arity5', rbd_url() + '/extra',
     '5 components: "Not an RBD snapshot" (RBD-4)'),
    ('arity1', 'rbd://%s' % IMG,
     'the 1-part form glance writes without an fsid (RBD-4)'),
    ('blank-pool', 'rbd://%s//%s/snap' % (FSID, IMG),
     'blank pool component (RBD-3)'),
    ('trailing-slash', rbd_url() + '/',
     'trailing slash: blank 5th component, reported as blank before the '
     'arity check (RBD-3)'),
    ('all-blank', 'rbd://///', 'only blank components (RBD-3)'),
    ('upper-scheme', 'RBD://%s/images/%s/snap' % (FSID, IMG),
     'prefix check is case-sensitive (RBD-1)'),
    ('http', 'http://glance.example/v2/images/%s' % IMG,
     'not an rbd:// URL (RBD-1)'),
    ('other-fsid', rbd_url(fsid=OTHER_FSID), 'fsid of another cluster (RBD-6)'),
    ('missing-snap', rbd_url(snap='nosuchsnap'),
     'snapshot absent: opening image@snap raises ImageNotFound (RBD-8)'),
    ('missing-image', rbd_url(image=IMG2),
     'image absent in the pool (RBD-8)'),
    ('unreadable', rbd_url(pool='secret'),
     'image unreadable: PermissionError is an rbd.Error (RBD-8)'),
    ('pct-slash', 'rbd://%s/images/%s%%2Fx/snap' % (FSID, IMG),
     '%2F decodes to "/" inside the image component: image "<id>/x" does '
     'not exist (RBD-2)'),
    ('upper-fsid', rbd_url(fsid=FSID.upper()),
     'fsid in upper case: compared case-sensitively with the cluster fsid '
     '(RBD-6)'),
]


def _img_cluster(extra_images=None, protected=True, **kw):
    images = glance_pool(protected)
    pools = {'volumes': {}, 'images': images,
             'secret': glance_pool(readable=False)}
    if extra_images:
        for pool, imgs in extra_images.items():
            pools.setdefault(pool, {}).update(imgs)
    c = {'fsid': FSID, 'pools': pools}
    c.update(kw)
    return c


def fam_img():
    base = dict(config=cfg(), volume=target())

    def img_vec(name, desc, locations=None, cl=None, im=None, **kw):
        fields = dict(base)
        fields['cluster'] = cl if cl is not None else _img_cluster()
        fields['image'] = im if im is not None else image(
            locations=[loc(u) for u in locations])
        fields.update(kw)
        add(name, desc, 'create_from_image', **fields)

    img_vec('img-loc-good-only', 'one cloneable rbd:// location: driver '
            'clone_image clones it and resizes to the volume size (RBD-11)',
            [GOOD])
    for tag, url, why in BAD_LOCATIONS:
        img_vec('img-loc-%s-only' % tag,
                'single rbd location not cloneable, %s: clone_image returns '
                'False, download path (RBD-5..8)' % why, [url])
        img_vec('img-loc-%s-then-good' % tag,
                'first location not cloneable (%s), second cloneable: the '
                'second is cloned (RBD-10/11)' % why, [url, GOOD])
    # the cloneable location at different positions among failing ones
    bads = [u for _t, u, _w in BAD_LOCATIONS]
    img_vec('img-loc-good-first-of-3', 'cloneable location first, two bad '
            'ones after it: the first wins, later ones never checked',
            [GOOD, bads[8], bads[0]])
    img_vec('img-loc-good-last-of-4', 'three different failures (other '
            'fsid, missing snapshot, blank component) then the cloneable '
            'one', [bads[8], bads[9], bads[3], GOOD])
    img_vec('img-loc-good-middle-of-3', 'unreadable, cloneable, arity: '
            'the middle one is cloned', [bads[11], GOOD, bads[0]])
    img_vec('img-loc-all-bad-5', 'five failing locations for five different '
            'reasons: download', [bads[0], bads[3], bads[8], bads[9],
                                  bads[11]])
    img_vec('img-loc-two-good-second-pool', 'two cloneable locations in '
            'different pools: list order decides (first = images2)',
            [rbd_url(pool='images2'), GOOD],
            cl=_img_cluster({'images2': glance_pool()}))
    img_vec('img-loc-pct-pool-cloneable', 'percent-encoded pool name '
            '(%69mages = images) is decoded: cloneable (RBD-2)',
            ['rbd://%s/%%69mages/%s/snap' % (FSID, IMG)])
    img_vec('img-loc-pct-slash-existing', 'image component with %2F decoding '
            'to an existing image name "dir/img": cloneable (RBD-2)',
            ['rbd://%s/images/dir%%2Fimg/snap' % FSID],
            cl=_img_cluster({'images': {'dir/img': rimg(
                snaps=[snap('snap')])}}))
    img_vec('img-loc-pct-fsid-cloneable', 'fsid with a percent-encoded '
            'dash (%2D): decoded before the fsid comparison, cloneable',
            ['rbd://%s/images/%s/snap' % (FSID.replace('-', '%2D'), IMG)])
    img_vec('img-loc-pct-snap', 'snapshot component percent-encoded '
            '(%73nap = snap): cloneable', [rbd_url(snap='%73nap')])
    # missing pool: rados ObjectNotFound is not an rbd.Error -> whole create
    img_vec('img-loc-missing-pool-then-good', 'a location in a pool this '
            'cluster does not have, before a cloneable one: opening the pool '
            'raises rados.ObjectNotFound -> VolumeBackendAPIException, the '
            'whole create fails (the good location is never tried)',
            [rbd_url(pool='nopool'), GOOD])
    img_vec('img-loc-good-then-missing-pool', 'cloneable location before one '
            'in a missing pool: the first is cloned, the second never opened',
            [GOOD, rbd_url(pool='nopool')])
    img_vec('img-loc-missing-pool-other-fsid', 'a missing pool in another '
            'cluster\'s URL: the fsid check comes first, so no pool is opened '
            '(download)', [rbd_url(pool='nopool', fsid=OTHER_FSID)])
    img_vec('img-loc-missing-pool-qcow2', 'a missing pool with a qcow2 '
            'image: disk format is checked before opening (download)',
            None, im=image(disk_format='qcow2',
                           locations=[loc(rbd_url(pool='nopool'))]))
    # disk / container formats
    for fmt in ('qcow2', 'vmdk', 'iso', 'vhd', 'RAW', 'ami'):
        img_vec('img-format-%s' % fmt.lower() + ('-upper' if fmt == 'RAW'
                                                  else ''),
                'cloneable location but disk_format %s: _is_cloneable '
                'requires exactly "raw" (RBD-7), download' % fmt, None,
                im=image(disk_format=fmt, locations=[loc(GOOD)]))
    for cf in ('ovf', 'docker', 'ova', 'compressed', 'aki'):
        img_vec('img-container-%s' % cf,
                'container_format %s with a raw disk: _is_cloneable ignores '
                'the container format (Q13), cloned' % cf, None,
                im=image(container_format=cf, locations=[loc(GOOD)]))
    # clone v2 and protection
    img_vec('img-clone-v2-unprotected', 'clone v2 cluster, glance snapshot '
            'not protected: clone allowed', [GOOD],
            cl=_img_cluster(protected=False, clone_v2=True))
    img_vec('img-clone-v2-protected', 'clone v2 cluster, protected snapshot: '
            'cloned', [GOOD], cl=_img_cluster(clone_v2=True))
    img_vec('img-clone-v1-unprotected-then-good', 'clone v1, first location '
            'cloneable by _is_cloneable but its snapshot unprotected: the '
            'clone raises InvalidArgument, no fallback to the second',
            [rbd_url(pool='images2'), GOOD],
            cl=_img_cluster({'images2': glance_pool(False)}))
    img_vec('img-dest-exists', 'the destination volume image already exists: '
            'librbd clone raises ImageExists, create fails', [GOOD],
            cl=_img_cluster({'volumes': {vn(VOL): rimg()}}))
    # location APIs (MGR-5, §7.1)
    img_vec('img-legacy-direct-url-only-cloned', 'legacy location API, direct_url '
            'cloneable, no locations list: [direct_url] is tried', None,
            im=image(direct_url=GOOD, locations=[]),
            glance={'location_api': 'legacy'})
    img_vec('img-legacy-direct-url-and-locations-bad', 'legacy API, '
            'direct_url cloneable but the locations list only has a bad '
            'URL: only the list is tried (RBD-10), download', None,
            im=image(direct_url=GOOD, locations=[loc(bads[8])]),
            glance={'location_api': 'legacy'})
    img_vec('img-legacy-direct-url-and-locations-good', 'legacy API, '
            'direct_url bad, locations list has a bad then a good URL: the '
            'list is tried in order', None,
            im=image(direct_url=bads[8], locations=[loc(bads[9]), loc(GOOD)]),
            glance={'location_api': 'legacy'})
    img_vec('img-legacy-locations-null', 'legacy API, direct_url cloneable, '
            'locations null: (direct_url, []) and direct_url is cloned', None,
            im=image(direct_url=GOOD, locations=None),
            glance={'location_api': 'legacy'})
    img_vec('img-legacy-no-direct-url', 'legacy API without direct_url: '
            'the locations are not shown by GET, nothing to clone', None,
            im=image(direct_url=None, locations=[loc(GOOD)]),
            glance={'location_api': 'legacy'})
    img_vec('img-new-empty-falls-back-to-get', 'new location API returns an '
            'empty list: Cinder falls back to GET and clones the direct_url',
            None, im=image(direct_url=GOOD, locations=[]))
    img_vec('img-new-empty-no-direct-url', 'new API empty list, no '
            'direct_url: (None, []) -> download', None,
            im=image(direct_url=None, locations=[]))
    img_vec('img-new-list-ignores-direct-url', 'new API with a non-empty '
            'list (bad URL) and a cloneable direct_url: the direct_url is not '
            'returned, download', None,
            im=image(direct_url=GOOD, locations=[loc(bads[8])]))
    img_vec('img-new-locations-null-direct-url', 'new API, locations null '
            '(no list) and a cloneable direct_url: GET fallback clones it',
            None, im=image(direct_url=GOOD, locations=None))
    img_vec('img-url-null-then-good', 'location entry with url null before a '
            'cloneable one: skipped', None,
            im=image(locations=[{'url': None, 'metadata': {}}, loc(GOOD)]))
    img_vec('img-url-null-only', 'single location with url null: nothing '
            'cloneable, download', None,
            im=image(locations=[{'url': None, 'metadata': {}}]))
    img_vec('img-url-empty-string', 'location url "": skipped (falsy)', None,
            im=image(locations=[loc(''), loc(GOOD)]))
    img_vec('img-location-store-metadata', 'multistore location metadata '
            '{"store": "ceph"} does not matter for the driver clone', None,
            im=image(locations=[{'url': GOOD, 'metadata': {'store': 'ceph'}}]))
    # stripe unit / chunk size (RBD-13)
    for su in (8,):
        img_vec('img-stripe-unit-%dm' % su, 'glance image stripe unit %d MiB '
                '> rbd_store_chunk_size 4 MiB: order from the larger one '
                '(not visible in rbd_ops)' % su, [GOOD],
                cl=_img_cluster({'images': {IMG: rimg(
                    snaps=[snap('snap')], stripe_unit=su * MiB)}}))
    for chunk in (1, 8, 32):
        img_vec('img-chunk-%d' % chunk, 'rbd_store_chunk_size %d MiB with a '
                '4 MiB glance stripe unit: clone + resize' % chunk, [GOOD],
                config=cfg(rbd_store_chunk_size=chunk))
    # sizes (IMG-2)
    for tag, vs, vol_size in [('null', None, 10), ('zero', 0, 10),
                              ('equal', 10 * GiB, 10),
                              ('one-byte-over', 10 * GiB + 1, 10),
                              ('bigger', 11 * GiB, 10),
                              ('smaller', 3 * GiB, 10)]:
        img_vec('img-vsize-%s' % tag, 'virtual_size %s against a %d GiB '
                'volume: IMG-2 check (GiB-ceil(virtual_size) > size -> '
                'ImageUnacceptable before any clone)' % (vs, vol_size),
                None, im=image(virtual_size=vs, locations=[loc(GOOD)]),
                volume=target(vol_size))
    img_vec('img-volume-equal-image', 'volume size equal to the image (1 '
            'GiB): the clone is still resized (always, RBD-11)', [GOOD],
            volume=target(1))
    img_vec('img-volume-smaller-than-image-size', 'image size 4 GiB, '
            'virtual_size null, volume 1 GiB: the manager does not check '
            'image size; the clone is resized to the volume size', None,
            im=image(size=4 * GiB, virtual_size=None, locations=[loc(GOOD)]),
            volume=target(1),
            cluster=_img_cluster({'images': {IMG: rimg(
                size=4 * GiB, snaps=[snap('snap')])}}))
    img_vec('img-encrypted-skips-driver-clone', 'encrypted volume with a '
            'cloneable location: clone_image is not called (IMG-4), '
            'download to an encrypted volume', [GOOD],
            volume=target(encryption_key_id='key-1', volume_type='luks'),
            db={'volume_types': [{'name': 'luks', 'encryption': {}}]})
    img_vec('img-cinder-scheme-allowed-rbd-first', 'cinder scheme allowed '
            'and a cloneable rbd location: the driver clone comes first '
            '(IMG-4), the image-volume clone is not tried', [GOOD],
            config=cfg(**CINDER_CFG))
    img_vec('img-multiattach-type', 'cloneable location, multiattach volume '
            'type: _setup_volume after the clone disables the exclusive-lock '
            'family features (none set with layering only)', [GOOD],
            volume=target(volume_type='multi'),
            db={'volume_types': [{'name': 'multi', 'extra_specs': {
                'multiattach': '<is> True'}}]})
    img_vec('img-multiattach-features-61', 'cloneable location, multiattach '
            'type, glance image features 61: the clone inherits the pool '
            'features and _setup_volume disables exclusive-lock etc.',
            [GOOD], volume=target(volume_type='multi'),
            db={'volume_types': [{'name': 'multi', 'extra_specs': {
                'multiattach': '<is> True'}}]},
            cluster=_img_cluster(rbd_default_features=61))
    img_vec('img-replication-and-multiattach', 'cloneable location, type '
            'with both replication_enabled and multiattach: _setup_volume '
            'raises, _clone removes the clone and raises ReplicationError',
            [GOOD], volume=target(volume_type='repmulti'),
            db={'volume_types': [{'name': 'repmulti', 'extra_specs': {
                'multiattach': '<is> True',
                'replication_enabled': '<is> True'}}]})
    img_vec('img-unreachable-cluster', 'cluster unreachable: driver not '
            'initialized, the create fails before any strategy', [GOOD],
            cluster=_img_cluster(reachable=False))
    img_vec('img-status-not-active', 'image status queued: the manager does '
            'not check the status (API does), the clone proceeds', None,
            im=image(status='queued', locations=[loc(GOOD)]))


# =============================================================================
# create_from_image: cinder:// image-volume clone (§4.2, §4.3, Q6, Q7)
# =============================================================================

def civ_cluster(ids=(1,), extra=None, **kw):
    vols = {vn(iv(n)): rimg() for n in ids}
    if extra:
        vols.update(extra)
    c = {'fsid': FSID, 'pools': {'volumes': vols}}
    c.update(kw)
    return c


def fam_civ():
    def civ(name, desc, urls=None, vols=None, im=None, config=None,
            volume=None, cl=None, **kw):
        fields = {
            'config': config if config is not None else cfg(**CINDER_CFG),
            'volume': volume if volume is not None else target(),
            'db': {'volumes': vols if vols is not None else [dbvol(iv(1))]},
            'cluster': cl if cl is not None else civ_cluster(),
            'image': im if im is not None else image(
                locations=[loc(u) for u in urls]),
        }
        fields.update(kw)
        add(name, desc, 'create_from_image', **fields)

    I1 = iv(1)
    # an id with hex letters, for the case-sensitivity vectors
    IX = 'abcdef00-2222-4222-8222-22222222222a'
    case_vols = [dbvol(IX)]
    case_cl = civ_cluster((), extra={vn(IX): rimg()})
    forms = [
        ('legacy', 'cinder://%s' % I1, 'legacy cinder://<id>'),
        ('multistore', 'cinder://store1/%s' % I1,
         'multistore cinder://<store>/<id>'),
        ('triple-slash', 'cinder:///%s' % I1, 'cinder:///<id> (empty netloc)'),
        ('opaque', 'cinder:%s' % I1, 'cinder:<id> (no //)'),
        ('deep-path', 'cinder://a/b/%s' % I1, 'cinder://a/b/<id>'),
        ('upper-scheme', 'CINDER://%s' % I1, 'scheme upper case (urlsplit '
         'lower-cases it)'),
        ('query', 'cinder://%s?store=x' % I1, 'query split off'),
        ('fragment', 'cinder://%s#frag' % I1, 'fragment split off'),
        ('store-query-fragment', 'cinder://store1/%s?a=b#c' % I1,
         'multistore with query and fragment'),
        ('urn-id', 'cinder:urn:uuid:%s' % I1, 'urn:uuid: id (uuid-like), no '
         'row has that id'),
        ('nodash-id', 'cinder://%s' % I1.replace('-', ''), 'id without '
         'dashes: uuid-like, no row has that id'),
        ('trailing-slash', 'cinder://%s/' % I1, 'trailing slash: last path '
         'segment empty, rejected'),
        ('garbage-path', 'cinder://%s/garbage' % I1, '/garbage: last segment '
         'not a uuid'),
        ('id-garbage', 'cinder://store1/%s-garbage' % I1, '<id>-garbage'),
        ('short-id', 'cinder://store1/12345678', 'short id'),
        ('userinfo', 'cinder://user@%s' % I1, 'userinfo in the netloc'),
        ('port', 'cinder://%s:80' % I1, 'port in the netloc'),
        ('empty', 'cinder://', 'no id at all'),
        ('bare-uuid', I1, 'a bare uuid (no scheme)'),
        ('http', 'http://%s' % I1, 'other scheme'),
    ]
    for tag, url, why in forms:
        civ('civ-url-%s' % tag, 'image-volume URL form: %s (CIV-4); the '
            'image volume is on the same host and owned by the project' % why,
            [url])
    civ('civ-url-bad-ipv6-only', 'malformed cinder://[bad netloc: '
        'urlsplit raises ValueError, which _extract_cinder_ids does not catch',
        ['cinder://[bad'])
    civ('civ-url-bad-ipv6-then-good', 'cinder://[bad before a valid '
        'cinder:// URL: the ValueError escapes regardless (set order)',
        ['cinder://[bad', 'cinder://%s' % I1])
    civ('civ-url-garbage-then-good', 'rejected URL then a valid one: a bad '
        'URL never stops later URLs (CIV-4)',
        ['cinder://%s/garbage' % I1, 'cinder://%s' % I1])
    civ('civ-url-duplicates', 'the same cinder:// URL twice: the set removes '
        'the duplicate', ['cinder://%s' % I1, 'cinder://%s' % I1])
    civ('civ-url-legacy-and-multistore-same-id', 'cinder://<id> and '
        'cinder://store/<id> for the same volume: one candidate',
        ['cinder://%s' % I1, 'cinder://store1/%s' % I1])
    civ('civ-url-upper-id', 'image-volume URL form: upper-case id '
        '(uuid-like, CIV-4) but the DB IN filter is case-sensitive: no row, '
        'download', ['cinder://%s' % IX.upper()], vols=case_vols,
        cl=case_cl)
    civ('civ-url-lower-id-letters', 'the same id in lower case: cloned',
        ['cinder://%s' % IX], vols=case_vols, cl=case_cl)
    civ('civ-url-upper-and-lower', 'upper-case and lower-case forms of the '
        'id: only the lower-case one matches the row',
        ['cinder://%s' % IX.upper(), 'cinder://%s' % IX], vols=case_vols,
        cl=case_cl)
    civ('civ-url-braced-id-letters', '{}-braced lower-case id: uuid-like, '
        'the braces stay in the id, no row', ['cinder://{%s}' % IX],
        vols=case_vols, cl=case_cl)
    civ('civ-direct-url-dup-location', 'legacy API: direct_url and the '
        'locations list name the same cinder:// URL', None,
        im=image(direct_url='cinder://%s' % I1,
                 locations=[loc('cinder://%s' % I1)]),
        glance={'location_api': 'legacy'})
    civ('civ-direct-url-only-legacy', 'legacy API: only a cinder:// '
        'direct_url', None, im=image(direct_url='cinder://%s' % I1),
        glance={'location_api': 'legacy'})
    civ('civ-new-empty-direct-url', 'new API empty list, GET fallback '
        'returns a cinder:// direct_url', None,
        im=image(direct_url='cinder://%s' % I1))
    civ('civ-url-null-location', 'a location with url null next to a '
        'cinder:// URL: None is in the candidate set and skipped', None,
        im=image(locations=[{'url': None, 'metadata': {}},
                            loc('cinder://%s' % I1)]))
    civ('civ-rbd-and-cinder', 'non-cloneable rbd:// location (other fsid) '
        'and a cinder:// one: driver clone fails, image-volume clone used',
        [rbd_url(fsid=OTHER_FSID), 'cinder://%s' % I1])
    # several candidates, created_at ordering, ties
    two = [dbvol(iv(1), created_at=ts(10)), dbvol(iv(2), created_at=ts(20))]
    urls12 = ['cinder://%s' % iv(1), 'cinder://%s' % iv(2)]
    civ('civ-order-newest-first', 'two accessible image volumes: the newest '
        'created_at is chosen (DB order, Q6)', urls12, vols=two,
        cl=civ_cluster((1, 2)))
    civ('civ-order-newest-first-reversed', 'same, created_at reversed: '
        'image volume 1 is newest and chosen', urls12,
        vols=[dbvol(iv(1), created_at=ts(30)), dbvol(iv(2),
                                                      created_at=ts(20))],
        cl=civ_cluster((1, 2)))
    civ('civ-order-tie-id-desc', 'equal created_at: ties broken by id '
        'descending (…222 before …221)', urls12,
        vols=[dbvol(iv(1), created_at=ts(5)), dbvol(iv(2), created_at=ts(5))],
        cl=civ_cluster((1, 2)))
    civ('civ-order-tie-id-desc-3', 'three candidates with equal created_at: '
        'highest id first', ['cinder://%s' % iv(n) for n in (3, 1, 2)],
        vols=[dbvol(iv(n), created_at=ts(5)) for n in (1, 2, 3)],
        cl=civ_cluster((1, 2, 3)))
    civ('civ-order-newest-inaccessible', 'newest image volume not accessible '
        '(tagged with another owner, image owned by another project): the '
        'older accessible one is used', urls12,
        im=image(owner='project-9', locations=[loc(u) for u in urls12]),
        vols=[dbvol(iv(1), created_at=ts(10),
                    metadata={'image_owner': 'project-9'}),
              dbvol(iv(2), created_at=ts(20),
                    metadata={'image_owner': 'project-8'})],
        cl=civ_cluster((1, 2)))
    civ('civ-order-newest-missing-in-ceph', 'newest accessible image volume '
        'has no RBD image: only the first accessible candidate is tried, '
        'its failure is not retried with the older one', urls12, vols=two,
        cl=civ_cluster((1,)))
    civ('civ-order-newest-other-host', 'newest candidate on another host is '
        'filtered out by the host filter; the older one on this host is used',
        urls12, vols=[dbvol(iv(1), created_at=ts(10)),
                      dbvol(iv(2), created_at=ts(20),
                            host='hostB@ceph#ceph')],
        cl=civ_cluster((1, 2)))
    civ('civ-any-status', 'image volume in status error: any status '
        'qualifies (CIV-5)', ['cinder://%s' % I1],
        vols=[dbvol(I1, status='error')])
    civ('civ-in-use-status', 'image volume in-use: still cloned',
        ['cinder://%s' % I1], vols=[dbvol(I1, status='in-use')])
    # owner filter (CIV-6)
    civ('civ-owner-none-untagged', 'image owner None and image volume '
        'without image_owner metadata: None == None, accessible (Q6)', None,
        im=image(owner=None, locations=[loc('cinder://%s' % I1)]),
        vols=[dbvol(I1, project_id='project-7')])
    civ('civ-owner-none-tagged', 'image owner None, image volume tagged '
        'image_owner=project-7: not accessible', None,
        im=image(owner=None, locations=[loc('cinder://%s' % I1)]),
        vols=[dbvol(I1, project_id='project-7',
                    metadata={'image_owner': 'project-7'})])
    civ('civ-owner-tag-matches', 'image owned by project-7, image volume '
        'tagged image_owner=project-7 in the internal project: accessible',
        None, im=image(owner='project-7', locations=[loc('cinder://%s' % I1)]),
        vols=[dbvol(I1, project_id='internal-project',
                    metadata={'image_owner': 'project-7'})])
    civ('civ-owner-other-untagged', 'image owned by project-7, untagged '
        'image volume: not accessible, download', None,
        im=image(owner='project-7', locations=[loc('cinder://%s' % I1)]))
    civ('civ-owner-requester-volume-elsewhere', 'image owned by the '
        'requesting project, image volume in another project: accessible '
        '(any project, CIV-5)', ['cinder://%s' % I1],
        vols=[dbvol(I1, project_id='project-7')])
    civ('civ-owner-tag-other-value', 'image owned by project-7, volume '
        'tagged image_owner=project-8: not accessible', None,
        im=image(owner='project-7', locations=[loc('cinder://%s' % I1)]),
        vols=[dbvol(I1, metadata={'image_owner': 'project-8'})])
    civ('civ-owner-tag-case', 'image owner "Project-7" vs tag "project-7": '
        'exact comparison, not accessible', None,
        im=image(owner='Project-7', locations=[loc('cinder://%s' % I1)]),
        vols=[dbvol(I1, metadata={'image_owner': 'project-7'})])
    # deleted rows
    civ('civ-deleted-row', 'image volume row soft-deleted: invisible, '
        'download', ['cinder://%s' % I1], vols=[dbvol(I1, deleted=True)])
    civ('civ-deleted-newest-row', 'newest candidate soft-deleted, older '
        'alive: the older one is cloned', urls12,
        vols=[dbvol(iv(1), created_at=ts(10)),
              dbvol(iv(2), created_at=ts(20), deleted=True)],
        cl=civ_cluster((1, 2)))
    civ('civ-no-row', 'cinder:// URL naming a volume with no DB row: no '
        'candidate, download', ['cinder://%s' % iv(5)])
    # host filter levels (§4.3 DB-3)
    host_cases = [
        ('pool-exact', HOST, HOST, 'pool-level value: exact match'),
        ('pool-vs-backend-row', HOST, 'hostA@ceph', 'pool-level value, '
         'row without pool: no match'),
        ('pool-vs-other-pool', HOST, 'hostA@ceph#other', 'other pool: no '
         'match'),
        ('backend-row-pool', 'hostA@ceph', HOST, 'backend-level value '
         'matches host@backend#pool'),
        ('backend-row-backend', 'hostA@ceph', 'hostA@ceph', 'backend-level '
         'value matches itself'),
        ('backend-row-other-backend', 'hostA@ceph', 'hostA@ceph2#ceph',
         'backend-level value does not match another backend (ceph2)'),
        ('host-level-any-backend', 'hostA', 'hostA@other#p', 'host-level '
         'value matches every backend of the host'),
        ('host-level-bare', 'hostA', 'hostA', 'host-level value matches '
         'itself'),
        ('host-level-prefix', 'hostA', 'hostAB@ceph#ceph', 'host-level '
         'value does not match hostAB'),
        ('wildcard-underscore', 'host_@ceph', HOST, '"_" in the volume host '
         'is an unescaped LIKE wildcard (Q7)'),
        ('wildcard-underscore-pool', 'host_@ceph#ceph', HOST, '"_" in a '
         'pool-level value: exact comparison only, no wildcard'),
        ('wildcard-percent', 'host%', HOST, '"%" in a host-level value '
         'matches anything (Q7)'),
        ('wildcard-percent-backend', 'hostA@%', HOST, '"%" in a '
         'backend-level value'),
        ('case-pool', 'HOSTA@ceph#ceph', HOST, 'exact comparison is '
         'case-sensitive'),
        ('case-backend', 'HostA@ceph', HOST, 'LIKE is case-sensitive '
         '(MySQL LIKE BINARY semantics)'),
        ('case-backend-row-upper', 'hostA@ceph', 'hostA@ceph#CEPH',
         'backend-level value, pool part in upper case: matches via LIKE'),
        ('row-host-null', HOST, None, 'image volume with host null: no match'),
    ]
    for tag, thost, rhost, why in host_cases:
        civ('civ-host-%s' % tag, 'host filter: new volume host %r, image '
            'volume host %r: %s (DB-3)' % (thost, rhost, why),
            ['cinder://%s' % I1], volume=target(host=thost),
            vols=[dbvol(I1, host=rhost)])
    # cluster_name
    civ('civ-cluster-match', 'clustered new volume: the filter is '
        'cluster_name (pool level), the image volume host is irrelevant',
        ['cinder://%s' % I1],
        volume=target(cluster_name='clusterA@ceph#ceph'),
        vols=[dbvol(I1, host='hostB@ceph#ceph',
                    cluster_name='clusterA@ceph#ceph')])
    civ('civ-cluster-row-unclustered', 'clustered new volume, image volume '
        'on the same host but without cluster_name: no match',
        ['cinder://%s' % I1],
        volume=target(cluster_name='clusterA@ceph#ceph'))
    civ('civ-cluster-backend-level', 'new volume cluster_name at backend '
        'level matches an image volume in clusterA@ceph#ceph',
        ['cinder://%s' % I1], volume=target(cluster_name='clusterA@ceph'),
        vols=[dbvol(I1, cluster_name='clusterA@ceph#ceph')])
    civ('civ-cluster-other', 'image volume in another cluster: no match',
        ['cinder://%s' % I1],
        volume=target(cluster_name='clusterA@ceph#ceph'),
        vols=[dbvol(I1, cluster_name='clusterB@ceph#ceph')])
    civ('civ-cluster-backend-cluster', 'manager in a cluster (backend.'
        'cluster) with a clustered target and matching image volume',
        ['cinder://%s' % I1],
        volume=target(cluster_name='clusterA@ceph#ceph'),
        vols=[dbvol(I1, cluster_name='clusterA@ceph#ceph')],
        backend={'cluster': 'clusterA@ceph'})
    # clone_across_pools capability
    civ('civ-across-pools-other-host', 'backend reports clone_across_pools: '
        'no host filter, an image volume on another backend is cloned',
        ['cinder://%s' % I1], vols=[dbvol(I1, host='hostB@other#pool')],
        backend={'capabilities': {'clone_across_pools': True}})
    civ('civ-across-pools-clustered', 'clone_across_pools with a clustered '
        'target: no cluster filter either', ['cinder://%s' % I1],
        volume=target(cluster_name='clusterA@ceph#ceph'),
        vols=[dbvol(I1, host='hostB@other#pool')],
        backend={'capabilities': {'clone_across_pools': True}})
    civ('civ-across-pools-false', 'clone_across_pools false: host filter '
        'applies, other host not matched', ['cinder://%s' % I1],
        vols=[dbvol(I1, host='hostB@other#pool')],
        backend={'capabilities': {'clone_across_pools': False}})
    # encrypted / formats
    civ('civ-encrypted-target', 'encrypted new volume: _clone_image_volume '
        'returns at once (CIV-1), download into an encrypted volume',
        ['cinder://%s' % I1],
        volume=target(encryption_key_id='key-1', volume_type='luks'),
        db={'volumes': [dbvol(I1)],
            'volume_types': [{'name': 'luks', 'encryption': {}}]})
    for tag, cf, df in [('ovf', 'ovf', 'raw'), ('qcow2', 'bare', 'qcow2'),
                        ('raw-upper', 'bare', 'RAW'), ('bare-upper', 'BARE',
                                                       'raw')]:
        civ('civ-format-%s' % tag, 'container %s / disk %s: CIV-2 requires '
            'exactly bare + raw, download' % (cf, df), None,
            im=image(container_format=cf, disk_format=df,
                     locations=[loc('cinder://%s' % I1)]))
    civ('civ-image-volume-missing-rbd', 'image volume row fine but its RBD '
        'image is missing: the ImageNotFound from librbd is not a '
        'CinderException, the create fails', ['cinder://%s' % I1],
        cl=civ_cluster(()))
    civ('civ-clone-snap-exists', 'image volume already carries '
        'volume-<new id>.clone_snap: create_snap raises ImageExists -> '
        'VolumeBackendAPIException (a CinderException) -> no clone, download',
        ['cinder://%s' % I1],
        cl=civ_cluster((), extra={vn(I1): rimg(snaps=[snap(
            vn(VOL) + '.clone_snap', True)])}))
    civ('civ-clone-snap-exists-unprotected', 'image volume carries an '
        'unprotected volume-<new id>.clone_snap: create_snap fails, the '
        'cleanup unprotect raises rbd InvalidArgument (not a '
        'CinderException), which escapes: the whole create fails',
        ['cinder://%s' % I1],
        cl=civ_cluster((), extra={vn(I1): rimg(snaps=[snap(
            vn(VOL) + '.clone_snap', False)])}))
    civ('civ-dest-exists', 'destination image already exists: clone fails '
        '(VolumeBackendAPIException), falls back to download which fails '
        'too', ['cinder://%s' % I1],
        cl=civ_cluster((1,), extra={vn(VOL): rimg()}))
    deep = {vn(I1): rimg(parent=pref(vn(par(1)), vn(I1) + '.clone_snap')),
            vn(par(1)): rimg(snaps=[snap(vn(I1) + '.clone_snap')])}
    civ('civ-depth-at-max-flatten', 'image volume is itself a clone (depth '
        '1) and rbd_max_clone_depth=1: the new volume is flattened and the '
        'temporary clone_snap removed', ['cinder://%s' % I1],
        config=cfg(rbd_max_clone_depth=1, **CINDER_CFG),
        cl=civ_cluster((), extra=deep))
    civ('civ-depth-below-max', 'image volume at depth 1, max 2: plain COW '
        'clone', ['cinder://%s' % I1],
        config=cfg(rbd_max_clone_depth=2, **CINDER_CFG),
        cl=civ_cluster((), extra=deep))
    civ('civ-depth-at-max-no-quota', 'depth 1 = max 1 but the new volume '
        'has use_quota false: never flattened', ['cinder://%s' % I1],
        config=cfg(rbd_max_clone_depth=1, **CINDER_CFG),
        volume=target(use_quota=False), cl=civ_cluster((), extra=deep))
    for md in (0, -1):
        civ('civ-max-depth-%s' % str(md).replace('-', 'neg'),
            'rbd_max_clone_depth %d: full copy of the image volume, then '
            'resize (no _setup_volume)' % md, ['cinder://%s' % I1],
            config=cfg(rbd_max_clone_depth=md, **CINDER_CFG))
    civ('civ-max-depth-0-same-size', 'rbd_max_clone_depth 0 and equal '
        'sizes: copy only', ['cinder://%s' % I1],
        config=cfg(rbd_max_clone_depth=0, **CINDER_CFG), volume=target(1))
    civ('civ-use-quota-false', 'temporary new volume (use_quota false): '
        'clone as usual', ['cinder://%s' % I1], volume=target(use_quota=False))
    civ('civ-size-equal', 'image volume and new volume both 1 GiB: no '
        'resize after create_cloned_volume', ['cinder://%s' % I1],
        volume=target(1))
    civ('civ-size-bigger', 'new volume 3 GiB from a 1 GiB image volume: '
        'resize', ['cinder://%s' % I1], volume=target(3))
    civ('civ-image-volume-bigger', 'image volume row 5 GiB, new volume 3 '
        'GiB (sizes differ): the clone is resized down to 3 GiB',
        ['cinder://%s' % I1], volume=target(3), vols=[dbvol(I1, size=5)],
        cl=civ_cluster((), extra={vn(I1): rimg(size=5 * GiB)}))
    civ('civ-image-volume-name-id', 'image volume with name_id: its RBD '
        'image is volume-<name_id>', ['cinder://%s' % I1],
        vols=[dbvol(I1, name_id=par(9))],
        cl=civ_cluster((), extra={vn(par(9)): rimg()}))
    for tag, schemes in [('none', []), ('file-only', ['file']),
                         ('cinder-and-file', ['file', 'cinder']),
                         ('upper', ['CINDER'])]:
        civ('civ-schemes-%s' % tag, 'allowed_direct_url_schemes %r: the '
            'image-volume clone runs only when "cinder" is listed (IMG-5)'
            % (schemes,), ['cinder://%s' % I1],
            config=cfg(allowed_direct_url_schemes=schemes))
    civ('civ-then-cache', 'no accessible image volume, cache enabled with '
        'an entry: image-volume clone fails, cache hit',
        None, im=image(owner='project-7',
                       locations=[loc('cinder://%s' % I1)]),
        config=cfg(**dict(CINDER_CFG, **CACHE_CFG)),
        vols=[dbvol(I1), dbvol(cv(1), project_id='internal-project')],
        cl=civ_cluster((1,), extra={vn(cv(1)): rimg()}),
        db={'volumes': [dbvol(I1), dbvol(cv(1),
                                         project_id='internal-project')],
            'image_cache': [{'image_id': IMG, 'host': HOST,
                             'volume_id': cv(1)}]})
    civ('civ-before-cache', 'accessible image volume and a cache entry: '
        'the image-volume clone wins, cache untouched',
        ['cinder://%s' % I1], config=cfg(**dict(CINDER_CFG, **CACHE_CFG)),
        cl=civ_cluster((1,), extra={vn(cv(1)): rimg()}),
        db={'volumes': [dbvol(I1), dbvol(cv(1),
                                         project_id='internal-project')],
            'image_cache': [{'image_id': IMG, 'host': HOST,
                             'volume_id': cv(1)}]})


# =============================================================================
# create_from_image: image-volume cache (§4.4, Q2)
# =============================================================================

def fam_cache():
    qimg = dict(disk_format='qcow2')

    def cache(name, desc, entries=(), vols=(), cl_vols=None, im=None,
              config=None, volume=None, **kw):
        db = {}
        if vols:
            db['volumes'] = list(vols)
        if entries:
            db['image_cache'] = list(entries)
        cvols = {} if cl_vols is None else cl_vols
        fields = {
            'config': config if config is not None else cfg(**CACHE_CFG),
            'volume': volume if volume is not None else target(),
            'cluster': {'fsid': FSID, 'pools': {'volumes': cvols}},
            'image': im if im is not None else image(**qimg),
            'db': db or None,
        }
        fields.update(kw)
        add(name, desc, 'create_from_image', **fields)

    def entry(n, host=HOST, image_id=IMG, **kw):
        d = {'image_id': image_id, 'host': host, 'volume_id': cv(n)}
        d.update(kw)
        return d

    def cvol(n, size=1, **kw):
        return dbvol(cv(n), size=size, project_id='internal-project', **kw)

    def crbd(*ns, size=GiB):
        return {vn(cv(n)): rimg(size=size) for n in ns}

    cache('cache-hit-basic', 'entry for the image on this host: cached '
          'volume cloned (cache hit, CACHE-6)', [entry(1)], [cvol(1)],
          crbd(1))
    cache('cache-hit-raw-no-locations', 'raw image without locations and a '
          'cache entry: hit', [entry(1)], [cvol(1)], crbd(1),
          im=image(locations=[]))
    cache('cache-hit-same-size', 'cache hit with a 1 GiB volume: clone, no '
          'resize', [entry(1)], [cvol(1)], crbd(1), volume=target(1))
    cache('cache-hit-max-depth-0', 'cache hit with rbd_max_clone_depth 0: '
          'full copy of the cached volume', [entry(1)], [cvol(1)], crbd(1),
          config=cfg(rbd_max_clone_depth=0, **CACHE_CFG))
    for tag, vs in [('vsize-1g', GiB), ('vsize-2g', 2 * GiB),
                    ('vsize-null', None), ('vsize-equal', 10 * GiB),
                    ('vsize-partial', GiB + 1)]:
        cache('cache-miss-%s' % tag, 'no entry, image virtual_size %s: the '
              'volume is created at GiB-ceil(virtual size) (DL-5), '
              'downloaded, cloned into a new cache entry, then extended'
              % vs, im=image(virtual_size=vs, **qimg))
    cache('cache-miss-size-null-vsize', 'no entry, virtual_size null and '
          'image size 3 GiB: the downloaded file is 3 GiB', im=image(
              virtual_size=None, size=3 * GiB, **qimg))
    cache('cache-miss-raw-image', 'no entry, raw image without locations: '
          'cache populated', im=image(locations=[]))
    cache('cache-stale-older', 'entry recorded for an older image '
          'updated_at: evicted and treated as a miss (CACHE-3)',
          [entry(1)], [cvol(1)], crbd(1),
          im=image(updated_at='2024-06-01T00:00:00Z', **qimg))
    cache('cache-stale-newer', 'entry image_updated_at newer than the image '
          'updated_at: still a mismatch, evicted',
          [entry(1, image_updated_at='2025-01-01T00:00:00Z')], [cvol(1)],
          crbd(1))
    cache('cache-updated-at-offset-equal', 'image updated_at with a +02:00 '
          'offset naming the same instant as the entry: compared in UTC',
          [entry(1)], [cvol(1)], crbd(1),
          im=image(updated_at='2024-01-01T02:00:00+02:00', **qimg))
    cache('cache-updated-at-offset-differs', 'image updated_at '
          '2024-01-01T00:00:00+02:00 (= 2023-12-31T22:00Z) vs entry '
          '2024-01-01T00:00:00Z: stale',
          [entry(1)], [cvol(1)], crbd(1),
          im=image(updated_at='2024-01-01T00:00:00+02:00', **qimg))
    cache('cache-updated-at-fraction', 'image updated_at with microseconds '
          'vs an entry without: stale', [entry(1)], [cvol(1)], crbd(1),
          im=image(updated_at='2024-01-01T00:00:00.500000Z', **qimg))
    # several entries on several hosts
    cache('cache-entries-other-hosts-miss', 'entries for the image on '
          'hostA@ceph (no pool), hostA@ceph#other and hostB@ceph#ceph: '
          'exact host equality only (CACHE-2), miss',
          [entry(1, host='hostA@ceph'), entry(2, host='hostA@ceph#other'),
           entry(3, host='hostB@ceph#ceph')],
          [cvol(1), cvol(2), cvol(3)], crbd(1, 2, 3))
    cache('cache-entries-one-exact', 'entries on other hosts and one on '
          'exactly this host: that one is hit',
          [entry(1, host='hostA@ceph'), entry(2),
           entry(3, host='hostB@ceph#ceph')],
          [cvol(1), cvol(2), cvol(3)], crbd(1, 2, 3))
    cache('cache-entries-two-same-host-mru', 'two entries for the image on '
          'this host: the most recently used one is hit',
          [entry(1, last_used=ts(100)), entry(2, last_used=ts(50))],
          [cvol(1), cvol(2)], crbd(1, 2))
    cache('cache-entries-two-same-host-mru-rev', 'same, last_used reversed',
          [entry(1, last_used=ts(50)), entry(2, last_used=ts(100))],
          [cvol(1), cvol(2)], crbd(1, 2))
    cache('cache-entry-other-image', 'entry on this host for another image: '
          'miss', [entry(1, image_id=IMG2)], [cvol(1)], crbd(1))
    cache('cache-entry-host-case', 'entry host HostA@ceph#ceph differs in '
          'case: miss', [entry(1, host='HostA@ceph#ceph')], [cvol(1)],
          crbd(1))
    cache('cache-entry-wildcard-host', 'entry host with "_" is compared '
          'exactly (no LIKE): miss', [entry(1, host='host_@ceph#ceph')],
          [cvol(1)], crbd(1))
    # clustered volumes
    cache('cache-clustered-hit', 'clustered volume: lookup by cluster_name; '
          'an entry of the cluster on another host is hit',
          [entry(1, host='hostB@ceph#ceph',
                 cluster_name='clusterA@ceph#ceph')],
          [cvol(1, host='hostB@ceph#ceph')], crbd(1),
          volume=target(cluster_name='clusterA@ceph#ceph'))
    cache('cache-clustered-host-entry-miss', 'clustered volume, entry on '
          'the same host without cluster_name: miss, new entry carries the '
          'cluster name', [entry(1)], [cvol(1)], crbd(1),
          volume=target(cluster_name='clusterA@ceph#ceph'))
    cache('cache-clustered-before-across-pools', 'clustered volume and '
          'clone_across_pools: the cluster filter still applies (clustering '
          'checked first), entry of another cluster missed',
          [entry(1, host='hostB@ceph#ceph',
                 cluster_name='clusterB@ceph#ceph')],
          [cvol(1, host='hostB@ceph#ceph')], crbd(1),
          volume=target(cluster_name='clusterA@ceph#ceph'),
          backend={'capabilities': {'clone_across_pools': True}})
    # clone_across_pools
    cache('cache-across-pools-hit', 'clone_across_pools: an entry of '
          'another host is hit (no location filter)',
          [entry(1, host='hostB@other#pool')],
          [cvol(1, host='hostB@other#pool')], crbd(1),
          backend={'capabilities': {'clone_across_pools': True}})
    cache('cache-across-pools-miss-populate', 'clone_across_pools with no '
          'entry anywhere: populated',
          backend={'capabilities': {'clone_across_pools': True}})
    cache('cache-across-pools-entry-creation-exact', 'clone_across_pools, '
          'entry on another host for another image: miss; the new entry is '
          'created (ensure_space counts this host only)',
          [entry(1, host='hostB@other#pool', image_id=IMG2)],
          [cvol(1, host='hostB@other#pool')], crbd(1),
          backend={'capabilities': {'clone_across_pools': True}})
    # internal tenant
    only_p = dict(CACHE_CFG)
    del only_p['cinder_internal_tenant_user_id']
    only_u = dict(CACHE_CFG)
    del only_u['cinder_internal_tenant_project_id']
    cache('cache-tenant-project-only', 'only the internal tenant project id '
          'set: no internal context, plain download (CACHE-1)', [entry(1)],
          [cvol(1)], crbd(1), config=cfg(**only_p))
    cache('cache-tenant-user-only', 'only the internal tenant user id set: '
          'plain download', [entry(1)], [cvol(1)], crbd(1),
          config=cfg(**only_u))
    cache('cache-disabled-with-entry', 'cache disabled but an entry exists: '
          'ignored, download', [entry(1)], [cvol(1)], crbd(1),
          config=cfg(cinder_internal_tenant_project_id='internal-project',
                     cinder_internal_tenant_user_id='internal-user'))
    # limits and eviction (CACHE-8)

    def lim(**kw):
        return cfg(**dict(CACHE_CFG, **kw))
    other = [IMG2, IMG3]
    cache('cache-limit-count-1-evict', 'max_count 1 with one entry (other '
          'image) on this host: it is evicted to make room',
          [entry(1, image_id=IMG2)], [cvol(1)], crbd(1),
          config=lim(image_volume_cache_max_count=1))
    cache('cache-limit-count-2-evict-lru', 'max_count 2, two entries: the '
          'least recently used (last_used older) is evicted',
          [entry(1, image_id=IMG2, last_used=ts(200)),
           entry(2, image_id=IMG3, last_used=ts(100))],
          [cvol(1), cvol(2)], crbd(1, 2),
          config=lim(image_volume_cache_max_count=2))
    cache('cache-limit-count-2-evict-lru-rev', 'same with last_used '
          'reversed: the other entry is evicted',
          [entry(1, image_id=IMG2, last_used=ts(100)),
           entry(2, image_id=IMG3, last_used=ts(200))],
          [cvol(1), cvol(2)], crbd(1, 2),
          config=lim(image_volume_cache_max_count=2))
    cache('cache-limit-count-3-room', 'max_count 3 with two entries: room, '
          'nothing evicted',
          [entry(1, image_id=IMG2), entry(2, image_id=IMG3)],
          [cvol(1), cvol(2)], crbd(1, 2),
          config=lim(image_volume_cache_max_count=3))
    cache('cache-limit-count-other-host', 'max_count 1, the only entry is '
          'on another host: not counted, nothing evicted',
          [entry(1, image_id=IMG2, host='hostB@ceph#ceph')], [cvol(1)],
          crbd(1), config=lim(image_volume_cache_max_count=1))
    cache('cache-limit-size-evict-one', 'max_size 3 GiB, entries 2 GiB '
          '(older) + 1 GiB, new 1 GiB: total 4 > 3, the LRU (2 GiB) is '
          'evicted',
          [entry(1, image_id=IMG2, size=2, last_used=ts(10)),
           entry(2, image_id=IMG3, size=1, last_used=ts(20))],
          [cvol(1, 2), cvol(2)], crbd(1, 2),
          config=lim(image_volume_cache_max_size_gb=3))
    cache('cache-limit-size-evict-two', 'max_size 3 GiB, entries 1 GiB '
          '(oldest), 1 GiB, 1 GiB, new 2 GiB: two evicted',
          [entry(1, image_id=IMG2, last_used=ts(10)),
           entry(2, image_id=IMG3, last_used=ts(20)),
           entry(3, image_id='aaaaaaaa-0000-4000-8000-000000000004',
                 last_used=ts(30))],
          [cvol(1), cvol(2), cvol(3)], crbd(1, 2, 3),
          im=image(virtual_size=2 * GiB, **qimg),
          config=lim(image_volume_cache_max_size_gb=3))
    cache('cache-limit-size-exact-fit', 'max_size 2 GiB, one 1 GiB entry, '
          'new 1 GiB: total 2 = limit, nothing evicted',
          [entry(1, image_id=IMG2)], [cvol(1)], crbd(1),
          config=lim(image_volume_cache_max_size_gb=2))
    cache('cache-limit-entry-bigger-than-limit', 'max_size 1 GiB, new '
          'entry 2 GiB: ensure_space false without evicting, no entry, the '
          'user volume is still created', [entry(1, image_id=IMG2)],
          [cvol(1)], crbd(1), im=image(virtual_size=2 * GiB, **qimg),
          config=lim(image_volume_cache_max_size_gb=1))
    cache('cache-limit-size-and-count', 'max_size 10 and max_count 1: the '
          'count forces the eviction',
          [entry(1, image_id=IMG2, size=1)], [cvol(1)], crbd(1),
          config=lim(image_volume_cache_max_size_gb=10,
                     image_volume_cache_max_count=1))
    cache('cache-limit-size-evict-then-fit', 'max_size 3, new entry 3 GiB, one '
          '1 GiB entry on this host: evicted, then fits',
          [entry(1, image_id=IMG2, size=1)], [cvol(1)], crbd(1),
          im=image(virtual_size=3 * GiB, **qimg),
          config=lim(image_volume_cache_max_size_gb=3))
    cache('cache-limit-vsize-null-size-used', 'max_size 1, virtual_size '
          'null and image size 2 GiB: the entry is 2 GiB (qemu size) > 1, '
          'not created',
          im=image(virtual_size=None, size=2 * GiB, **qimg),
          config=lim(image_volume_cache_max_size_gb=1))
    cache('cache-limit-evict-stale-then-count', 'stale entry for this image '
          'evicted at lookup, another entry evicted by max_count 1',
          [entry(1, image_updated_at='2023-01-01T00:00:00Z'),
           entry(2, image_id=IMG2)],
          [cvol(1), cvol(2)], crbd(1, 2),
          config=lim(image_volume_cache_max_count=1))
    _ = other
    # cache entry volume missing
    cache('cache-entry-volume-missing-in-cluster', 'entry whose cached '
          'volume has no RBD image: the clone fails with librbd '
          'ImageNotFound (not a CinderException)', [entry(1)], [cvol(1)],
          {})
    cache('cache-entry-volume-row-deleted', 'entry whose volume row is '
          'soft-deleted: loading it raises VolumeNotFound (a '
          'CinderException), falls back to download, no new entry',
          [entry(1)], [cvol(1, deleted=True)], crbd(1))
    cache('cache-entry-volume-has-clone-snap', 'cached volume already has '
          'volume-<new id>.clone_snap: create_snap fails '
          '(VolumeBackendAPIException) -> download without a new entry',
          [entry(1)], [cvol(1)],
          {vn(cv(1)): rimg(snaps=[snap(vn(VOL) + '.clone_snap')])})
    cache('cache-encrypted-target', 'encrypted volume with a cache entry: no '
          'cache preparation (IMG-6), _create_from_image_cache returns at '
          'once, encrypted download', [entry(1)], [cvol(1)], crbd(1),
          volume=target(encryption_key_id='key-1', volume_type='luks'),
          db={'volumes': [cvol(1)], 'image_cache': [entry(1)],
              'volume_types': [{'name': 'luks', 'encryption': {}}]})
    # conversion free space (CACHE-5.1, Q2)
    for tag, free in [('less', GiB - 1), ('equal', GiB), ('one-more', GiB + 1)]:
        cache('cache-miss-free-%s' % tag, 'cache miss, conversion dir free '
              'bytes %d vs image size %d (ImageTooBig when free <= size)'
              % (free, GiB), env={'image_conversion_free_bytes': free})
        cache('cache-hit-free-%s' % tag, 'cache hit that never downloads, '
              'free bytes %d vs image size %d: the space check still runs '
              '(Q2)' % (free, GiB), [entry(1)], [cvol(1)], crbd(1),
              env={'image_conversion_free_bytes': free})
    cache('cache-hit-free-small-image', 'cache hit, image size 1 byte and '
          'free 2 bytes: passes', [entry(1)], [cvol(1)], crbd(1),
          im=image(size=1, virtual_size=GiB, **qimg),
          env={'image_conversion_free_bytes': 2})
    cache('cache-driver-clone-skips-space-check', 'driver clone succeeds: '
          'no space check, no cache (free space 0)',
          im=image(locations=[loc(GOOD)]),
          cluster={'fsid': FSID, 'pools': {'volumes': {},
                                           'images': glance_pool()}},
          env={'image_conversion_free_bytes': 0})
    cache('cache-miss-vsize-too-big-for-volume', 'cache miss, virtual_size '
          'null, image size 12 GiB into 10 GiB: the qemu virtual-size check '
          'after the download fails (ImageUnacceptable)',
          im=image(virtual_size=None, size=12 * GiB, **qimg))
    cache('cache-miss-dest-exists', 'cache miss, the volume image already '
          'exists: create_volume (at the shrunk size) fails with '
          'ImageExists; the finally block still extends the pre-existing '
          'image back to the requested size',
          cl_vols={vn(VOL): rimg()})
    cache('cache-miss-clustered-backend', 'cache miss on a clustered '
          'manager and volume: entry row has the cluster name',
          volume=target(cluster_name='clusterA@ceph#ceph'),
          backend={'cluster': 'clusterA@ceph'})
    cache('cache-miss-conversion-disabled', 'cache miss with '
          'image_conversion_disable and a qcow2 image: '
          'ImageConversionNotAllowed after create + download, size '
          'restored', config=cfg(image_conversion_disable=True, **CACHE_CFG),
          im=image(virtual_size=2 * GiB, **qimg))


# =============================================================================
# create_from_image: download path (§4.5, §5.8)
# =============================================================================

def fam_dl():
    def dl(name, desc, im=None, config=None, volume=None, **kw):
        fields = {
            'config': config if config is not None else cfg(),
            'volume': volume if volume is not None else target(),
            'cluster': kw.pop('cl', None) or cluster(),
            'image': im if im is not None else image(disk_format='qcow2'),
        }
        fields.update(kw)
        add(name, desc, 'create_from_image', **fields)

    for fmt in ('qcow2', 'vmdk', 'vhd', 'vhdx', 'vdi', 'iso', 'ploop', 'raw'):
        dl('dl-format-%s' % fmt, 'download of a %s image: create, fetch + '
           'convert, remove the fresh image, rbd import, resize (RBD-29)'
           % fmt, im=image(disk_format=fmt))
    dl('dl-format-qcow2-vsize-2g', 'qcow2 image with a 2 GiB virtual size: '
       'import of 2 GiB then resize to 10 GiB',
       im=image(disk_format='qcow2', virtual_size=2 * GiB))
    dl('dl-format-qcow2-vsize-null-size-2g', 'qcow2, virtual_size null, '
       'size 2 GiB: the downloaded file is 2 GiB',
       im=image(disk_format='qcow2', virtual_size=None, size=2 * GiB))
    dl('dl-vsize-equal-volume', 'virtual size equal to the volume size',
       im=image(disk_format='qcow2', virtual_size=10 * GiB))
    dl('dl-qemu-vsize-too-big', 'virtual_size null (no up-front check) but '
       'the downloaded file is 11 GiB for a 10 GiB volume: ImageUnacceptable '
       'from the qemu check (DL-4)',
       im=image(disk_format='qcow2', virtual_size=None, size=11 * GiB))
    dl('dl-conversion-disable-qcow2', 'image_conversion_disable with a qcow2 '
       'image: ImageConversionNotAllowed after create + download (Q12)',
       config=cfg(image_conversion_disable=True))
    dl('dl-conversion-disable-raw', 'image_conversion_disable with a raw '
       'image: allowed', config=cfg(image_conversion_disable=True),
       im=image())
    dl('dl-conversion-disable-iso', 'image_conversion_disable with an iso '
       'image (qemu format raw, glance format iso)',
       config=cfg(image_conversion_disable=True), im=image(disk_format='iso'))
    dl('dl-conversion-disable-driver-clone', 'image_conversion_disable with '
       'a cloneable raw rbd location: the driver clone bypasses it',
       config=cfg(image_conversion_disable=True),
       im=image(locations=[loc(GOOD)]),
       cl=cluster(images=glance_pool()))
    dl('dl-compressed-not-allowed', 'container_format compressed without '
       'allow_compression_on_image_upload: ImageUnacceptable (DL-7)',
       im=image(container_format='compressed'))
    dl('dl-compressed-raw-not-allowed', 'compressed container, raw disk, no '
       'locations, compression not allowed',
       im=image(container_format='compressed', disk_format='raw'))
    dl('dl-container-ovf', 'container ovf, qcow2: downloaded normally',
       im=image(container_format='ovf', disk_format='qcow2'))
    dl('dl-signatures-disabled', 'verify_glance_signatures disabled: no '
       'signature check', config=cfg(verify_glance_signatures='disabled'))
    dl('dl-signatures-enabled-no-props', 'verify_glance_signatures enabled, '
       'no signature properties: not verified, no error (DL-3)',
       config=cfg(verify_glance_signatures='enabled'))
    dl('dl-signature-incomplete', 'only img_signature set: '
       'InvalidSignatureImage (DL-3)',
       im=image(disk_format='qcow2', properties={'img_signature': 'abc'}))
    dl('dl-signatures-disabled-conversion-disable', 'verification '
       'disabled (no signature_verified glance metadata row is written) and '
       'a qcow2 image with image_conversion_disable: the error handler\'s '
       'volume_glance_metadata_get raises GlanceMetadataNotFound, masking '
       'ImageConversionNotAllowed (CACHE-5.5)',
       config=cfg(verify_glance_signatures='disabled',
                  image_conversion_disable=True))
    dl('dl-signatures-disabled-qemu-vsize-too-big', 'verification disabled '
       'and the downloaded file bigger than the volume: ImageUnacceptable '
       'masked by GlanceMetadataNotFound',
       config=cfg(verify_glance_signatures='disabled'),
       im=image(disk_format='qcow2', virtual_size=None, size=11 * GiB))
    dl('dl-signatures-disabled-target-exists', 'verification disabled and '
       'the target image exists: the ImageExists of create_volume is masked '
       'by GlanceMetadataNotFound too',
       config=cfg(verify_glance_signatures='disabled'),
       cl=cluster({vn(VOL): rimg()}))
    dl('dl-signature-incomplete-disabled', 'only img_signature set but '
       'verification disabled: downloaded',
       config=cfg(verify_glance_signatures='disabled'),
       im=image(disk_format='qcow2', properties={'img_signature': 'abc'}))
    luks = {'volume_types': [{'name': 'luks', 'encryption': {}}]}
    dl('dl-encrypted-no-image-key', 'encrypted volume, image without '
       'cinder_encryption_key_id: copy_image_to_encrypted_volume (DL-6)',
       volume=target(encryption_key_id='key-1', volume_type='luks'), db=luks)
    dl('dl-encrypted-image-key', 'encrypted volume, image with '
       'cinder_encryption_key_id: plain copy_image_to_volume (DL-6)',
       volume=target(encryption_key_id='key-1', volume_type='luks'), db=luks,
       im=image(disk_format='raw', properties={
           'cinder_encryption_key_id': 'key-img'}))
    dl('dl-encrypted-raw', 'encrypted volume from a raw image',
       volume=target(encryption_key_id='key-1', volume_type='luks'), db=luks,
       im=image())
    dl('dl-encrypted-same-size', 'encrypted 1 GiB volume from a 1 GiB image',
       volume=target(1, encryption_key_id='key-1', volume_type='luks'),
       db=luks)
    dl('dl-unencrypted-image-key', 'unencrypted volume, image with '
       'cinder_encryption_key_id: plain copy',
       im=image(disk_format='qcow2', properties={
           'cinder_encryption_key_id': 'key-img'}))
    types = {
        'multi': {'multiattach': '<is> True'},
        'repl': {'replication_enabled': '<is> True'},
        'both': {'multiattach': '<is> True',
                 'replication_enabled': '<is> True'},
        'multi-lower': {'multiattach': '<is> true'},
    }
    for tname, specs in sorted(types.items()):
        dl('dl-type-%s' % tname, 'download into a volume of type %s %r: '
           '_setup_volume after the import (RBD-14, RBD-30)' % (tname, specs),
           volume=target(volume_type=tname),
           db={'volume_types': [{'name': tname, 'extra_specs': specs}]})
        dl('dl-type-%s-features-61' % tname, 'as dl-type-%s with cluster '
           'rbd_default_features 61' % tname,
           volume=target(volume_type=tname),
           db={'volume_types': [{'name': tname, 'extra_specs': specs}]},
           cl=cluster(rbd_default_features=61))
    dl('dl-features-61-plain', 'rbd_default_features 61, plain type',
       cl=cluster(rbd_default_features=61))
    dl('dl-target-exists', 'target image already exists: create_volume '
       'fails with ImageExists before the download',
       cl=cluster({vn(VOL): rimg()}))
    dl('dl-target-host-null', 'target volume host null: '
       'VolumeManager.create_volume fails in _update_allocated_capacity '
       '(extract_host -> InvalidVolume) before the flow runs, so the status '
       'stays creating', volume=target(host=None))
    dl('dl-target-host-no-pool', 'target host without pool', volume=target(
        host='hostA@ceph'))
    dl('dl-target-clustered', 'clustered target: backend name from '
       'cluster_name', volume=target(cluster_name='clusterA@ceph#ceph'))
    for chunk in (8, 32):
        dl('dl-chunk-%d' % chunk, 'rbd_store_chunk_size %d for the import '
           'order' % chunk, config=cfg(rbd_store_chunk_size=chunk))
    dl('dl-free-space-equal', 'free space equal to the image size: '
       'ImageTooBig before anything is created',
       env={'image_conversion_free_bytes': GiB})
    dl('dl-free-space-zero-image-size-zero', 'image size 0 and free 0: 0 <= 0 '
       'ImageTooBig', im=image(disk_format='qcow2', size=0, virtual_size=GiB),
       env={'image_conversion_free_bytes': 0})
    dl('dl-rbd-pool-missing', 'rbd_pool names a missing pool: driver setup '
       'fails, DriverNotInitialized', config=cfg(rbd_pool='nopool'))
    dl('dl-image-min-disk-ignored', 'min_disk 20 > 10 GiB: not checked by '
       'the manager', im=image(disk_format='qcow2', min_disk=20))
    dl('dl-image-status-killed', 'image status killed: the manager does not '
       'check the status', im=image(disk_format='qcow2', status='killed'))
    dl('dl-image-volume-type-property', 'image property '
       'cinder_img_volume_type is only an API concern: ignored here',
       im=image(disk_format='qcow2',
                properties={'cinder_img_volume_type': 'nosuchtype'}))


# =============================================================================
# create_cloned_volume (§5.5, §5.6, Q9, Q10)
# =============================================================================

def chain_pools(length, deleted=(), snap_names=None, pool_of=None):
    """SRC with a clone chain of ``length`` ancestors par(1)..par(length).

    ``deleted``: indexes of ancestors whose image is named ``.deleted``;
    ``snap_names``: index -> the parent snapshot name used by the child of
    that ancestor (default ``<child>.clone_snap``); ``pool_of``: index ->
    pool of that ancestor.
    """
    snap_names = snap_names or {}
    pool_of = pool_of or {}
    pools = {'volumes': {}}

    def name(i):
        if i == 0:
            return vn(SRC)
        return vn(par(i)) + ('.deleted' if i in deleted else '')

    def base(i):
        return vn(SRC) if i == 0 else vn(par(i))

    for i in range(length + 1):
        pool = pool_of.get(i, 'volumes')
        img = rimg()
        if i < length:
            sname = snap_names.get(i + 1, base(i) + '.clone_snap')
            img['parent'] = pref(name(i + 1), sname,
                                 pool_of.get(i + 1, 'volumes'))
        if i > 0:
            sname = snap_names.get(i, base(i - 1) + '.clone_snap')
            img['snaps'] = [snap(sname)]
        pools.setdefault(pool, {})[name(i)] = img
    return pools


def fam_clone():
    def clone(name, desc, pools=None, config=None, volume=None, src=None,
              **kw):
        fields = {
            'config': config if config is not None else cfg(),
            'volume': volume if volume is not None else target(1),
            'cluster': {'fsid': FSID,
                        'pools': pools if pools is not None
                        else chain_pools(0)},
            'db': {'volumes': [src if src is not None else dbvol(SRC)]},
            'request': {'source_volid': SRC},
        }
        fields.update(kw)
        add(name, desc, 'create_cloned_volume', **fields)

    for length in range(0, 7):
        for md in (-1, 0, 1, 2, 3, 5):
            clone('clone-chain%d-max%s' % (length, str(md).replace('-', 'neg')),
                  'source at clone depth %d, rbd_max_clone_depth %d: %s'
                  % (length, md,
                     'full copy (RBD-18)' if md <= 0 else
                     ('COW clone then flatten of the new volume (depth >= '
                      'max, RBD-20)' if length >= md else 'COW clone')),
                  chain_pools(length),
                  config=cfg(rbd_max_clone_depth=md))
    clone('clone-chain3-default-max', 'depth 3 with the default max (5): COW',
          chain_pools(3), config={'rbd_pool': 'volumes'})
    clone('clone-chain5-default-max', 'depth 5 with the default max (5): '
          'flatten', chain_pools(5), config={'rbd_pool': 'volumes'})
    clone('clone-chain2-deleted-parents', 'chain of 2 through .deleted '
          'parents: _get_clone_info strips .deleted, depth 2 = max 2, '
          'flatten', chain_pools(2, deleted=(1, 2)),
          config=cfg(rbd_max_clone_depth=2))
    clone('clone-chain3-deleted-middle', 'chain of 3 with a .deleted middle '
          'ancestor, max 3: flatten', chain_pools(3, deleted=(2,)),
          config=cfg(rbd_max_clone_depth=3))
    clone('clone-chain-glance-snap', 'source cloned from a glance-style '
          'snapshot "snap": not a Cinder clone, depth 0 (Q10), max 1: COW',
          chain_pools(1, snap_names={1: 'snap'}),
          config=cfg(rbd_max_clone_depth=1))
    clone('clone-chain-cinder-snapshot', 'source cloned from a Cinder '
          'snapshot-<id>: depth 0, max 1: COW',
          chain_pools(1, snap_names={1: 'snapshot-%s' % SNAP}),
          config=cfg(rbd_max_clone_depth=1))
    clone('clone-chain-glance-snap-above', 'depth counting stops at a '
          'glance "snap" link two levels up: depth 1, max 2: COW',
          chain_pools(3, snap_names={2: 'snap'}),
          config=cfg(rbd_max_clone_depth=2))
    clone('clone-chain-wrong-clone-snap', 'parent snapshot named after '
          'another volume (<other>.clone_snap): not counted',
          chain_pools(1, snap_names={1: vn(par(8)) + '.clone_snap'}),
          config=cfg(rbd_max_clone_depth=1))
    clone('clone-chain-parent-other-pool', 'source\'s parent lives in pool '
          '"other": after the COW clone, _get_clone_depth opens the parent '
          'by name in the Cinder pool and the ImageNotFound escapes (clone '
          'and clone_snap left behind)',
          chain_pools(1, pool_of={1: 'other'}),
          config=cfg(rbd_max_clone_depth=2))
    clone('clone-chain-parent-other-pool-max1', 'same with max 1: the '
          'depth walk fails before any flatten', chain_pools(
              1, pool_of={1: 'other'}), config=cfg(rbd_max_clone_depth=1))
    clone('clone-chain-grandparent-other-pool', 'grandparent in pool '
          '"other": opening it in the Cinder pool fails',
          chain_pools(2, pool_of={2: 'other'}),
          config=cfg(rbd_max_clone_depth=3))
    clone('clone-source-missing', 'source image absent from the cluster: '
          'ImageNotFound', {'volumes': {}})
    clone('clone-source-missing-copy', 'source image absent, max depth 0 '
          '(copy path)', {'volumes': {}}, config=cfg(rbd_max_clone_depth=0))
    clone('clone-dest-exists', 'destination image already exists: clone '
          'fails, clone_snap unprotected and removed, '
          'VolumeBackendAPIException (RBD-19)',
          dict(chain_pools(0), volumes={vn(SRC): rimg(),
                                        vn(VOL): rimg()}))
    clone('clone-dest-exists-copy', 'destination exists with max depth 0: '
          'copy raises ImageExists', dict(volumes={vn(SRC): rimg(),
                                                   vn(VOL): rimg()}),
          config=cfg(rbd_max_clone_depth=0))
    clone('clone-snap-exists-protected', 'source already has a protected '
          'volume-<new>.clone_snap: create_snap raises ImageExists; the '
          'cleanup unprotects and removes the existing snapshot',
          {'volumes': {vn(SRC): rimg(snaps=[snap(vn(VOL) + '.clone_snap')])}})
    clone('clone-snap-exists-unprotected', 'source already has an '
          'unprotected volume-<new>.clone_snap: create_snap fails, cleanup '
          'unprotect fails (InvalidArgument)',
          {'volumes': {vn(SRC): rimg(snaps=[snap(vn(VOL) + '.clone_snap',
                                                 False)])}})
    clone('clone-snap-exists-with-child', 'existing protected clone_snap '
          'with a child: cleanup unprotect fails with ImageBusy',
          {'volumes': {vn(SRC): rimg(snaps=[snap(vn(VOL) + '.clone_snap')]),
                       vn(child(1)): rimg(parent=pref(
                           vn(SRC), vn(VOL) + '.clone_snap'))}})
    clone('clone-use-quota-false-at-max', 'use_quota false at depth >= max: '
          'never flattened (RBD-20)', chain_pools(2),
          config=cfg(rbd_max_clone_depth=1), volume=target(1, use_quota=False))
    clone('clone-use-quota-false-copy', 'use_quota false with max 0: copy',
          chain_pools(0), config=cfg(rbd_max_clone_depth=0),
          volume=target(1, use_quota=False))
    clone('clone-size-bigger', 'new volume 3 GiB from 1 GiB: resize (RBD-22)',
          volume=target(3))
    clone('clone-size-bigger-flatten', 'bigger and at max depth: clone, '
          'flatten, remove clone_snap, resize', chain_pools(1),
          config=cfg(rbd_max_clone_depth=1), volume=target(4))
    clone('clone-size-bigger-copy', 'bigger with max 0: copy then resize',
          config=cfg(rbd_max_clone_depth=0), volume=target(2))
    clone('clone-size-smaller-row', 'source row 4 GiB, new volume 2 GiB '
          '(sizes differ): resized to 2 GiB', volume=target(2),
          src=dbvol(SRC, size=4),
          pools={'volumes': {vn(SRC): rimg(size=4 * GiB)}})
    luks = [{'name': 'luks', 'encryption': {}}]
    _ = luks    # encrypted clones need os-brick (re-key), see README
    clone('clone-source-row-missing', 'source_volid names no volume row: '
          'the flow cannot load the source', db={'volumes': []})
    clone('clone-bootable-source', 'bootable source: the new volume becomes '
          'bootable (MGR-9)', db={'volumes': [dbvol(SRC, bootable=True)]})
    clone('clone-source-name-id', 'source with name_id: its RBD image is '
          'volume-<name_id>', {'volumes': {vn(par(9)): rimg()}},
          db={'volumes': [dbvol(SRC, name_id=par(9))]})
    clone('clone-source-clone-v2', 'clone v2 cluster: same ops',
          chain_pools(1), config=cfg(rbd_max_clone_depth=1),
          cluster={'fsid': FSID, 'clone_v2': True,
                   'pools': chain_pools(1)})
    clone('clone-multiattach-type', 'target of a multiattach type: '
          '_setup_volume disables features', volume=target(
              1, volume_type='multi'),
          db={'volumes': [dbvol(SRC)],
              'volume_types': [{'name': 'multi', 'extra_specs': {
                  'multiattach': '<is> True'}}]},
          cluster={'fsid': FSID, 'rbd_default_features': 61,
                   'pools': chain_pools(0)})
    clone('clone-multiattach-type-copy', 'multiattach type with max depth 0: '
          'copy path skips _setup_volume (Q9)',
          volume=target(1, volume_type='multi'),
          config=cfg(rbd_max_clone_depth=0),
          db={'volumes': [dbvol(SRC)],
              'volume_types': [{'name': 'multi', 'extra_specs': {
                  'multiattach': '<is> True'}}]},
          cluster={'fsid': FSID, 'rbd_default_features': 61,
                   'pools': chain_pools(0)})
    clone('clone-replication-and-multiattach', 'type with replication and '
          'multiattach: _setup_volume raises, the destination is removed, '
          'ReplicationError', volume=target(1, volume_type='rm'),
          db={'volumes': [dbvol(SRC)],
              'volume_types': [{'name': 'rm', 'extra_specs': {
                  'multiattach': '<is> True',
                  'replication_enabled': '<is> True'}}]})
    clone('clone-unreachable', 'cluster unreachable: DriverNotInitialized',
          cluster={'fsid': FSID, 'reachable': False,
                   'pools': chain_pools(0)})
    clone('clone-source-unreadable', 'source image unreadable '
          '(PermissionError)', {'volumes': {vn(SRC): rimg(readable=False)}})


# =============================================================================
# create_from_snapshot (§5.7)
# =============================================================================

def fam_snap():
    sname = 'snapshot-%s' % SNAP

    def pools(protected=True, snap_size=GiB, name=vn(SRC), present=True):
        snaps = [snap(sname, protected, size=snap_size)] if present else []
        return {'volumes': {name: rimg(snaps=snaps)}}

    def sv(name, desc, config=None, volume=None, cl=None, db=None, **kw):
        fields = {
            'config': config if config is not None else cfg(),
            'volume': volume if volume is not None else target(1),
            'cluster': cl or {'fsid': FSID, 'pools': pools()},
            'db': db or {'volumes': [dbvol(SRC)],
                         'snapshots': [{'id': SNAP, 'volume_id': SRC,
                                        'volume_size': 1}]},
            'request': {'snapshot_id': SNAP},
        }
        fields.update(kw)
        add(name, desc, 'create_from_snapshot', **fields)

    for flat in (False, True):
        for uq in (True, False):
            for size in (1, 3):
                sv('snap-flat%s-quota%s-size%d' % (
                    'on' if flat else 'off', 'on' if uq else 'off', size),
                   'rbd_flatten_volume_from_snapshot=%s, use_quota=%s, volume '
                   '%d GiB from a 1 GiB snapshot (RBD-24/25)' % (flat, uq,
                                                                 size),
                   config=cfg(rbd_flatten_volume_from_snapshot=flat),
                   volume=target(size, use_quota=uq))
    luks = [{'name': 'luks', 'encryption': {}}]
    enc_db = {'volumes': [dbvol(SRC, encryption_key_id='key-1',
                                volume_type='luks')],
              'snapshots': [{'id': SNAP, 'volume_id': SRC, 'volume_size': 1,
                             'encryption_key_id': 'key-1'}],
              'volume_types': luks}
    for size in (1, 2, 5):
        sv('snap-encrypted-size%d' % size, 'encrypted volume %d GiB from a '
           '1 GiB snapshot whose image is 1 GiB + 2 MiB (LUKS header): '
           'resize to image size + difference (RBD-25)' % size,
           volume=target(size, encryption_key_id='key-2', volume_type='luks'),
           db=enc_db,
           cl={'fsid': FSID, 'pools': pools(snap_size=GiB + 2 * MiB)})
    sv('snap-encrypted-flatten-bigger', 'encrypted, flatten on, bigger',
       config=cfg(rbd_flatten_volume_from_snapshot=True),
       volume=target(2, encryption_key_id='key-2', volume_type='luks'),
       db=enc_db, cl={'fsid': FSID, 'pools': pools(snap_size=GiB + 2 * MiB)})
    sv('snap-unencrypted-odd-image-size', 'unencrypted 2 GiB volume whose '
       'snapshot image is 1 GiB + 2 MiB: resized to exactly 2 GiB',
       volume=target(2),
       cl={'fsid': FSID, 'pools': pools(snap_size=GiB + 2 * MiB)})
    sv('snap-volume-size-smaller-than-snapshot', 'snapshot volume_size 2, '
       'new volume 1 GiB: no resize (only when bigger)',
       volume=target(1),
       db={'volumes': [dbvol(SRC, size=2)],
           'snapshots': [{'id': SNAP, 'volume_id': SRC, 'volume_size': 2}]},
       cl={'fsid': FSID, 'pools': pools(snap_size=2 * GiB)})
    sv('snap-row-missing', 'snapshot_id names no snapshot row: the flow '
       'cannot load the snapshot', db={'volumes': [dbvol(SRC)]})
    sv('snap-missing-in-cluster', 'snapshot row present but no RBD snapshot: '
       'clone raises ImageNotFound', cl={'fsid': FSID,
                                         'pools': pools(present=False)})
    sv('snap-volume-missing-in-cluster', 'snapshot volume image absent',
       cl={'fsid': FSID, 'pools': {'volumes': {}}})
    sv('snap-unprotected-v1', 'unprotected snapshot on a clone v1 cluster: '
       'InvalidArgument', cl={'fsid': FSID, 'pools': pools(False)})
    sv('snap-unprotected-v2', 'unprotected snapshot on a clone v2 cluster: '
       'cloned', cl={'fsid': FSID, 'clone_v2': True, 'pools': pools(False)})
    sv('snap-protected-v2', 'protected snapshot, clone v2', cl={
        'fsid': FSID, 'clone_v2': True, 'pools': pools()})
    sv('snap-bootable-origin', 'bootable origin volume: the new volume is '
       'bootable (MGR-8)', db={'volumes': [dbvol(SRC, bootable=True)],
                               'snapshots': [{'id': SNAP, 'volume_id': SRC}]})
    sv('snap-origin-name-id', 'origin volume with name_id: the snapshot is '
       'on volume-<name_id>',
       db={'volumes': [dbvol(SRC, name_id=par(9))],
           'snapshots': [{'id': SNAP, 'volume_id': SRC}]},
       cl={'fsid': FSID, 'pools': pools(name=vn(par(9)))})
    sv('snap-origin-name-id-image-under-id', 'origin with name_id but the '
       'snapshot sits on volume-<id>: not found',
       db={'volumes': [dbvol(SRC, name_id=par(9))],
           'snapshots': [{'id': SNAP, 'volume_id': SRC}]})
    sv('snap-dest-exists', 'destination image already exists: ImageExists',
       cl={'fsid': FSID, 'pools': dict(volumes=dict(
           pools()['volumes'], **{vn(VOL): rimg()}))})
    sv('snap-chunk-32', 'rbd_store_chunk_size 32: clone order (not visible)',
       config=cfg(rbd_store_chunk_size=32))
    sv('snap-multiattach-type', 'multiattach type with features 61: '
       '_setup_volume update_features', volume=target(
           1, volume_type='multi'),
       db={'volumes': [dbvol(SRC)],
           'snapshots': [{'id': SNAP, 'volume_id': SRC}],
           'volume_types': [{'name': 'multi', 'extra_specs': {
               'multiattach': '<is> True'}}]},
       cl={'fsid': FSID, 'rbd_default_features': 61, 'pools': pools()})
    sv('snap-replication-type', 'replication_enabled type',
       volume=target(1, volume_type='repl'),
       db={'volumes': [dbvol(SRC)],
           'snapshots': [{'id': SNAP, 'volume_id': SRC}],
           'volume_types': [{'name': 'repl', 'extra_specs': {
               'replication_enabled': '<is> True'}}]})
    sv('snap-unreachable', 'cluster unreachable: DriverNotInitialized',
       cl={'fsid': FSID, 'reachable': False, 'pools': pools()})


# =============================================================================
# create_volume (§5.8 RBD-31)
# =============================================================================

def fam_raw():
    def raw(name, desc, config=None, volume=None, cl=None, **kw):
        fields = {
            'config': config if config is not None else cfg(),
            'volume': volume if volume is not None else target(1),
            'cluster': cl or cluster(),
        }
        fields.update(kw)
        add(name, desc, 'create_volume', **fields)

    for chunk in (1, 8, 32):
        raw('raw-chunk-%d' % chunk, 'empty volume, rbd_store_chunk_size %d'
            % chunk, config=cfg(rbd_store_chunk_size=chunk))
    raw('raw-size-100', 'empty 100 GiB volume', volume=target(100))
    raw('raw-exists', 'image of that name exists: ImageExists',
        cl=cluster({vn(VOL): rimg()}))
    luks = {'volume_types': [{'name': 'luks', 'encryption': {}}]}
    for size in (1, 3):
        raw('raw-encrypted-%dg' % size, 'encrypted %d GiB volume: LUKS '
            'container built with qemu-img and rbd import (RBD-31)' % size,
            volume=target(size, encryption_key_id='key-1',
                          volume_type='luks'), db=luks)
    raw('raw-encrypted-exists', 'encrypted, image exists: the import fails',
        volume=target(1, encryption_key_id='key-1', volume_type='luks'),
        db=luks, cl=cluster({vn(VOL): rimg()}))
    raw('raw-encrypted-chunk-8', 'encrypted with chunk size 8',
        volume=target(1, encryption_key_id='key-1', volume_type='luks'),
        db=luks, config=cfg(rbd_store_chunk_size=8))
    specs = {'multi': {'multiattach': '<is> True'},
             'repl': {'replication_enabled': '<is> True'},
             'both': {'multiattach': '<is> True',
                      'replication_enabled': '<is> True'}}
    for tname, sp in sorted(specs.items()):
        for feats in (None, 61):
            raw('raw-type-%s%s' % (tname, '-features-61' if feats else ''),
                'volume type %s %r, cluster default features %s: '
                '_setup_volume after create (RBD-14); failure removes the '
                'image' % (tname, sp, feats),
                volume=target(1, volume_type=tname),
                db={'volume_types': [{'name': tname, 'extra_specs': sp}]},
                cl=cluster(rbd_default_features=feats) if feats
                else cluster())
    raw('raw-features-61', 'cluster rbd_default_features 61, plain type',
        cl=cluster(rbd_default_features=61))
    raw('raw-features-0', 'rbd_default_features 0: layering used',
        cl=cluster(rbd_default_features=0))
    raw('raw-pool-missing', 'rbd_pool missing: driver setup fails, '
        'DriverNotInitialized', config=cfg(rbd_pool='nopool'))
    raw('raw-unreachable', 'cluster unreachable: DriverNotInitialized',
        cl=cluster(reachable=False))
    raw('raw-no-host', 'volume host null: InvalidVolume before the flow, '
        'status left creating', volume=target(1, host=None))
    raw('raw-use-quota-false', 'temporary volume', volume=target(
        1, use_quota=False))


# =============================================================================
# delete_volume (§5.9-5.11, Q11)
# =============================================================================

def fam_del():
    def dv(name, desc, vols=None, config=None, volume=None, cl=None, **kw):
        c = cl or {'fsid': FSID, 'pools': {'volumes': vols if vols is not None
                                           else {vn(VOL): rimg()}}}
        fields = {
            'config': config if config is not None else cfg(),
            'volume': volume if volume is not None else target(1),
            'cluster': c,
        }
        fields.update(kw)
        add(name, desc, 'delete_volume', **fields)

    me = vn(VOL)
    dv('del-plain', 'plain image: removed (RBD-36 fast path)')
    dv('del-missing', 'image absent: success without ops (RBD-32)', {})
    dv('del-name-id', 'volume with name_id: volume-<name_id> removed',
       {vn(par(9)): rimg()}, volume=target(1, name_id=par(9)))
    dv('del-name-id-missing', 'name_id set, only volume-<id> exists: '
       'nothing deleted', volume=target(1, name_id=par(9)))
    dv('del-unreachable', 'cluster unreachable', cl={
        'fsid': FSID, 'reachable': False,
        'pools': {'volumes': {me: rimg()}}})
    dv('del-pool-missing', 'rbd_pool missing', config=cfg(rbd_pool='nopool'))
    # backup snapshots
    valid = ['backup.%s.snap.1700000000.0' % BACKUP, 'backup.abc-1.snap.x',
             'backup.a.snap.b.c']
    near = ['backup.ABC.snap.1', 'backup..snap.1', 'backup.a.snap.',
            'xbackup.a.snap.1', 'backup.a.snapx.1', 'backup.a_b.snap.1',
            'backup.a.SNAP.1']
    for i, n in enumerate(valid):
        dv('del-backup-snap-valid-%d' % i, 'backup snapshot %r matches '
           '^backup\\.([a-z0-9\\-]+?)\\.snap\\.(.+)$: removed, then the image '
           '(RBD-33)' % n, {me: rimg(snaps=[snap(n, False)])})
    for i, n in enumerate(near):
        dv('del-backup-snap-near-%d' % i, 'snapshot %r does not match the '
           'backup pattern: kept, remove fails ImageHasSnapshots, retries, '
           'trash' % n, {me: rimg(snaps=[snap(n, False)])})
    dv('del-backup-snaps-two-and-user', 'two backup snapshots and a user '
       'snapshot: backups removed, then trash',
       {me: rimg(snaps=[snap(valid[0], False), snap(valid[1], False),
                        snap('snapshot-%s' % SNAP)])})
    dv('del-backup-snap-protected', 'protected backup snapshot: remove_snap '
       'raises ImageBusy (escapes)', {me: rimg(snaps=[snap(valid[0], True)])})
    # clone_snap -> rename
    dv('del-clone-snap-rename', 'volume with a .clone_snap (has COW '
       'children): renamed to .deleted (RBD-35)',
       {me: rimg(snaps=[snap(vn(child(1)) + '.clone_snap')]),
        vn(child(1)): rimg(parent=pref(me, vn(child(1)) + '.clone_snap'))})
    dv('del-clone-snap-no-children', 'volume with a .clone_snap but no '
       'children left: still renamed', {me: rimg(snaps=[snap(
           vn(child(1)) + '.clone_snap')])})
    dv('del-clone-snap-deleted-taken', 'rename target .deleted already '
       'exists: ImageExists escapes',
       {me: rimg(snaps=[snap(vn(child(1)) + '.clone_snap')]),
        me + '.deleted': rimg()})
    dv('del-clone-snap-and-backup', 'backup snapshot removed first, then '
       'the .clone_snap rename',
       {me: rimg(snaps=[snap(valid[0], False),
                        snap(vn(child(1)) + '.clone_snap')])})
    dv('del-clone-snap-suffix-only', 'snapshot named ".clone_snap" exactly '
       '(ends with .clone_snap): rename', {me: rimg(snaps=[snap(
           '.clone_snap')])})
    dv('del-clone-snap-flattened-parent', 'volume flattened but its '
       'clone_snap keeps a parent: still a rename',
       {me: rimg(snaps=[snap(vn(child(1)) + '.clone_snap',
                             parent=pref(vn(par(1)), me + '.clone_snap'))]),
        vn(par(1)): rimg(snaps=[snap(me + '.clone_snap')])})
    # clone whose remove succeeds: parent keeps its snap (Q11)
    dv('del-clone-remove-keeps-parent-snap', 'a COW clone of a live parent: '
       'remove succeeds, the parent clone_snap is not cleaned (Q11)',
       {me: rimg(parent=pref(vn(par(1)), me + '.clone_snap')),
        vn(par(1)): rimg(snaps=[snap(me + '.clone_snap')])})
    dv('del-clone-of-deleted-parent-removed', 'clone of a .deleted parent: '
       'fast remove succeeds, the .deleted parent stays (Q11)',
       {me: rimg(parent=pref(vn(par(1)) + '.deleted', me + '.clone_snap')),
        vn(par(1)) + '.deleted': rimg(snaps=[snap(me + '.clone_snap')])})
    # user snapshots -> trash
    for n in (1, 2):
        dv('del-user-snaps-%d' % n, '%d user snapshot(s): remove fails '
           'ImageHasSnapshots, retried, trash (RBD-36..38, RBD-40)' % n,
           {me: rimg(snaps=[snap('snapshot-%s' % SNAP[:-1] + str(i))
                            for i in range(n)])})
    for r in (1, 3, 5):
        dv('del-user-snap-retries-%d' % r, 'user snapshot with '
           'rados_connection_retries %d: number of remove attempts' % r,
           {me: rimg(snaps=[snap('snapshot-%s' % SNAP)])},
           config=cfg(rados_connection_retries=r))
    # children to flatten
    csn = 'snapshot-%s' % SNAP
    dv('del-snap-with-child', 'user snapshot with one COW child: remove '
       'fails, the child is flattened, remove still fails (snapshot), trash',
       {me: rimg(snaps=[snap(csn)]),
        vn(child(1)): rimg(parent=pref(me, csn))})
    dv('del-snap-with-children-3', 'user snapshot with three children, '
       'flattened in (pool, image) order',
       {me: rimg(snaps=[snap(csn)]),
        vn(child(3)): rimg(parent=pref(me, csn)),
        vn(child(1)): rimg(parent=pref(me, csn)),
        vn(child(2)): rimg(parent=pref(me, csn))})
    dv('del-snap-with-child-other-pool', 'a child in another pool: '
       '_flatten_children flattens it there',
       None, cl={'fsid': FSID, 'pools': {
           'volumes': {me: rimg(snaps=[snap(csn)])},
           'other': {vn(child(1)): rimg(parent=pref(me, csn))}}})
    dv('del-snap-with-children-two-pools', 'children in two pools, '
       'flattened in (pool, image) order',
       None, cl={'fsid': FSID, 'pools': {
           'volumes': {me: rimg(snaps=[snap(csn)]),
                       vn(child(2)): rimg(parent=pref(me, csn))},
           'other': {vn(child(1)): rimg(parent=pref(me, csn))}}})
    dv('del-snaps-children-two-snaps', 'two user snapshots each with a '
       'child', {me: rimg(snaps=[snap(csn), snap('snapshot-x')]),
                 vn(child(1)): rimg(parent=pref(me, csn)),
                 vn(child(2)): rimg(parent=pref(me, 'snapshot-x'))})
    dv('del-v2-unprotected-snap-child', 'clone v2: an unprotected user '
       'snapshot with a child: child flattened, trash',
       None, cl={'fsid': FSID, 'clone_v2': True, 'pools': {'volumes': {
           me: rimg(snaps=[snap(csn, False)]),
           vn(child(1)): rimg(parent=pref(me, csn))}}})
    # watchers
    for r in (1, 3, 5):
        dv('del-watchers-retries-%d' % r, 'image with a watcher, '
           'rados_connection_retries %d: remove ImageBusy, flatten children '
           '(none), retried remove, VolumeIsBusy (RBD-37)' % r,
           {me: rimg(watchers=1)}, config=cfg(rados_connection_retries=r))
    dv('del-watchers-and-snap', 'watcher and a user snapshot: remove raises '
       'ImageBusy first (watchers checked first)',
       {me: rimg(watchers=1, snaps=[snap(csn)])})
    dv('del-watchers-child', 'watcher and a snapshot with a child: child '
       'flattened, still busy', {me: rimg(watchers=2, snaps=[snap(csn)]),
                                 vn(child(1)): rimg(parent=pref(me, csn))})
    # deferred deletion
    for en, delay in [(True, 0), (True, 3600), (False, 3600)]:
        dv('del-deferred-%s-%d' % ('on' if en else 'off', delay),
           'enable_deferred_deletion=%s, deferred_deletion_delay=%d: plain '
           'image still removed directly (RBD-43)' % (en, delay),
           config=cfg(enable_deferred_deletion=en,
                      deferred_deletion_delay=delay))
        dv('del-deferred-%s-%d-snap' % ('on' if en else 'off', delay),
           'enable_deferred_deletion=%s, delay %d with a user snapshot: '
           'trash delay (RBD-38)' % (en, delay),
           {me: rimg(snaps=[snap(csn)])},
           config=cfg(enable_deferred_deletion=en,
                      deferred_deletion_delay=delay))
    # parent chains after a trash move
    def chain_after_trash(levels, deferred=False, clone_v2=False,
                          other_pool=False):
        """me (with a user snapshot) -> p1.deleted -> ... -> pN(.deleted)."""
        pools = {'volumes': {}}
        parent_pool = 'other' if other_pool else 'volumes'
        names = [me] + [vn(par(i)) + '.deleted' for i in range(1, levels + 1)]
        bases = [me] + [vn(par(i)) for i in range(1, levels + 1)]
        for i, nm in enumerate(names):
            img = rimg()
            if i == 0:
                img['snaps'] = [snap(csn)]
            else:
                img['snaps'] = [snap(bases[i - 1] + '.clone_snap')]
            if i < levels:
                img['parent'] = pref(names[i + 1], bases[i] + '.clone_snap',
                                     parent_pool if i == 0 else 'volumes')
            pools['volumes'][nm] = img
        if other_pool:
            # the real parent sits in "other"; a same-named image in the
            # Cinder pool is what _delete_clone_parent_refs opens
            pools['other'] = {names[1]: rimg(snaps=[snap(me + '.clone_snap')])}
        c = {'fsid': FSID, 'pools': pools}
        if clone_v2:
            c['clone_v2'] = True
        return c

    for levels in (1, 2, 3):
        dv('del-trash-parent-chain-%d' % levels, 'volume with a user '
           'snapshot, clone of a chain of %d .deleted ancestors: trash move, '
           'then the parent walk unprotects the parent clone_snap, which '
           'still has the trashed volume as child (RBD-39..42)' % levels,
           cl=chain_after_trash(levels))
        dv('del-trash-parent-chain-%d-other-pool' % levels, 'the parent '
           'named in parent_info is in pool "other" but '
           '_delete_clone_parent_refs opens that name in the Cinder pool, '
           'where an unrelated .deleted chain of %d levels has no children: '
           'it is cleaned level by level' % levels,
           cl=chain_after_trash(levels, other_pool=True))
    dv('del-trash-parent-chain-2-other-pool-deferred', 'same with deferred '
       'deletion (delay 60): the first parent is trash-moved instead of '
       'removed, so it stays a child of the grandparent snapshot and the '
       'next unprotect fails with ImageBusy (RBD-42)',
       cl=chain_after_trash(2, other_pool=True),
       config=cfg(enable_deferred_deletion=True, deferred_deletion_delay=60))
    dv('del-trash-parent-chain-1-clone-v2', 'clone v2 cluster, clone of a '
       '.deleted parent with a user snapshot', cl=chain_after_trash(
           1, clone_v2=True))
    dv('del-trash-parent-live', 'clone of a live (not .deleted) parent with '
       'a user snapshot: trash then parent cleanup attempt',
       {me: rimg(snaps=[snap(csn)],
                 parent=pref(vn(par(1)), me + '.clone_snap')),
        vn(par(1)): rimg(snaps=[snap(me + '.clone_snap')])})
    dv('del-trash-parent-unprotected-v2', 'clone v2: parent clone_snap not '
       'protected; unprotect in the parent walk raises InvalidArgument',
       cl={'fsid': FSID, 'clone_v2': True, 'pools': {'volumes': {
           me: rimg(snaps=[snap(csn)],
                    parent=pref(vn(par(1)) + '.deleted', me + '.clone_snap')),
           vn(par(1)) + '.deleted': rimg(snaps=[snap(me + '.clone_snap',
                                                     False)])}}})
    dv('del-trash-glance-parent', 'clone of a glance image (parent snap '
       '"snap") with a user snapshot: not a Cinder clone, no parent walk',
       None, cl={'fsid': FSID, 'pools': {
           'volumes': {me: rimg(snaps=[snap(csn)],
                                parent=pref(IMG, 'snap', 'images'))},
           'images': glance_pool()}})
    dv('del-trash-watchers-after', 'user snapshot (trash path) on an '
       'otherwise idle image with retries 1', {me: rimg(snaps=[snap(csn)])},
       config=cfg(rados_connection_retries=1))
    # clone v2 variants
    dv('del-v2-plain', 'clone v2 cluster, plain image', cl={
        'fsid': FSID, 'clone_v2': True, 'pools': {'volumes': {me: rimg()}}})
    dv('del-v2-clone-snap', 'clone v2: .clone_snap -> rename', cl={
        'fsid': FSID, 'clone_v2': True, 'pools': {'volumes': {
            me: rimg(snaps=[snap(vn(child(1)) + '.clone_snap', False)]),
            vn(child(1)): rimg(parent=pref(me, vn(child(1)) + '.clone_snap'))
        }}})
    dv('del-v2-clone-of-parent', 'clone v2: clone of a live parent, removed; '
       'parent snapshot kept', cl={'fsid': FSID, 'clone_v2': True, 'pools': {
           'volumes': {me: rimg(parent=pref(vn(par(1)), me + '.clone_snap')),
                       vn(par(1)): rimg(snaps=[snap(me + '.clone_snap',
                                                    False)])}}})
    dv('del-v2-user-snap-child', 'clone v2: protected user snapshot with a '
       'child: child flattened, trash', cl={
           'fsid': FSID, 'clone_v2': True, 'pools': {'volumes': {
               me: rimg(snaps=[snap(csn)]),
               vn(child(1)): rimg(parent=pref(me, csn))}}})


# =============================================================================
# api_create / api_extract (§2.2, §2.3, Q3-Q5, Q15)
# =============================================================================

SERVICES = [{'host': 'hostA@ceph', 'availability_zone': 'nova'},
            {'host': 'hostB@ceph', 'availability_zone': 'az1'}]


def fam_api():
    def api(name, desc, request, op='api_create', db=None, **kw):
        d = {'services': SERVICES}
        if db:
            d.update(db)
        req = {'project_id': 'project-1'}
        req.update(request)
        add(name, desc, op, config=kw.pop('config', {}), db=d, request=req,
            **kw)

    srcv = dbvol(SRC, size=2, availability_zone='az1')
    snap_db = {'volumes': [dbvol(SRC, size=3, availability_zone='az1')],
               'snapshots': [{'id': SNAP, 'volume_id': SRC,
                              'volume_size': 3}]}
    # exclusive sources (API-15)
    img_only = image()
    combos = [
        ('snap-source', {'snapshot_id': SNAP, 'source_volid': SRC}),
        ('snap-image', {'snapshot_id': SNAP, 'image_id': IMG}),
        ('source-image', {'source_volid': SRC, 'image_id': IMG}),
        ('backup-snap', {'snapshot_id': SNAP,
                         'backup': {'id': BACKUP, 'size': 3}}),
        ('backup-source', {'source_volid': SRC,
                           'backup': {'id': BACKUP, 'size': 3}}),
        ('all-three', {'snapshot_id': SNAP, 'source_volid': SRC,
                       'image_id': IMG}),
    ]
    for tag, req in combos:
        for op in ('api_create', 'api_extract'):
            api('%s-exclusive-%s' % (op.replace('_', '-'), tag),
                'two or more of snapshot/image/source volume/backup: '
                'InvalidInput "May specify only one of" (API-15)',
                dict(req, size=3, availability_zone='az1'), op=op,
                db=snap_db, image=img_only)
    # source statuses (API-17)
    for st in ('error', 'creating', 'deleting'):
        api('api-snapshot-status-%s' % st, 'snapshot status %s: '
            'InvalidSnapshot' % st, {'snapshot_id': SNAP, 'size': 3},
            db={'volumes': snap_db['volumes'],
                'snapshots': [{'id': SNAP, 'volume_id': SRC,
                               'volume_size': 3, 'status': st}]})
    for st in ('in-use', 'error', 'creating'):
        api('api-source-status-%s' % st, 'source volume status %s: only '
            'available/in-use accepted (InvalidVolume)' % st,
            {'source_volid': SRC, 'size': 2},
            db={'volumes': [dict(srcv, status=st)]})
    for st in ('error', 'creating'):
        api('api-extract-backup-status-%s' % st, 'backup status %s: '
            'InvalidBackup' % st,
            {'backup': {'id': BACKUP, 'size': 2, 'status': st}, 'size': 2},
            op='api_extract')
    api('api-extract-backup-size-default', 'size omitted with a backup: '
        'size from the backup (API-18)',
        {'backup': {'id': BACKUP, 'size': 4}}, op='api_extract')
    api('api-extract-backup-size-smaller', 'size 1 < backup size 4: '
        'InvalidInput', {'backup': {'id': BACKUP, 'size': 4}, 'size': 1},
        op='api_extract')
    api('api-create-backup-ok', 'API.create with a backup and size',
        {'backup': {'id': BACKUP, 'size': 2}, 'size': 2})
    # size forms (API-9, API-10, API-18)
    sizes = [('int-1', 1), ('str-2', '2'), ('str-2-5', '2.5'),
             ('str-1e3', '1e3'), ('str-abc', 'abc'), ('zero', 0),
             ('neg', -1), ('null', None), ('true', True),
             ('false', False), ('str-3-0', '3.0'), ('str-space', ' 3 '),
             ('str-empty', ''), ('big', 1000000)]
    for tag, size in sizes:
        for op in ('api_create', 'api_extract'):
            api('%s-size-nosrc-%s' % (op.replace('_', '-'), tag), 'size %r, no '
                'source: API.create checks (API-9/10) then _extract_size '
                '(as_int, API-18)' % (size,), {'size': size}, op=op)
    for tag, size in [('null', None), ('zero', 0), ('float-str', '3.5'),
                      ('bigger', 5), ('smaller', 2)]:
        for op in ('api_create', 'api_extract'):
            api('%s-size-snapshot-%s' % (op.replace('_', '-'), tag),
                'size %r with a 3 GiB snapshot (API-18)' % (size,),
                {'size': size, 'snapshot_id': SNAP}, op=op, db=snap_db)
            api('%s-size-source-%s' % (op.replace('_', '-'), tag),
                'size %r with a 3 GiB source volume (API-18)' % (size,),
                {'size': size, 'source_volid': SRC}, op=op,
                db={'volumes': [dbvol(SRC, size=3,
                                      availability_zone='az1')]})
    # image checks (API-20)
    for st in ('queued', 'saving', 'deleted', 'deactivated', 'killed',
               'uploading', 'importing', 'pending_delete'):
        api('api-image-status-%s' % st, 'image status %s: InvalidInput '
            '"not active" (API-20.1)' % st, {'size': 2, 'image_id': IMG},
            image=image(status=st))
    for tag, isize, vsize, vol in [
            ('exact-2g', 2 * GiB, None, 2), ('2g-plus-1', 2 * GiB + 1, None, 2),
            ('1-byte', 1, None, 1), ('exact-1g-into-1', GiB, GiB, 1),
            ('size-0', 0, None, 1),
            ('vsize-exact', GiB, 2 * GiB, 2),
            ('vsize-plus-1', GiB, 2 * GiB + 1, 2),
            ('vsize-zero', GiB, 0, 1),
            ('size-null', None, None, 1)]:
        api('api-image-size-%s' % tag, 'image size %s, virtual_size %s, '
            'volume %d GiB: GiB-ceil comparisons (API-20.2/20.4)'
            % (isize, vsize, vol), {'size': vol, 'image_id': IMG},
            image=image(size=isize, virtual_size=vsize))
    for md, vol in [(2, 2), (3, 2), (0, 1), (1, 1)]:
        api('api-image-min-disk-%d-vol-%d' % (md, vol), 'min_disk %d, volume '
            '%d GiB (API-20.3)' % (md, vol), {'size': vol, 'image_id': IMG},
            image=image(min_disk=md))
    api('api-image-not-found', 'image id not known to glance: ImageNotFound',
        {'size': 1, 'image_id': IMG2}, image=image())
    api('api-image-public-other-owner', 'public image of another project',
        {'size': 1, 'image_id': IMG},
        image=image(owner='project-9', visibility='public'))
    api('api-extract-image-size-omitted', 'api_extract with an image and no '
        'size: no default from an image (API-5), InvalidInput',
        {'image_id': IMG}, op='api_extract', image=image())
    # volume type precedence (API-21)
    t_gold = {'name': 'gold'}
    t_silver = {'name': 'silver'}
    t_id = {'name': 'byid', 'id': 'bbbbbbbb-0000-4000-8000-000000000001'}
    types_db = [t_gold, t_silver, t_id]
    api('api-type-requested', 'requested type wins', {'size': 1,
                                                      'volume_type': 'gold'},
        db={'volume_types': types_db})
    api('api-type-default', 'no type anywhere: __DEFAULT__', {'size': 1},
        db={'volume_types': types_db})
    api('api-type-default-configured', 'default_volume_type=silver',
        {'size': 1}, db={'volume_types': types_db},
        config={'default_volume_type': 'silver'})
    api('api-type-default-misconfigured', 'default_volume_type names a '
        'missing type: VolumeTypeDefaultMisconfiguredError', {'size': 1},
        config={'default_volume_type': 'nosuch'})
    api('api-type-from-source', 'source volume of type gold: inherited',
        {'size': 2, 'source_volid': SRC},
        db={'volume_types': types_db,
            'volumes': [dict(srcv, volume_type='gold')]})
    api('api-type-from-snapshot', 'snapshot of a silver volume: inherited',
        {'size': 3, 'snapshot_id': SNAP},
        db={'volume_types': types_db,
            'volumes': [dict(snap_db['volumes'][0], volume_type='silver')],
            'snapshots': snap_db['snapshots']})
    api('api-type-image-property-name', 'image property '
        'cinder_img_volume_type=gold (by name)',
        {'size': 1, 'image_id': IMG}, db={'volume_types': types_db},
        image=image(properties={'cinder_img_volume_type': 'gold'}))
    api('api-type-image-property-id', 'image property naming a type by id',
        {'size': 1, 'image_id': IMG}, db={'volume_types': types_db},
        image=image(properties={'cinder_img_volume_type': t_id['id']}))
    api('api-type-image-property-missing', 'image property naming an '
        'unknown type: the lookup error is raised',
        {'size': 1, 'image_id': IMG}, db={'volume_types': types_db},
        image=image(properties={'cinder_img_volume_type': 'nosuch'}))
    api('api-type-image-property-empty', 'image property empty string',
        {'size': 1, 'image_id': IMG}, db={'volume_types': types_db},
        image=image(properties={'cinder_img_volume_type': ''}))
    api('api-type-requested-over-image', 'requested type beats the image '
        'property', {'size': 1, 'image_id': IMG, 'volume_type': 'silver'},
        db={'volume_types': types_db},
        image=image(properties={'cinder_img_volume_type': 'gold'}))
    api('api-extract-type-requested-over-source', 'api_extract: requested '
        'silver, source gold: requested wins (no retype check in the task)',
        {'size': 2, 'source_volid': SRC, 'volume_type': 'silver'},
        op='api_extract',
        db={'volume_types': types_db,
            'volumes': [dict(srcv, volume_type='gold')]})
    # retype checks (API-12, Q15)
    api('api-retype-source-not-possible', 'requested type differs from the '
        'source type, 2 enabled services, no volume_backend_name: '
        'InvalidInput', {'size': 2, 'source_volid': SRC,
                         'volume_type': 'silver'},
        db={'volume_types': types_db,
            'volumes': [dict(srcv, volume_type='gold')]})
    api('api-retype-source-same-backend-name', 'both types carry '
        'volume_backend_name=ceph: allowed',
        {'size': 2, 'source_volid': SRC, 'volume_type': 'silver'},
        db={'volume_types': [
            {'name': 'gold', 'extra_specs': {'volume_backend_name': 'ceph'}},
            {'name': 'silver', 'extra_specs': {
                'volume_backend_name': 'ceph'}}],
            'volumes': [dict(srcv, volume_type='gold')]})
    api('api-retype-one-disabled-service', 'exactly one *disabled* '
        'cinder-volume service: _retype_is_possible says yes (Q15)',
        {'size': 2, 'source_volid': SRC, 'volume_type': 'silver'},
        db={'volume_types': types_db,
            'volumes': [dict(srcv, volume_type='gold')],
            'services': [{'host': 'hostA@ceph', 'availability_zone': 'az1',
                          'disabled': True}]})
    api('api-retype-one-enabled-service', 'exactly one enabled service (no '
        'disabled one): not allowed', {'size': 2, 'source_volid': SRC,
                                       'volume_type': 'silver'},
        db={'volume_types': types_db,
            'volumes': [dict(srcv, volume_type='gold')],
            'services': [{'host': 'hostA@ceph', 'availability_zone': 'az1'}]})
    api('api-retype-encryption-differs', 'source unencrypted, requested type '
        'encrypted: InvalidInput', {'size': 2, 'source_volid': SRC,
                                    'volume_type': 'luks'},
        db={'volume_types': [{'name': 'luks', 'encryption': {}}],
            'volumes': [srcv],
            'services': [{'host': 'hostA@ceph', 'availability_zone': 'az1',
                          'disabled': True}]})
    api('api-retype-snapshot-not-possible', 'snapshot of a gold volume, '
        'requested silver: InvalidInput',
        {'size': 3, 'snapshot_id': SNAP, 'volume_type': 'silver'},
        db={'volume_types': types_db,
            'volumes': [dict(snap_db['volumes'][0], volume_type='gold')],
            'snapshots': snap_db['snapshots']})
    # AZ algorithm (API-22)
    def azt(spec):
        return {'volume_types': [{'name': 'azt', 'extra_specs': {
            'RESKEY:availability_zones': spec}}]}

    az_specs = [('nova3-commas', 'nova3,,,'), ('commas-only', ',,'),
                ('empty', ''), ('space', ' '), ('a-space-b', 'az1, ,nova'),
                ('spaced-list', 'az1 , nova'), ('single-az1', 'az1'),
                ('unknown', 'az9'), ('both', 'az1,nova'),
                ('case', 'AZ1'), ('az1-unknown', 'az1,az9')]
    for tag, spec in az_specs:
        for req_az in (None, 'az1'):
            api('api-az-type-%s-%s' % (tag, 'req-az1' if req_az else
                                       'no-req'),
                'type AZ spec %r, requested AZ %r: parse (drop exactly-empty '
                'items, strip), intersect with known zones (API-22.1/2/6)'
                % (spec, req_az),
                {'size': 1, 'volume_type': 'azt',
                 'availability_zone': req_az},
                db=dict(azt(spec), services=SERVICES + [
                    {'host': 'hostC@ceph', 'availability_zone': 'nova3'}]))
    api('api-az-type-space-fallback', 'type spec " " and fallback enabled '
        'with an unknown requested AZ', {'size': 1, 'volume_type': 'azt',
                                         'availability_zone': 'az9'},
        db=azt(' '), config={'allow_availability_zone_fallback': True})
    api('api-az-type-fallback-not-revalidated', 'type restricted to az1, '
        'requested unknown az9, fallback: storage AZ nova is used although '
        'the type does not allow it (Q5)',
        {'size': 1, 'volume_type': 'azt', 'availability_zone': 'az9'},
        db=azt('az1'), config={'allow_availability_zone_fallback': True})
    api('api-az-type-req-not-in-type', 'type restricted to az1, requested '
        'nova (known, not in the type): InvalidAvailabilityZone',
        {'size': 1, 'volume_type': 'azt', 'availability_zone': 'nova'},
        db=azt('az1'))
    api('api-az-type-multi-no-req', 'type allows az1 and nova, none '
        'requested: both returned, no AZ set on the volume (API-22.8)',
        {'size': 1, 'volume_type': 'azt'}, db=azt('az1,nova'))
    api('api-extract-az-type-multi-no-req', 'api_extract of the same',
        {'size': 1, 'volume_type': 'azt'}, op='api_extract',
        db=azt('az1,nova'))
    api('api-az-type-no-default-applied', 'type restricted, '
        'default_availability_zone set: no default applied with type AZs',
        {'size': 1, 'volume_type': 'azt'}, db=azt('az1,nova'),
        config={'default_availability_zone': 'nova'})
    # group AZ (API-22.3)
    api('api-az-group-overrides', 'group AZ az1 replaces the requested '
        'nova', {'size': 1, 'availability_zone': 'nova',
                 'volume_type': 'gold',
                 'group': {'id': GROUP, 'availability_zone': 'az1'}},
        db={'volume_types': types_db})
    api('api-az-group-no-az', 'group without AZ: requested AZ kept',
        {'size': 1, 'availability_zone': 'az1', 'volume_type': 'gold',
         'group': {'id': GROUP, 'availability_zone': None}},
        db={'volume_types': types_db})
    api('api-az-group-unknown-az', 'group AZ unknown: '
        'InvalidAvailabilityZone', {'size': 1, 'volume_type': 'gold',
                                    'group': {'id': GROUP,
                                              'availability_zone': 'az9'}},
        db={'volume_types': types_db})
    api('api-group-no-type', 'group without a requested type: '
        'InvalidInput (API-11)', {'size': 1, 'group': {
            'id': GROUP, 'availability_zone': 'az1'}})
    api('api-group-status-error', 'group in status error: InvalidGroup',
        {'size': 1, 'volume_type': 'gold',
         'group': {'id': GROUP, 'status': 'error',
                   'availability_zone': 'az1'}},
        db={'volume_types': types_db})
    api('api-extract-group-status-creating', 'api_extract, group creating: '
        'accepted', {'size': 1, 'volume_type': 'gold',
                     'group': {'id': GROUP, 'status': 'creating',
                               'availability_zone': 'az1'}},
        op='api_extract', db={'volume_types': types_db})
    # snapshot / source AZs
    for op in ('api_create', 'api_extract'):
        o = op.replace('_', '-')
        api('%s-az-from-snapshot' % o, 'no AZ requested: the snapshot\'s '
            'volume AZ (API-22.4)', {'size': 3, 'snapshot_id': SNAP}, op=op,
            db=snap_db)
        api('%s-az-snapshot-mismatch' % o, 'requested nova, snapshot volume '
            'in az1, cloned_volume_same_az: InvalidInput (API-22.7)',
            {'size': 3, 'snapshot_id': SNAP, 'availability_zone': 'nova'},
            op=op, db=snap_db)
        api('%s-az-snapshot-mismatch-same-az-off' % o, 'same with '
            'cloned_volume_same_az false: allowed',
            {'size': 3, 'snapshot_id': SNAP, 'availability_zone': 'nova'},
            op=op, db=snap_db, config={'cloned_volume_same_az': False})
        api('%s-az-source-mismatch-same-az-off' % o, 'source in az1, '
            'requested nova, cloned_volume_same_az false: allowed',
            {'size': 2, 'source_volid': SRC, 'availability_zone': 'nova'},
            op=op, db={'volumes': [srcv]},
            config={'cloned_volume_same_az': False})
        api('%s-az-source-unknown-az' % o, 'source volume in a zone no '
            'service has: InvalidAvailabilityZone',
            {'size': 2, 'source_volid': SRC}, op=op,
            db={'volumes': [dict(srcv, availability_zone='az9')]})
        api('%s-az-source-unknown-fallback' % o, 'source in unknown az9 with '
            'fallback: storage AZ, then the same-AZ check fails',
            {'size': 2, 'source_volid': SRC}, op=op,
            db={'volumes': [dict(srcv, availability_zone='az9')]},
            config={'allow_availability_zone_fallback': True})
        api('%s-az-source-unknown-fallback-same-az-off' % o, 'same with '
            'cloned_volume_same_az false: the fallback zone is used',
            {'size': 2, 'source_volid': SRC}, op=op,
            db={'volumes': [dict(srcv, availability_zone='az9')]},
            config={'allow_availability_zone_fallback': True,
                    'cloned_volume_same_az': False})
    # defaults and fallback (API-22.5/6)
    api('api-az-default-unknown', 'default_availability_zone az9 (not a '
        'known zone), nothing requested: InvalidAvailabilityZone', {'size': 1},
        config={'default_availability_zone': 'az9'})
    api('api-az-default-unknown-fallback', 'default az9 unknown with '
        'fallback: falls back to default az9 again, not re-validated (Q5)',
        {'size': 1}, config={'default_availability_zone': 'az9',
                             'allow_availability_zone_fallback': True})
    api('api-az-storage-custom', 'storage_availability_zone=zoneS: known '
        'and used', {'size': 1},
        config={'storage_availability_zone': 'zoneS'})
    api('api-az-storage-custom-req-nova', 'storage zone zoneS, requested '
        'nova (a service zone): OK', {'size': 1, 'availability_zone': 'nova'},
        config={'storage_availability_zone': 'zoneS'})
    api('api-az-storage-empty', 'storage_availability_zone empty: not added '
        'to the known set, no default', {'size': 1},
        config={'storage_availability_zone': ''})
    api('api-az-disabled-service-zone', 'zone of a disabled service is '
        'still valid', {'size': 1, 'availability_zone': 'azd'},
        db={'services': SERVICES + [{'host': 'hostD@ceph',
                                     'availability_zone': 'azd',
                                     'disabled': True}]})
    api('api-az-scheduler-service-zone', 'zone of a cinder-scheduler service '
        'is not a volume zone', {'size': 1, 'availability_zone': 'azs'},
        db={'services': SERVICES + [{'host': 'sched', 'binary':
                                     'cinder-scheduler', 'topic':
                                     'cinder-scheduler',
                                     'availability_zone': 'azs'}]})
    api('api-az-empty-string', 'requested AZ "": not None, so no default '
        'is applied (API-22.5), and falsy, so the result is every known '
        'zone and the volume gets no AZ (API-22.8)',
        {'size': 1, 'availability_zone': ''})
    api('api-az-case', 'requested "NOVA": zones are case-sensitive',
        {'size': 1, 'availability_zone': 'NOVA'})
    api('api-extract-az-given', 'api_extract with az1', {
        'size': 1, 'availability_zone': 'az1'}, op='api_extract')
    api('api-extract-az-fallback-default', 'api_extract, unknown AZ, '
        'fallback to default az1', {'size': 1, 'availability_zone': 'x'},
        op='api_extract', config={'allow_availability_zone_fallback': True,
                                  'default_availability_zone': 'az1'})
    # encryption (API-23)
    enc_types = [{'name': 'luks', 'encryption': {}},
                 {'name': 'luksmulti', 'encryption': {},
                  'extra_specs': {'multiattach': '<is> True'}}]
    api('api-encrypted-type', 'encrypted type: a key is created',
        {'size': 1, 'volume_type': 'luks'}, db={'volume_types': enc_types})
    api('api-encrypted-from-encrypted-source', 'source volume of the '
        'encrypted type: key cloned', {'size': 2, 'source_volid': SRC},
        db={'volume_types': enc_types,
            'volumes': [dict(srcv, volume_type='luks',
                             encryption_key_id='key-1')]})
    api('api-encrypted-image-key', 'encrypted type and an image with '
        'cinder_encryption_key_id', {'size': 1, 'volume_type': 'luks',
                                     'image_id': IMG},
        db={'volume_types': enc_types},
        image=image(properties={'cinder_encryption_key_id': 'key-img'}))
    api('api-unencrypted-image-key', 'unencrypted type, image with a key id: '
        'no key', {'size': 1, 'image_id': IMG},
        image=image(properties={'cinder_encryption_key_id': 'key-img'}))
    api('api-encrypted-multiattach', 'encrypted multiattach type: '
        'InvalidVolume after the key was created (Q4)',
        {'size': 1, 'volume_type': 'luksmulti'},
        db={'volume_types': enc_types})
    api('api-extract-encrypted-multiattach', 'api_extract of the same',
        {'size': 1, 'volume_type': 'luksmulti'}, op='api_extract',
        db={'volume_types': enc_types})
    # multiattach spellings (API-24)
    for tag, val in [('is-true', '<is> True'), ('true', 'True'),
                     ('is-lower', '<is> true'), ('is-double-space',
                                                 '<is>  True'),
                     ('lower', 'true'), ('is-false', '<is> False'),
                     ('trailing-space', '<is> True ')]:
        api('api-multiattach-%s' % tag, 'extra spec multiattach=%r: '
            'multiattach only for exactly "<is> True" (API-24)' % val,
            {'size': 1, 'volume_type': 'm'},
            db={'volume_types': [{'name': 'm', 'extra_specs': {
                'multiattach': val}}]})
    # replication (API-25, Q3)
    for tag, specs in [('repl', {'replication_enabled': '<is> True'}),
                       ('repl-false', {'replication_enabled': '<is> False'}),
                       ('repl-multi', {'replication_enabled': '<is> True',
                                       'multiattach': '<is> True'})]:
        for op in ('api_create', 'api_extract'):
            api('%s-replication-%s' % (op.replace('_', '-'), tag),
                'type %r without QoS: replication_status (dead output, Q3)'
                % specs, {'size': 1, 'volume_type': 'r'}, op=op,
                db={'volume_types': [{'name': 'r', 'extra_specs': specs}]})
    # provisioning min/max (API-10)
    prov = {'volume_types': [{'name': 'prov', 'extra_specs': {
        'provisioning:min_vol_size': '2', 'provisioning:max_vol_size': '5'}}]}
    for size in (1, 2, 5, 6, '6', '3'):
        api('api-provisioning-size-%s' % (
            size if isinstance(size, int) else 'str-%s' % size),
            'type with min 2 / max 5, size %r (API-10)' % (size,),
            {'size': size, 'volume_type': 'prov'}, db=prov)
    api('api-provisioning-default-type', 'default type __DEFAULT__ carries '
        'provisioning:max_vol_size 3, size 4: InvalidInput',
        {'size': 4},
        db={'volume_types': [{'name': '__DEFAULT__', 'extra_specs': {
            'provisioning:max_vol_size': '3'}}]})
    api('api-provisioning-null-size-source', 'size null with a source '
        'volume: provision_filter_on_size int(None) TypeError',
        {'source_volid': SRC}, db={'volumes': [srcv]})
    api('api-provisioning-size-str-float', 'size "2.5": rejected before '
        'the provisioning filter', {'size': '2.5', 'volume_type': 'prov'},
        db=prov)
    # disabled services / no services
    api('api-no-services', 'no cinder-volume service at all: only the '
        'storage zone is known', {'size': 1, 'availability_zone': 'az1'},
        db={'services': []})
    api('api-all-services-disabled', 'all services disabled: their zones '
        'are still known', {'size': 1, 'availability_zone': 'az1'},
        db={'services': [dict(s, disabled=True) for s in SERVICES]})
    api('api-metadata-ok', 'metadata dict accepted', {
        'size': 1, 'metadata': {'k': 'v'}})
    api('api-metadata-long-key', 'metadata key longer than 255: '
        'InvalidVolumeMetadataSize', {'size': 1, 'metadata': {'k' * 256: 'v'}})
    api('api-metadata-empty-key', 'empty metadata key: InvalidVolumeMetadata',
        {'size': 1, 'metadata': {'': 'v'}})


FAMILIES = [fam_img, fam_civ, fam_cache, fam_dl, fam_clone, fam_snap, fam_raw,
            fam_del, fam_api]


def family_of(name):
    return name.split('-', 1)[0]


# --- output --------------------------------------------------------------------

def _scalar(x):
    return not isinstance(x, (dict, list))


def _inline(x):
    return json.dumps(x, sort_keys=True, separators=(', ', ': '),
                      ensure_ascii=False)


def pretty(obj, indent=0, key_prefix=''):
    """The layout of the sample expected files.

    Objects are broken over lines with sorted keys; arrays of scalars and
    the elements of arrays of arrays stay on one line; an object whose
    values are all scalars stays on one line when the line fits in 100
    characters.
    """
    pad = '  ' * indent
    if isinstance(obj, list):
        if all(_scalar(x) for x in obj):
            return _inline(obj)
        inner = '  ' * (indent + 1)
        items = [inner + pretty(x, indent + 1) for x in obj]
        return '[\n' + ',\n'.join(items) + '\n' + pad + ']'
    if isinstance(obj, dict):
        if not obj:
            return '{}'
        if all(_scalar(v) for v in obj.values()):
            line = _inline(obj)
            if len(pad) + len(key_prefix) + len(line) <= 100:
                return line
        inner = '  ' * (indent + 1)
        items = []
        for k in sorted(obj):
            kp = json.dumps(k, ensure_ascii=False) + ': '
            items.append(inner + kp + pretty(obj[k], indent + 1, kp))
        return '{\n' + ',\n'.join(items) + '\n' + pad + '}'
    return _inline(obj)


def vector_text(v):
    return json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False) + '\n'


def expected_text(result):
    return pretty(result) + '\n'


def write(path, text):
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if old != text:
        with open(path, 'w') as f:
            f.write(text)


def load_oracle():
    sys.path.insert(0, HERE)
    import warnings
    warnings.simplefilter('ignore')
    import logging
    import cinder.tests.unit  # noqa: F401  (eventlet monkey-patching first)
    import runner
    logging.disable(logging.CRITICAL)
    return runner


def build():
    VECTORS.clear()
    for fam in FAMILIES:
        fam()
    if os.path.isdir(SAMPLES):
        clash = [n for n in VECTORS
                 if os.path.exists(os.path.join(SAMPLES, n + '.json'))]
        if clash:
            raise SystemExit('names clash with the sample vectors: %s'
                             % ', '.join(clash))
    return VECTORS


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('--out', default=DEFAULT_OUT)
    p.add_argument('--no-run', action='store_true')
    p.add_argument('--only', default='')
    p.add_argument('--list', action='store_true')
    args = p.parse_args(argv)
    vectors = build()
    counts = collections.Counter(family_of(n) for n in vectors)
    if args.list:
        for fam, n in sorted(counts.items()):
            print('%-8s %d' % (fam, n))
        print('total    %d' % len(vectors))
        return 0
    os.makedirs(args.out, exist_ok=True)
    selected = [v for n, v in vectors.items() if n.startswith(args.only)]
    if not args.only:
        keep = set()
        for n in vectors:
            keep.add(n + '.json')
            keep.add(n + '.expected.json')
        for f in sorted(os.listdir(args.out)):
            if f.endswith('.json') and f not in keep:
                os.remove(os.path.join(args.out, f))
    for v in selected:
        write(os.path.join(args.out, v['name'] + '.json'), vector_text(v))
    if args.no_run:
        print('%d vectors written to %s' % (len(selected), args.out))
        return 0
    runner = load_oracle()
    bad = []
    outcomes = collections.Counter()
    for i, v in enumerate(selected):
        # the oracle reads the vector as the file holds it
        raw = json.loads(vector_text(v))
        result = runner.run_vector(raw)
        outcomes[result.get('outcome')] += 1
        if result.get('outcome') in ('vector_error', 'harness_error'):
            bad.append((v['name'], result.get('outcome'),
                        str(result.get('error'))[-300:]))
            path = os.path.join(args.out, v['name'] + '.expected.json')
            if os.path.exists(path):
                os.remove(path)
            continue
        write(os.path.join(args.out, v['name'] + '.expected.json'),
              expected_text(result))
        if (i + 1) % 50 == 0:
            sys.stderr.write('%d/%d\n' % (i + 1, len(selected)))
    for fam, n in sorted(counts.items()):
        print('%-8s %d' % (fam, n))
    print('total    %d vectors, outcomes %s' % (len(selected),
                                                dict(sorted(outcomes.items()))))
    for name, outcome, err in bad:
        print('%s %s: %s' % (outcome.upper(), name, err))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
