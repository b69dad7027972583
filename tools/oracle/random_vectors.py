#!/usr/bin/env python
"""Seeded random vectors: whole situations drawn from FORMAT.md's ingredients.

Usage (any Python 3; nothing of Cinder is imported):

    python3 tools/oracle/random_vectors.py --seed S --count N
                                           [--start I] [--out DIR]
                                           [--per-file K] [--coverage]
                                           [--list-dims] [--show NAME]

Each vector is drawn on its own generator seeded with ``(S, index)``, so the
first N vectors of a seed are the same whatever ``--count`` is, and vector
``rnd-S-I`` can be rebuilt alone (``draw(S, I)``).

A draw picks an operation, then one *level* of every *ingredient*
(dimension) that operation has: location kinds and their order, the Glance
location API, formats, image ownership and visibility, image volumes
(host, pool, cluster, status, created_at order, deleted rows, owner tags),
image-cache entries (this host, other host/pool/cluster, other image,
stale, every volume status behind an entry, deleted rows, DB snapshots,
RBD state, size and count limits, internal tenant set or not), conversion
space, virtual sizes, encryption, clone depths, snapshot/child/watcher
layouts, zones and sizes. Ingredients of list elements (locations, image
volumes, cache entries, snapshots, children) are drawn once per element;
as features they count when any element has the level.

Weights are close to uniform on purpose: the rarest level of each
ingredient keeps a probability of a few percent, so that every pair of
levels of two ingredients of the same operation co-occurs in a few
thousand draws. ``--coverage`` checks this on the drawn set: it counts, per
operation, every pair of (ingredient, level) features that can co-occur
(an ingredient drawn only under some levels of another, e.g. the status of
a cache entry's volume under ``cache.count`` > 0, is not paired with the
other levels) and prints how many pairs were seen at least once and at
least 3 times, and the rarest ones.

Vectors are written as JSON arrays (``--per-file`` vectors per file, one
vector per line) named ``rnd-S-<first index>.json``; each vector's
``description`` lists its features, so a difference can be read back to
the ingredients that produced it. ``--show rnd-S-I`` prints one vector
and its features.
"""

import argparse
import collections
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen_vectors as g  # noqa: E402  (helpers and ids only; runs nothing)

GiB = g.GiB
MiB = g.MiB
FSID = g.FSID
OTHER_FSID = g.OTHER_FSID
IMG, IMG2, IMG3 = g.IMG, g.IMG2, g.IMG3
VOL, SRC, SNAP, BACKUP, GROUP = g.VOL, g.SRC, g.SNAP, g.BACKUP, g.GROUP
iv, cv, par, child, vn, ts = g.iv, g.cv, g.par, g.child, g.vn, g.ts
rimg, snap, pref = g.rimg, g.snap, g.pref

STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting',
            'error_managing', 'managing', 'attaching', 'in-use', 'detaching',
            'maintenance', 'restoring-backup', 'error_restoring', 'reserved',
            'awaiting-transfer', 'backing-up', 'error_backing-up',
            'error_extending', 'downloading', 'uploading', 'retyping',
            'extending']
# Statuses with more weight: the ones a volume is normally in.
COMMON = {'available': 8, 'in-use': 2, 'error': 2}

HOST = 'hostA@ceph#ceph'
CLUSTER = 'clusterA@ceph#ceph'
INTERNAL = ('internal-project', 'internal-user')
LATER = '2024-06-01T00:00:00Z'
SIG_KEYS = ['img_signature', 'img_signature_hash_method',
            'img_signature_certificate_uuid', 'img_signature_key_type']

OPERATIONS = [('create_from_image', 40), ('create_cloned_volume', 12),
              ('create_from_snapshot', 10), ('create_volume', 6),
              ('delete_volume', 12), ('api_create', 12), ('api_extract', 8)]


def status_levels():
    return [(s, COMMON.get(s, 1)) for s in STATUSES]


# --- drawing --------------------------------------------------------------------

class Registry(object):
    """Levels and conditions of every ingredient, per operation."""

    def __init__(self):
        self.levels = collections.defaultdict(dict)     # op -> dim -> levels
        self.requires = collections.defaultdict(dict)   # op -> dim -> conds

    def register(self, op, dim, levels, conds):
        known = self.levels[op].setdefault(dim, [])
        for lv in levels:
            if lv not in known:
                known.append(lv)
        # conds: frozenset of (parent dim, allowed levels); the first
        # registration wins (the generator always draws a dim under the
        # same conditions).
        self.requires[op].setdefault(dim, conds)


REGISTRY = Registry()


class Draw(object):
    def __init__(self, seed, index, op=None):
        self.rng = random.Random('cinder-flow-random:%s:%d' % (seed, index))
        self.features = collections.OrderedDict()   # dim -> [levels]
        self.conds = []
        self.op = op

    def pick(self, dim, levels, adjust=None):
        """Pick a level; ``levels`` is a list of names or (name, weight).

        ``adjust(level)`` may replace the drawn level before it is recorded
        (when the situation cannot have it, e.g. a location naming an image
        volume when there is none).
        """
        names = [lv[0] if isinstance(lv, tuple) else lv for lv in levels]
        weights = [lv[1] if isinstance(lv, tuple) else 1 for lv in levels]
        level = self.rng.choices(names, weights)[0]
        if adjust is not None:
            level = adjust(level)
        self.record(dim, level, names)
        return level

    def record(self, dim, level, names=None):
        REGISTRY.register(self.op, dim, names or [level],
                          frozenset(self.conds))
        lvls = self.features.setdefault(dim, [])
        if level not in lvls:
            lvls.append(level)

    def under(self, dim, allowed):
        """Context: picks inside are drawn only when ``dim`` is in ``allowed``."""
        draw = self

        class _Ctx(object):
            def __enter__(self):
                draw.conds.append((dim, frozenset(allowed)))

            def __exit__(self, *exc):
                draw.conds.pop()
        return _Ctx()

    def coin(self, p):
        return self.rng.random() < p

    def features_text(self):
        return '; '.join('%s=%s' % (k, ','.join(v))
                         for k, v in self.features.items())


# --- shared pieces -----------------------------------------------------------------

def base_config(d):
    cfg = {'rbd_pool': 'volumes'}
    pool = d.pick('config.rbd_pool', [('volumes', 12), ('missing', 1)])
    if pool == 'missing':
        cfg['rbd_pool'] = 'nopool'
    return cfg


def base_cluster(d, with_features=True):
    cl = {'fsid': FSID, 'pools': {'volumes': {}}}
    if d.pick('cluster.reachable', [('yes', 12), ('no', 1)]) == 'no':
        cl['reachable'] = False
    if d.pick('cluster.clone_v2', ['no', 'yes']) == 'yes':
        cl['clone_v2'] = True
    if with_features:
        feats = d.pick('cluster.default_features', [('null', 3), ('61', 1),
                                                    ('0', 1)])
        if feats != 'null':
            cl['rbd_default_features'] = int(feats)
    return cl


def target_volume(d, sizes=(('1', 2), ('2', 1), ('10', 2)), encrypted=True,
                  types=True):
    """The target volume row and the volume types it needs."""
    vol = {'id': VOL}
    types_db = []
    host = d.pick('vol.host', [('pool', 8), ('legacy', 1), ('other-host', 1),
                               ('null', 1)])
    vol['host'] = {'pool': HOST, 'legacy': 'hostA@ceph',
                   'other-host': 'hostB@ceph#ceph', 'null': None}[host]
    if d.pick('vol.cluster', [('none', 4), ('clustered', 1)]) == 'clustered':
        vol['cluster_name'] = CLUSTER
    vol['size'] = int(d.pick('vol.size', list(sizes)))
    if types:
        kinds = [('default', 6), ('multiattach', 1), ('replication', 1)]
        if encrypted:
            kinds.append(('encrypted', 2))
        kind = d.pick('vol.type', kinds)
        if kind == 'encrypted':
            vol['volume_type'] = 'luks'
            vol['encryption_key_id'] = 'key-1'
            types_db.append({'name': 'luks', 'encryption': {}})
        elif kind == 'multiattach':
            vol['volume_type'] = 'multi'
            types_db.append({'name': 'multi', 'extra_specs': {
                'multiattach': '<is> True'}})
        elif kind == 'replication':
            vol['volume_type'] = 'repl'
            types_db.append({'name': 'repl', 'extra_specs': {
                'replication_enabled': '<is> True'}})
    if d.pick('vol.use_quota', [('yes', 5), ('no', 1)]) == 'no':
        vol['use_quota'] = False
    return vol, types_db


def backend(d):
    b = {}
    if d.pick('backend.cluster', [('none', 4), ('clustered', 1)]) == \
            'clustered':
        b['cluster'] = 'clusterA@ceph'
    return b


def maybe_dest_exists(d, cl, vol):
    if d.pick('vol.rbd_exists', [('no', 12), ('yes', 1)]) == 'yes':
        cl['pools']['volumes'][vn(VOL)] = rimg(size=vol['size'] * GiB)


def clone_depth_config(d, cfg):
    md = d.pick('config.rbd_max_clone_depth', [('default', 3), ('0', 1),
                                               ('1', 1), ('2', 1), ('3', 1)])
    if md != 'default':
        cfg['rbd_max_clone_depth'] = int(md)


# --- create_from_image -------------------------------------------------------------

LOC_KINDS = [('rbd-good', 4), ('rbd-good-pool2', 1), ('rbd-unprotected', 1),
             ('rbd-other-fsid', 2), ('rbd-missing-snap', 1),
             ('rbd-missing-image', 1), ('rbd-unreadable', 1),
             ('rbd-missing-pool', 1), ('rbd-malformed', 1),
             ('cinder-iv', 5), ('cinder-missing', 1), ('cinder-malformed', 1),
             ('cinder-bad-netloc', 1), ('http', 2), ('swift', 1),
             ('file', 1), ('null-url', 1), ('empty-url', 1)]


def location_url(d, kind, ivs, form_dim=None):
    """URL of a location kind; ``cinder-iv`` names one of ``ivs`` (in the
    form drawn as ``form_dim``, else the legacy form)."""
    if kind == 'rbd-good':
        return g.rbd_url()
    if kind == 'rbd-good-pool2':
        return g.rbd_url(pool='images2')
    if kind == 'rbd-unprotected':
        return g.rbd_url(pool='images3')
    if kind == 'rbd-other-fsid':
        return g.rbd_url(fsid=OTHER_FSID)
    if kind == 'rbd-missing-snap':
        return g.rbd_url(snap='nosuchsnap')
    if kind == 'rbd-missing-image':
        return g.rbd_url(image=IMG2)
    if kind == 'rbd-unreadable':
        return g.rbd_url(pool='secret')
    if kind == 'rbd-missing-pool':
        return g.rbd_url(pool='nopool')
    if kind == 'rbd-malformed':
        return d.rng.choice(['rbd://%s/images/%s' % (FSID, IMG),
                             g.rbd_url() + '/extra', 'rbd://///',
                             'rbd://%s//%s/snap' % (FSID, IMG)])
    if kind == 'cinder-iv':
        target = d.rng.choice(ivs)
        form = 'legacy'
        if form_dim:
            with d.under('loc.kind', ['cinder-iv']):
                form = d.pick(form_dim, ['legacy', 'multistore'])
        return ('cinder://%s' % target if form == 'legacy'
                else 'cinder://store1/%s' % target)
    if kind == 'cinder-missing':
        return 'cinder://%s' % iv(9)
    if kind == 'cinder-malformed':
        return d.rng.choice(['cinder://%s/garbage' % iv(1), 'cinder://',
                             'cinder://store1/12345678'])
    if kind == 'cinder-bad-netloc':
        return 'cinder://[bad'
    if kind == 'http':
        return 'http://glance.example/v2/images/%s/file' % IMG
    if kind == 'swift':
        return 'swift+https://store.example/v1/glance/%s' % IMG
    if kind == 'file':
        return 'file:///var/lib/glance/images/%s' % IMG
    if kind == 'null-url':
        return None
    if kind == 'empty-url':
        return ''
    raise ValueError(kind)


def image_volumes(d, vol, image_owner, cl, db_vols, types_db):
    """Image volumes (targets of cinder:// locations); returns their ids."""
    n = int(d.pick('iv.count', [('0', 2), ('1', 3), ('2', 2), ('3', 1)]))
    ids = [iv(k + 1) for k in range(n)]
    if not n:
        return ids
    with d.under('iv.count', ['1', '2', '3']):
        order = d.pick('iv.created_at_order', ['ascending', 'descending',
                                               'tie'])
        for k, vid in enumerate(ids):
            row = {'id': vid, 'size': 1}
            where = d.pick('iv.host', [('same', 5), ('backend-only', 1),
                                       ('other-pool', 1), ('other-host', 1),
                                       ('null', 1), ('wildcard', 1)])
            th = vol.get('host')
            row['host'] = {
                'same': th, 'backend-only': 'hostA@ceph',
                'other-pool': 'hostA@ceph#other',
                'other-host': 'hostB@ceph#ceph', 'null': None,
                'wildcard': 'host_@ceph#ceph'}[where]
            clus = d.pick('iv.cluster', [('none', 4), ('same', 1),
                                         ('other', 1)])
            if clus == 'same' and vol.get('cluster_name'):
                row['cluster_name'] = vol['cluster_name']
            elif clus == 'same':
                row['cluster_name'] = CLUSTER
            elif clus == 'other':
                row['cluster_name'] = 'clusterB@ceph#ceph'
            row['status'] = d.pick('iv.status', status_levels())
            if d.pick('iv.deleted', [('no', 8), ('yes', 1)]) == 'yes':
                row['deleted'] = True
            proj = d.pick('iv.project', [('internal', 3), ('project-1', 2),
                                         ('other', 1)])
            row['project_id'] = {'internal': INTERNAL[0],
                                 'project-1': 'project-1',
                                 'other': 'project-9'}[proj]
            tag = d.pick('iv.image_owner_tag', [('none', 2),
                                                ('image-owner', 2),
                                                ('other', 1)])
            if tag == 'image-owner' and image_owner is not None:
                row['metadata'] = {'image_owner': image_owner}
            elif tag == 'image-owner':
                row['metadata'] = {'image_owner': 'project-1'}
            elif tag == 'other':
                row['metadata'] = {'image_owner': 'project-8'}
            sz = d.pick('iv.size', [('1', 3), ('volume', 1), ('larger', 1)])
            row['size'] = {'1': 1, 'volume': vol['size'],
                           'larger': vol['size'] + 1}[sz]
            if d.pick('iv.encrypted', [('no', 6), ('yes', 1)]) == 'yes':
                row['encryption_key_id'] = 'key-iv'
                row['volume_type'] = 'luks'
                if not any(t['name'] == 'luks' for t in types_db):
                    types_db.append({'name': 'luks', 'encryption': {}})
            if d.pick('iv.bootable', [('no', 3), ('yes', 1)]) == 'yes':
                row['bootable'] = True
            row['created_at'] = ts({'ascending': 10 + k,
                                    'descending': 100 - k,
                                    'tie': 50}[order])
            rbd_state = d.pick('iv.rbd', [('present', 6), ('absent', 1),
                                          ('clone-child', 1),
                                          ('snapshot', 1)])
            put_rbd(cl, vid, row['size'], rbd_state)
            db_vols.append(row)
    return ids


def put_rbd(cl, vol_id, size_gib, state):
    """The RBD image of a DB volume in one of a few states."""
    pool = cl['pools'].setdefault('volumes', {})
    name = vn(vol_id)
    if state == 'absent':
        return
    img = rimg(size=size_gib * GiB)
    if state == 'watchers':
        img['watchers'] = 1
    elif state == 'snapshot':
        img['snaps'] = [snap('snapshot-%s' % SNAP, False)]
    elif state == 'clone-child':
        parent = vn(par(7))
        pool.setdefault(parent, rimg(snaps=[]))
        pool[parent].setdefault('snaps', []).append(
            snap(name + '.clone_snap'))
        img['parent'] = pref(parent, name + '.clone_snap')
    pool[name] = img


def cache_entries(d, vol, cl, db_vols, db_snaps, types_db, cfg, b):
    """Image-cache configuration, rows and the volumes behind them."""
    enabled = d.pick('cache.enabled', [('yes', 3), ('no', 1)])
    if enabled == 'yes':
        cfg['image_volume_cache_enabled'] = True
    tenant = d.pick('cache.internal_tenant', [('both', 4), ('project-only', 1),
                                              ('user-only', 1), ('none', 1)])
    if tenant in ('both', 'project-only'):
        cfg['cinder_internal_tenant_project_id'] = INTERNAL[0]
    if tenant in ('both', 'user-only'):
        cfg['cinder_internal_tenant_user_id'] = INTERNAL[1]
    max_gb = d.pick('cache.max_size_gb', [('0', 3), ('1', 1), ('2', 1),
                                          ('5', 1), ('20', 1)])
    if max_gb != '0':
        cfg['image_volume_cache_max_size_gb'] = int(max_gb)
    max_count = d.pick('cache.max_count', [('0', 3), ('1', 1), ('2', 1),
                                           ('3', 1)])
    if max_count != '0':
        cfg['image_volume_cache_max_count'] = int(max_count)
    if d.pick('cache.clone_across_pools', [('no', 3), ('yes', 1)]) == 'yes':
        b['capabilities'] = {'clone_across_pools': True}
    n = int(d.pick('cache.count', [('0', 2), ('1', 3), ('2', 3), ('3', 2),
                                   ('4', 1)]))
    entries = []
    if not n:
        return entries
    with d.under('cache.count', ['1', '2', '3', '4']):
        order = d.pick('cache.last_used_order', ['ascending', 'descending',
                                                 'tie'])
        for k in range(n):
            vid = cv(k + 1)
            e = {'volume_id': vid}
            which = d.pick('ce.image', [('this', 3), ('other', 1)])
            e['image_id'] = IMG if which == 'this' else (IMG2, IMG3)[k % 2]
            where = d.pick('ce.host', [('here', 5), ('other-host', 1),
                                       ('other-pool', 1), ('backend-only', 1),
                                       ('same-cluster', 1),
                                       ('other-cluster', 1)])
            th = vol.get('host') or HOST
            e['host'] = {'here': th, 'other-host': 'hostB@ceph#ceph',
                         'other-pool': 'hostA@ceph#other',
                         'backend-only': 'hostA@ceph',
                         'same-cluster': 'hostB@ceph#ceph',
                         'other-cluster': 'hostC@ceph#ceph'}[where]
            if where == 'same-cluster':
                e['cluster_name'] = vol.get('cluster_name') or CLUSTER
            elif where == 'other-cluster':
                e['cluster_name'] = 'clusterB@ceph#ceph'
            fresh = d.pick('ce.freshness', [('fresh', 3), ('stale-older', 1),
                                            ('stale-newer', 1)])
            if fresh == 'stale-newer':
                e['image_updated_at'] = '2025-01-01T00:00:00Z'
            elif fresh == 'stale-older':
                e['image_updated_at'] = '2023-06-01T00:00:00Z'
            e['size'] = int(d.pick('ce.size', ['1', '2', '5', '10']))
            e['last_used'] = ts({'ascending': 10 + k, 'descending': 100 - k,
                                 'tie': 50}[order])
            entries.append(e)
            # the volume behind the entry
            row = {'id': vid, 'size': e['size']}
            row['status'] = d.pick('ce.volume_status', status_levels())
            vhost = d.pick('ce.volume_host', [('entry', 6), ('null', 1),
                                              ('other', 1)])
            row['host'] = {'entry': e['host'], 'null': None,
                           'other': 'hostD@ceph#ceph'}[vhost]
            if e.get('cluster_name'):
                row['cluster_name'] = e['cluster_name']
            if d.pick('ce.volume_deleted', [('no', 8), ('yes', 1)]) == 'yes':
                row['deleted'] = True
            proj = d.pick('ce.volume_project', [('internal', 4),
                                                ('project-1', 1),
                                                ('other', 1)])
            row['project_id'] = {'internal': INTERNAL[0],
                                 'project-1': 'project-1',
                                 'other': 'project-9'}[proj]
            if d.pick('ce.volume_encrypted', [('no', 6), ('yes', 1)]) == 'yes':
                row['encryption_key_id'] = 'key-ce'
                row['volume_type'] = 'luks'
                if not any(t['name'] == 'luks' for t in types_db):
                    types_db.append({'name': 'luks', 'encryption': {}})
            if d.pick('ce.volume_size', [('entry', 4), ('bigger', 1)]) == \
                    'bigger':
                row['size'] = e['size'] + 1
            if d.pick('ce.db_snapshot', [('none', 5), ('one', 1)]) == 'one':
                db_snaps.append({'id': '55555555-5555-4555-8555-5555555555%02d'
                                 % (k + 1), 'volume_id': vid})
            rbd_state = d.pick('ce.rbd', [('present', 6), ('absent', 1),
                                          ('watchers', 1), ('snapshot', 1),
                                          ('clone-child', 1)])
            put_rbd(cl, vid, row['size'], rbd_state)
            db_vols.append(row)
    return entries


def gen_create_from_image(d):
    cfg = base_config(d)
    cl = base_cluster(d)
    b = backend(d)
    vol, types_db = target_volume(d)
    clone_depth_config(d, cfg)
    maybe_dest_exists(d, cl, vol)
    db_vols, db_snaps = [], []

    # the image
    im = {'id': IMG}
    owner = d.pick('image.owner', [('project-1', 3), ('other', 1),
                                   ('internal', 1), ('null', 1)])
    im['owner'] = {'project-1': 'project-1', 'other': 'project-9',
                   'internal': INTERNAL[0], 'null': None}[owner]
    im['visibility'] = d.pick('image.visibility', [('private', 3), 'public',
                                                   'shared', 'community'])
    im['disk_format'] = d.pick('image.disk_format', [
        ('raw', 6), ('qcow2', 2), 'vmdk', 'vhd', 'iso', 'ploop'])
    # vhd in ovf is XenServer's format: Cinder unpacks a tarball of VHDs
    # (tar, vhd-util), which depends on the image data the vectors do not
    # describe (see README.md).
    im['container_format'] = d.pick('image.container_format', [
        ('bare', 6), 'ovf', 'ova', 'docker', 'compressed'], adjust=lambda c: (
            'bare' if c == 'ovf' and im['disk_format'] == 'vhd' else c))
    isize = d.pick('image.size', [('1g', 4), ('3g', 2), ('1-byte', 1),
                                  ('null', 1)])
    im['size'] = {'1g': GiB, '3g': 3 * GiB, '1-byte': 1, 'null': None}[isize]
    vs = d.pick('image.virtual_size', [('null', 2), ('zero', 1),
                                       ('smaller', 2), ('equal', 1),
                                       ('larger', 1), ('larger-by-1', 1)])
    size = vol['size']
    im['virtual_size'] = {
        'null': None, 'zero': 0,
        'smaller': (size - 1) * GiB if size > 1 else GiB // 2,
        'equal': size * GiB, 'larger': (size + 1) * GiB,
        'larger-by-1': size * GiB + 1}[vs]
    if d.pick('image.updated_at', [('base', 3), ('later', 1)]) == 'later':
        im['updated_at'] = LATER
    props = d.pick('image.properties', [('none', 6), ('signature-partial', 1),
                                        ('volume-type', 1)])
    if props == 'signature-partial':
        keys = SIG_KEYS[:d.rng.randint(1, 3)]
        im['properties'] = {k: 'x' for k in keys}
    elif props == 'volume-type':
        im['properties'] = {'cinder_img_volume_type': 'gold'}

    # image volumes (before the locations naming them)
    ivs = image_volumes(d, vol, im['owner'], cl, db_vols, types_db)

    # locations
    api = d.pick('glance.location_api', ['new', 'legacy'])
    nloc = d.pick('image.locations', [('null', 1), ('0', 2), ('1', 3),
                                      ('2', 3), ('3', 2), ('4', 1)])
    kinds = []
    if nloc == 'null':
        im['locations'] = None
    else:
        locs = []
        with d.under('image.locations', ['1', '2', '3', '4']):
            for i in range(int(nloc)):
                kind = d.pick('loc.kind', LOC_KINDS, adjust=lambda k: (
                    'cinder-missing' if k == 'cinder-iv' and not ivs else k))
                kinds.append(kind)
                entry = {'url': location_url(d, kind, ivs, 'loc.cinder_form'),
                         'metadata': {}}
                if d.pick('loc.store_metadata', [('no', 4), ('yes', 1)]) == \
                        'yes':
                    entry['metadata'] = {'store': 'ceph'}
                locs.append(entry)
            if kinds:
                d.record('loc.first', kinds[0], [k for k, _w in LOC_KINDS])
                d.record('loc.last', kinds[-1], [k for k, _w in LOC_KINDS])
        im['locations'] = locs
    direct = d.pick('image.direct_url', [
        ('none', 3), ('rbd-good', 1), ('cinder-iv', 1), ('cinder-missing', 1),
        ('rbd-other-fsid', 1), ('http', 1)], adjust=lambda k: (
            'cinder-missing' if k == 'cinder-iv' and not ivs else k))
    if direct != 'none':
        im['direct_url'] = location_url(d, direct, ivs)

    # the cluster's glance pools
    pools = cl['pools']
    pools['images'] = {IMG: rimg(snaps=[snap('snap', True)])}
    if any(k == 'rbd-good-pool2' for k in kinds):
        pools['images2'] = {IMG: rimg(snaps=[snap('snap', True)])}
    if any(k == 'rbd-unprotected' for k in kinds):
        pools['images3'] = {IMG: rimg(snaps=[snap('snap', False)])}
    pools['secret'] = {IMG: rimg(snaps=[snap('snap', True)], readable=False)}
    if d.pick('image.glance_stripe_unit', [('4m', 4), ('8m', 1)]) == '8m':
        pools['images'][IMG]['stripe_unit'] = 8 * MiB

    # cache
    entries = cache_entries(d, vol, cl, db_vols, db_snaps, types_db, cfg, b)

    # other knobs
    if d.pick('config.cinder_scheme', ['no', 'yes']) == 'yes':
        cfg['allowed_direct_url_schemes'] = ['cinder']
    free = d.pick('env.conversion_space', [('plenty', 5), ('less', 1),
                                           ('equal', 1)])
    env = None
    if free != 'plenty':
        isz = im['size'] if im['size'] is not None else GiB
        env = {'image_conversion_free_bytes':
               max(isz - 1, 0) if free == 'less' else isz}
    if d.pick('config.image_conversion_disable', [('no', 4), ('yes', 1)]) == \
            'yes':
        cfg['image_conversion_disable'] = True
    if d.pick('config.verify_glance_signatures', [('enabled', 4),
                                                  ('disabled', 1)]) == \
            'disabled':
        cfg['verify_glance_signatures'] = 'disabled'

    db = {}
    if db_vols:
        db['volumes'] = db_vols
    if db_snaps:
        db['snapshots'] = db_snaps
    if entries:
        db['image_cache'] = entries
    if types_db:
        db['volume_types'] = types_db
    v = {'operation': 'create_from_image', 'config': cfg, 'volume': vol,
         'image': im, 'cluster': cl}
    if api == 'legacy':
        v['glance'] = {'location_api': 'legacy'}
    if b:
        v['backend'] = b
    if db:
        v['db'] = db
    if env:
        v['env'] = env
    return v


# --- create_cloned_volume ----------------------------------------------------------

def chain(d, cl, src_id, src_size):
    """The source's clone chain: ancestors par(1)..par(n)."""
    n = int(d.pick('clone.chain_length', ['0', '1', '2', '3', '4', '5']))
    pool = cl['pools']['volumes']
    names = [vn(src_id)]
    deleted = 'none'
    link = 'clone-snap'
    other_pool = 'no'
    if n:
        with d.under('clone.chain_length', ['1', '2', '3', '4', '5']):
            deleted = d.pick('clone.deleted_ancestors', [('none', 3),
                                                         ('one', 1),
                                                         ('all', 1)])
            link = d.pick('clone.link_snap', [('clone-snap', 4),
                                              ('glance-snap', 1),
                                              ('cinder-snapshot', 1),
                                              ('other-clone-snap', 1)])
            other_pool = d.pick('clone.ancestor_pool', [('same', 5),
                                                        ('other', 1)])
    which_deleted = set()
    if deleted == 'all':
        which_deleted = set(range(1, n + 1))
    elif deleted == 'one':
        which_deleted = {d.rng.randint(1, n)}
    odd_link = d.rng.randint(1, n) if n else 0
    other_at = d.rng.randint(1, n) if n else 0
    for i in range(1, n + 1):
        names.append(vn(par(i)) + ('.deleted' if i in which_deleted else ''))
    for i in range(n + 1):
        base = vn(src_id) if i == 0 else vn(par(i))
        img = rimg(size=src_size * GiB) if i == 0 else rimg()
        img_pool = 'volumes'
        if other_pool == 'other' and i == other_at:
            img_pool = 'other'
        if i < n:
            sname = base + '.clone_snap'
            if i + 1 == odd_link and link != 'clone-snap':
                sname = {'glance-snap': 'snap',
                         'cinder-snapshot': 'snapshot-%s' % SNAP,
                         'other-clone-snap': vn(par(8)) + '.clone_snap'}[link]
            ppool = 'other' if (other_pool == 'other' and
                                i + 1 == other_at) else 'volumes'
            img['parent'] = pref(names[i + 1], sname, ppool)
            # the parent's snapshot
            parent_img = cl['pools'].setdefault(ppool, {}).setdefault(
                names[i + 1], rimg())
            parent_img.setdefault('snaps', []).append(snap(sname))
        existing = cl['pools'].setdefault(img_pool, {}).get(names[i])
        if existing and 'snaps' in existing:
            img['snaps'] = existing['snaps']
        cl['pools'][img_pool][names[i]] = img
    return names


def gen_create_cloned_volume(d):
    cfg = base_config(d)
    cl = base_cluster(d)
    b = backend(d)
    vol, types_db = target_volume(d, sizes=(('1', 3), ('2', 1), ('3', 1)),
                                  encrypted=False)
    clone_depth_config(d, cfg)
    src = {'id': SRC, 'host': HOST}
    src['size'] = int(d.pick('clone.source_size', [('1', 3), ('2', 1),
                                                   ('4', 1)]))
    src['status'] = d.pick('clone.source_status', status_levels())
    if d.pick('clone.source_bootable', [('no', 3), ('yes', 1)]) == 'yes':
        src['bootable'] = True
    name_id = d.pick('clone.source_name_id', [('no', 5), ('yes', 1)])
    img_id = SRC
    if name_id == 'yes':
        src['name_id'] = par(9)
        img_id = par(9)
    state = d.pick('clone.source_rbd', [('present', 8), ('absent', 1),
                                        ('watchers', 1)])
    if state != 'absent':
        with d.under('clone.source_rbd', ['present', 'watchers']):
            chain(d, cl, img_id, src['size'])
            cs = d.pick('clone.existing_clone_snap', [
                ('none', 8), ('protected', 1), ('unprotected', 1),
                ('with-child', 1)])
        if state == 'watchers':
            cl['pools']['volumes'][vn(img_id)]['watchers'] = 1
        if cs != 'none':
            sname = vn(VOL) + '.clone_snap'
            simg = cl['pools']['volumes'][vn(img_id)]
            simg.setdefault('snaps', []).append(snap(sname,
                                                     cs != 'unprotected'))
            if cs == 'with-child':
                cl['pools']['volumes'][vn(child(1))] = rimg(
                    parent=pref(vn(img_id), sname))
    maybe_dest_exists(d, cl, vol)
    db = {'volumes': [src]}
    if d.pick('clone.source_row', [('present', 12), ('missing', 1)]) == \
            'missing':
        db = {}
    if types_db:
        db['volume_types'] = types_db
    v = {'operation': 'create_cloned_volume', 'config': cfg, 'volume': vol,
         'cluster': cl, 'request': {'source_volid': SRC}}
    if db:
        v['db'] = db
    if b:
        v['backend'] = b
    return v


# --- create_from_snapshot ----------------------------------------------------------

def gen_create_from_snapshot(d):
    cfg = base_config(d)
    cl = base_cluster(d)
    b = backend(d)
    vol, types_db = target_volume(d, sizes=(('1', 3), ('2', 1), ('3', 1)),
                                  encrypted=False)
    if d.pick('config.rbd_flatten_volume_from_snapshot', ['no', 'yes']) == \
            'yes':
        cfg['rbd_flatten_volume_from_snapshot'] = True
    clone_depth_config(d, cfg)
    src = {'id': SRC, 'host': HOST}
    ssize = int(d.pick('snap.volume_size', [('1', 3), ('2', 1)]))
    src['size'] = ssize
    snap_row = {'id': SNAP, 'volume_id': SRC, 'volume_size': ssize}
    snap_row['status'] = d.pick('snap.status', [('available', 6), 'error',
                                                'creating', 'deleting',
                                                'error_deleting'])
    enc = d.pick('snap.encryption', [('none', 4), ('both', 1),
                                     ('target-only', 1)])
    if enc != 'none':
        vol['encryption_key_id'] = 'key-2'
        vol['volume_type'] = 'luks'
        if not any(t['name'] == 'luks' for t in types_db):
            types_db.append({'name': 'luks', 'encryption': {}})
        if enc == 'both':
            src['encryption_key_id'] = 'key-1'
            src['volume_type'] = 'luks'
            snap_row['encryption_key_id'] = 'key-1'
    image_size = d.pick('snap.image_size', [('volume-size', 3),
                                            ('luks-header', 1)])
    snap_bytes = ssize * GiB + (2 * MiB if image_size == 'luks-header' else 0)
    if d.pick('snap.origin_bootable', [('no', 3), ('yes', 1)]) == 'yes':
        src['bootable'] = True
    img_id = SRC
    if d.pick('snap.origin_name_id', [('no', 5), ('yes', 1)]) == 'yes':
        src['name_id'] = par(9)
        img_id = par(9)
    rbd_state = d.pick('snap.rbd', [('protected', 5), ('unprotected', 2),
                                    ('snapshot-absent', 1),
                                    ('image-absent', 1)])
    pool = cl['pools']['volumes']
    if rbd_state != 'image-absent':
        img = rimg(size=snap_bytes)
        if rbd_state != 'snapshot-absent':
            img['snaps'] = [snap('snapshot-%s' % SNAP,
                                 rbd_state == 'protected', size=snap_bytes)]
        with d.under('snap.rbd', ['protected', 'unprotected',
                                  'snapshot-absent']):
            is_clone = d.pick('snap.origin_is_clone', [('no', 4), ('yes', 1)])
        if is_clone == 'yes':
            pool[vn(par(1))] = rimg(snaps=[snap(vn(img_id) + '.clone_snap')])
            img['parent'] = pref(vn(par(1)), vn(img_id) + '.clone_snap')
        pool[vn(img_id)] = img
    maybe_dest_exists(d, cl, vol)
    db = {'volumes': [src]}
    if d.pick('snap.row', [('present', 12), ('missing', 1)]) == 'present':
        db['snapshots'] = [snap_row]
    if types_db:
        db['volume_types'] = types_db
    v = {'operation': 'create_from_snapshot', 'config': cfg, 'volume': vol,
         'cluster': cl, 'db': db, 'request': {'snapshot_id': SNAP}}
    if b:
        v['backend'] = b
    return v


# --- create_volume -----------------------------------------------------------------

def gen_create_volume(d):
    cfg = base_config(d)
    cl = base_cluster(d)
    b = backend(d)
    vol, types_db = target_volume(d, sizes=(('1', 3), ('3', 1), ('100', 1)))
    chunk = d.pick('config.rbd_store_chunk_size', [('default', 3), '1', '8',
                                                   '32'])
    if chunk != 'default':
        cfg['rbd_store_chunk_size'] = int(chunk)
    maybe_dest_exists(d, cl, vol)
    v = {'operation': 'create_volume', 'config': cfg, 'volume': vol,
         'cluster': cl}
    if types_db:
        v['db'] = {'volume_types': types_db}
    if b:
        v['backend'] = b
    return v


# --- delete_volume -----------------------------------------------------------------

# Distinct names per position: an RBD image cannot have two snapshots of the
# same name.
BACKUP_SNAPS = ['backup.%s.snap.1700000000.0' % BACKUP, 'backup.abc-1.snap.x',
                'backup.a.snap.b.c']
NEAR_BACKUP = ['backup.ABC.snap.1', 'backup.a.snap.', 'xbackup.a.snap.1']


def delete_layout(d, pools, me):
    """Snapshots, children, watchers and parent of the image to delete."""
    img = rimg()
    n = int(d.pick('del.snap_count', [('0', 3), ('1', 3), ('2', 2),
                                      ('3', 1)]))
    snaps = []
    with d.under('del.snap_count', ['1', '2', '3']):
        for k in range(n):
            kind = d.pick('del.snap_kind', [('user', 3), ('backup', 2),
                                            ('near-backup', 1),
                                            ('clone-snap', 2)])
            sname = {'user': 'snapshot-%s' % SNAP[:-1] + str(k),
                     'backup': BACKUP_SNAPS[k],
                     'near-backup': NEAR_BACKUP[k],
                     'clone-snap': vn(child(k + 1)) + '.clone_snap'}[kind]
            prot = d.pick('del.snap_protected', ['no', 'yes'])
            snaps.append(snap(sname, prot == 'yes'))
            nch = int(d.pick('del.children', [('0', 3), ('1', 2),
                                              ('2', 1)]))
            for c in range(nch):
                with d.under('del.children', ['1', '2']):
                    cpool = d.pick('del.child_pool', [('volumes', 3),
                                                      ('other', 1)])
                cname = vn(child(k * 3 + c + 1))
                pools.setdefault(cpool, {})[cname] = rimg(
                    parent=pref(me, sname))
    if snaps:
        img['snaps'] = snaps
    if d.pick('del.watchers', [('0', 4), ('1', 1)]) == '1':
        img['watchers'] = 1
    parent = d.pick('del.parent', [('none', 3), ('live', 1),
                                   ('deleted', 1),
                                   ('deleted-with-sibling', 1)])
    if parent != 'none':
        pname = vn(par(1)) + ('' if parent == 'live' else '.deleted')
        psnaps = [snap(me + '.clone_snap')]
        img['parent'] = pref(pname, me + '.clone_snap')
        pools['volumes'][pname] = rimg(snaps=psnaps)
        if parent == 'deleted-with-sibling':
            pools['volumes'][vn(child(9))] = rimg(
                parent=pref(pname, me + '.clone_snap'))
    pools['volumes'][me] = img
    if d.pick('del.renamed_exists', [('no', 8), ('yes', 1)]) == 'yes':
        pools['volumes'][me + '.deleted'] = rimg()


def gen_delete_volume(d):
    cfg = base_config(d)
    cl = base_cluster(d, with_features=False)
    vol = {'id': VOL, 'host': HOST, 'size': 1}
    me_id = VOL
    layout = d.pick('del.image', [('present', 8), ('absent', 1),
                                  ('name-id', 1), ('name-id-missing', 1)])
    if layout in ('name-id', 'name-id-missing'):
        vol['name_id'] = par(9)
        if layout == 'name-id':
            me_id = par(9)
    me = vn(me_id)
    pools = cl['pools']
    if layout in ('present', 'name-id'):
        with d.under('del.image', ['present', 'name-id']):
            delete_layout(d, pools, me)
    deferred = d.pick('config.deferred_deletion', [('off', 3), ('on-0', 1),
                                                   ('on-3600', 1)])
    if deferred != 'off':
        cfg['enable_deferred_deletion'] = True
        cfg['deferred_deletion_delay'] = 0 if deferred == 'on-0' else 3600
    retries = d.pick('config.rados_connection_retries', [('default', 3),
                                                         '1', '2'])
    if retries != 'default':
        cfg['rados_connection_retries'] = int(retries)
    return {'operation': 'delete_volume', 'config': cfg, 'volume': vol,
            'cluster': cl}


# --- api_create / api_extract ------------------------------------------------------

TYPES_API = [{'name': 'gold'}, {'name': 'silver'},
             {'name': 'byid', 'id': 'bbbbbbbb-0000-4000-8000-000000000001'},
             {'name': 'luks', 'encryption': {}},
             {'name': 'multi', 'extra_specs': {'multiattach': '<is> True'}}]


def gen_api(d, op):
    cfg = {}
    db = {}
    req = {'project_id': 'project-1'}
    services = d.pick('api.services', [('one-nova', 2), ('two-zones', 2),
                                       ('one-disabled', 1), ('none', 1)])
    db['services'] = {
        'one-nova': [{'host': 'hostA@ceph', 'availability_zone': 'nova'}],
        'two-zones': [{'host': 'hostA@ceph', 'availability_zone': 'az1'},
                      {'host': 'hostB@ceph', 'availability_zone': 'az2'}],
        'one-disabled': [{'host': 'hostA@ceph', 'availability_zone': 'az1',
                          'disabled': True}],
        'none': []}[services]
    saz = d.pick('api.storage_availability_zone', [('default', 2), 'az1',
                                                   'az3'])
    if saz != 'default':
        cfg['storage_availability_zone'] = saz
    daz = d.pick('api.default_availability_zone', [('none', 3), 'az1', 'az2',
                                                   'bogus'])
    if daz != 'none':
        cfg['default_availability_zone'] = daz
    if d.pick('api.az_fallback', ['no', 'yes']) == 'yes':
        cfg['allow_availability_zone_fallback'] = True
    if d.pick('api.cloned_volume_same_az', [('yes', 2), ('no', 1)]) == 'no':
        cfg['cloned_volume_same_az'] = False
    raz = d.pick('api.request_az', [('none', 3), 'nova', 'az1', 'az2',
                                    'unknown'])
    if raz != 'none':
        req['availability_zone'] = raz

    # types
    types = [dict(t) for t in TYPES_API]
    bn = d.pick('api.type_backend_names', [('none', 2), ('same', 1),
                                           ('differ', 1)])
    if bn != 'none':
        types[0]['extra_specs'] = {'volume_backend_name': 'ceph'}
        types[1]['extra_specs'] = {'volume_backend_name':
                                   'ceph' if bn == 'same' else 'other'}
    zoned = d.pick('api.type_zones', [('none', 2), ('az1,az2', 1),
                                      ('az2', 1), ('nova', 1)])
    if zoned != 'none':
        types.append({'name': 'zoned', 'extra_specs': {
            'RESKEY:availability_zones': zoned}})
    db['volume_types'] = types
    rt = d.pick('api.request_type', [('none', 4), 'gold', 'silver', 'byid',
                                     'luks', 'multi', 'zoned', 'nosuch'],
                adjust=lambda t: 'nosuch' if t == 'zoned' and
                zoned == 'none' else t)
    if rt != 'none':
        req['volume_type'] = rt if rt != 'byid' else types[2]['id']
    dvt = d.pick('api.default_volume_type', [('unset', 3), 'silver',
                                             'nosuch'])
    if dvt != 'unset':
        cfg['default_volume_type'] = dvt

    # the source
    source = d.pick('api.source', [('none', 3), ('snapshot', 2),
                                   ('source-volume', 2), ('image', 3),
                                   ('backup', 2), ('two', 1)])
    src_size = {'none': 1, 'snapshot': 3, 'source-volume': 2, 'image': 2,
                'backup': 2, 'two': 3}[source]
    vols = []
    image = None
    if source in ('snapshot', 'two'):
        with d.under('api.source', ['snapshot', 'two']):
            sv = {'id': SRC, 'host': HOST, 'size': 3}
            sv['availability_zone'] = d.pick('api.snapshot_volume_az',
                                             ['nova', 'az1', 'az2'])
            st = d.pick('api.snapshot_volume_type', [('default', 3), 'gold',
                                                     'luks'])
            if st != 'default':
                sv['volume_type'] = st
                if st == 'luks':
                    sv['encryption_key_id'] = 'key-1'
            vols.append(sv)
            row = {'id': SNAP, 'volume_id': SRC, 'volume_size': 3}
            row['status'] = d.pick('api.snapshot_status', [
                ('available', 5), 'error', 'creating', 'deleting'])
            if st == 'luks':
                row['encryption_key_id'] = 'key-1'
            db['snapshots'] = [row]
            req['snapshot_id'] = SNAP
    if source == 'source-volume' or source == 'two':
        with d.under('api.source', ['source-volume', 'two']):
            vid = SRC if source == 'source-volume' else par(1)
            sv = {'id': vid, 'host': HOST, 'size': 2}
            sv['availability_zone'] = d.pick('api.source_volume_az',
                                             ['nova', 'az1', 'az2'])
            sv['status'] = d.pick('api.source_volume_status', [
                ('available', 4), ('in-use', 2), 'error', 'creating',
                'maintenance'])
            st = d.pick('api.source_volume_type', [('default', 3), 'gold',
                                                   'luks'])
            if st != 'default':
                sv['volume_type'] = st
                if st == 'luks':
                    sv['encryption_key_id'] = 'key-1'
            vols.append(sv)
            req['source_volid'] = vid
    if source == 'image':
        with d.under('api.source', ['image']):
            image = {'id': IMG}
            image['status'] = d.pick('api.image_status', [
                ('active', 6), 'queued', 'saving', 'deactivated', 'killed'])
            isz = d.pick('api.image_size', [('1g', 3), ('2g', 1),
                                            ('2g-plus-1', 1), ('0', 1),
                                            ('null', 1)])
            image['size'] = {'1g': GiB, '2g': 2 * GiB, '2g-plus-1': 2 * GiB + 1,
                             '0': 0, 'null': None}[isz]
            vsz = d.pick('api.image_virtual_size', [('null', 3), ('2g', 1),
                                                    ('3g', 1), ('0', 1)])
            image['virtual_size'] = {'null': None, '2g': 2 * GiB,
                                     '3g': 3 * GiB, '0': 0}[vsz]
            image['min_disk'] = int(d.pick('api.image_min_disk', [
                ('0', 3), '1', '3']))
            owner = d.pick('api.image_owner', [('project-1', 3), 'other',
                                               'null'])
            image['owner'] = {'project-1': 'project-1', 'other': 'project-9',
                              'null': None}[owner]
            image['visibility'] = d.pick('api.image_visibility', [
                ('private', 2), 'public', 'shared', 'community'])
            prop = d.pick('api.image_type_property', [('none', 3), 'gold',
                                                      'byid', 'nosuch',
                                                      'empty'])
            if prop != 'none':
                image['properties'] = {'cinder_img_volume_type': {
                    'gold': 'gold', 'byid': types[2]['id'],
                    'nosuch': 'nosuch', 'empty': ''}[prop]}
            known = d.pick('api.image_known', [('yes', 8), ('no', 1)])
            req['image_id'] = IMG if known == 'yes' else IMG2
    if source == 'backup':
        with d.under('api.source', ['backup']):
            bst = d.pick('api.backup_status', [('available', 2), 'error',
                                               'creating'])
            req['backup'] = {'id': BACKUP, 'size': 2, 'status': bst}
    size = d.pick('api.size', [('equal', 3), ('bigger', 2), ('smaller', 1),
                               ('str-int', 1), ('str-float', 1),
                               ('str-garbage', 1), ('zero', 1),
                               ('negative', 1), ('null', 2), ('bool', 1)])
    req['size'] = {'equal': src_size, 'bigger': src_size + 2,
                   'smaller': src_size - 1, 'str-int': str(src_size),
                   'str-float': '%d.5' % src_size, 'str-garbage': 'abc',
                   'zero': 0, 'negative': -1, 'null': None,
                   'bool': True}[size]
    grp = d.pick('api.group', [('none', 5), ('az-nova', 1), ('az-az2', 1)])
    if grp != 'none':
        req['group'] = {'id': GROUP, 'availability_zone':
                        'nova' if grp == 'az-nova' else 'az2'}
    md = d.pick('api.metadata', [('none', 4), ('some', 1), ('long-value', 1)])
    if md == 'some':
        req['metadata'] = {'purpose': 'test'}
    elif md == 'long-value':
        req['metadata'] = {'k': 'v' * 300}
    if vols:
        db['volumes'] = vols
    v = {'operation': op, 'config': cfg, 'db': db, 'request': req}
    if image is not None:
        v['image'] = image
    return v


# --- the draw ----------------------------------------------------------------------

GENERATORS = {
    'create_from_image': gen_create_from_image,
    'create_cloned_volume': gen_create_cloned_volume,
    'create_from_snapshot': gen_create_from_snapshot,
    'create_volume': gen_create_volume,
    'delete_volume': gen_delete_volume,
    'api_create': lambda d: gen_api(d, 'api_create'),
    'api_extract': lambda d: gen_api(d, 'api_extract'),
}


def vector_name(seed, index, only=None):
    if only:
        return 'rnd-%s-%s-%05d' % (seed, only, index)
    return 'rnd-%s-%05d' % (seed, index)


def draw(seed, index, only=None):
    """Vector ``index`` of ``seed``: (vector, features). With ``only`` (an
    operation) the draw is of that operation, from a stream of its own."""
    pick = random.Random('cinder-flow-random-op:%s:%d' % (seed, index))
    ops = [o for o, _w in OPERATIONS]
    op = only or pick.choices(ops, [w for _o, w in OPERATIONS])[0]
    d = Draw(seed if not only else '%s-%s' % (seed, only), index, op)
    body = GENERATORS[op](d)
    v = {'name': vector_name(seed, index, only),
         'description': 'random %s #%d (%s): %s'
         % (seed, index, op, d.features_text())}
    v.update(body)
    return v, d.features


def draw_many(seed, count, start=0, only=None):
    return [draw(seed, i, only) for i in range(start, start + count)]


# --- pair coverage ------------------------------------------------------------------

# Level pairs the generator cannot produce beyond the ``under`` conditions:
# op -> [(dim, levels), (dim, levels or None = all)].
EXCLUSIONS = {
    'create_from_image': [
        (('image.disk_format', {'vhd'}), ('image.container_format', {'ovf'})),
        (('iv.count', {'0'}), ('loc.kind', {'cinder-iv'})),
        (('iv.count', {'0'}), ('loc.first', {'cinder-iv'})),
        (('iv.count', {'0'}), ('loc.last', {'cinder-iv'})),
        (('iv.count', {'0'}), ('image.direct_url', {'cinder-iv'})),
        (('iv.count', {'0'}), ('loc.cinder_form', None)),
    ],
}


def possible(op, a, la, b, lb):
    """Whether levels ``la`` of ``a`` and ``lb`` of ``b`` can co-occur."""
    for (da, sa), (db_, sb) in EXCLUSIONS.get(op, ()):
        for x, lx, y, ly in ((a, la, b, lb), (b, lb, a, la)):
            if x == da and lx in sa and y == db_ and (sb is None or
                                                      ly in sb):
                return False
    req = REGISTRY.requires[op]
    for x, lx, y in ((a, la, b), (b, lb, a)):
        for parent, allowed in req.get(y, ()):
            if parent == x and lx not in allowed:
                return False
    # drawn under disjoint levels of the same ingredient (exclusive branches)
    for pa, alla in req.get(a, ()):
        for pb, allb in req.get(b, ()):
            if pa == pb and not alla & allb:
                return False
    return True


def pair_coverage(drawn, rarest=15):
    """Per operation: counts of level pairs seen (FORMAT ingredients)."""
    by_op = collections.defaultdict(list)
    for v, feats in drawn:
        by_op[v['operation']].append(feats)
    report = collections.OrderedDict()
    for op, _w in OPERATIONS:
        vecs = by_op.get(op, [])
        if not vecs:
            continue
        levels = REGISTRY.levels[op]
        dims = sorted(levels)
        ids = {}
        for dim in dims:
            for lv in levels[dim]:
                ids[(dim, lv)] = len(ids)
        counts = collections.Counter()
        for feats in vecs:
            items = sorted(ids[(dim, lv)] for dim, lvs in feats.items()
                           for lv in lvs)
            n = len(items)
            for i in range(n):
                a = items[i]
                for j in range(i + 1, n):
                    counts[(a, items[j])] += 1
        names = {i: k for k, i in ids.items()}
        universe = 0
        seen1 = seen3 = 0
        low = []
        for ia, da in enumerate(dims):
            for db_ in dims[ia + 1:]:
                for la in levels[da]:
                    for lb in levels[db_]:
                        if not possible(op, da, la, db_, lb):
                            continue
                        universe += 1
                        x, y = ids[(da, la)], ids[(db_, lb)]
                        c = counts[(min(x, y), max(x, y))]
                        seen1 += c >= 1
                        seen3 += c >= 3
                        low.append((c, '%s=%s' % (da, la),
                                    '%s=%s' % (db_, lb)))
        low.sort()
        single = collections.Counter()
        for feats in vecs:
            for dim, lvs in feats.items():
                for lv in lvs:
                    single[(dim, lv)] += 1
        unseen_levels = [k for k in ids if not single[k]]
        report[op] = {
            'vectors': len(vecs), 'ingredients': len(dims),
            'levels': len(ids), 'unseen_levels': unseen_levels,
            'pairs': universe, 'pairs_seen': seen1, 'pairs_seen_3': seen3,
            'rarest': low[:rarest]}
        del names
    return report


def print_coverage(report, out=sys.stdout):
    for op, r in report.items():
        out.write('%-21s %5d vectors, %3d ingredients, %4d levels, %7d pairs:'
                  ' %6.2f%% seen, %6.2f%% seen >= 3 times\n'
                  % (op, r['vectors'], r['ingredients'], r['levels'],
                     r['pairs'], 100.0 * r['pairs_seen'] / max(r['pairs'], 1),
                     100.0 * r['pairs_seen_3'] / max(r['pairs'], 1)))
        if r['unseen_levels']:
            out.write('    levels never drawn: %s\n' % r['unseen_levels'])
        rare = ['%s & %s: %d' % (a, b, c) for c, a, b in r['rarest'][:5]]
        out.write('    rarest pairs: %s\n' % '; '.join(rare))


# --- output ---------------------------------------------------------------------------

def write_batches(vectors, out, per_file, seed):
    os.makedirs(out, exist_ok=True)
    paths = []
    for start in range(0, len(vectors), per_file):
        chunk = vectors[start:start + per_file]
        path = os.path.join(out, chunk[0]['name'] + '.json')
        with open(path, 'w') as f:
            f.write(array_text(chunk))
        paths.append(path)
    return paths


def array_text(items):
    """A JSON array, one compact object per line."""
    lines = [json.dumps(x, sort_keys=True, separators=(',', ':'))
             for x in items]
    return '[\n' + ',\n'.join(lines) + '\n]\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('--seed', default='1')
    p.add_argument('--count', type=int, default=1000)
    p.add_argument('--start', type=int, default=0)
    p.add_argument('--out')
    p.add_argument('--per-file', type=int, default=250)
    p.add_argument('--coverage', action='store_true')
    p.add_argument('--list-dims', action='store_true')
    p.add_argument('--operation', choices=sorted(GENERATORS),
                   help='draw only this operation (its own stream and names '
                   'rnd-SEED-OPERATION-INDEX), e.g. to check its coverage')
    p.add_argument('--show', metavar='NAME',
                   help='print vector NAME (rnd-SEED-INDEX) and its features')
    args = p.parse_args(argv)
    if args.show:
        rest, index = args.show[len('rnd-'):].rsplit('-', 1)
        seed, _, only = rest.partition('-')
        v, feats = draw(seed, int(index), only or None)
        print(json.dumps(v, indent=1, sort_keys=True))
        for dim, lvls in feats.items():
            print('%-36s %s' % (dim, ', '.join(lvls)))
        return 0
    drawn = draw_many(args.seed, args.count, args.start, args.operation)
    if args.out:
        paths = write_batches([v for v, _f in drawn], args.out, args.per_file,
                              args.seed)
        print('%d vectors in %d files under %s'
              % (len(drawn), len(paths), args.out))
    ops = collections.Counter(v['operation'] for v, _f in drawn)
    print('operations: %s' % ', '.join('%s %d' % (o, ops[o])
                                       for o, _w in OPERATIONS))
    if args.list_dims:
        for op, _w in OPERATIONS:
            for dim, lvls in sorted(REGISTRY.levels[op].items()):
                conds = REGISTRY.requires[op].get(dim) or ()
                print('%-21s %-36s %s%s' % (op, dim, ', '.join(lvls),
                                            '  [when %s]' % '; '.join(
                                                '%s in %s' % (c, sorted(a))
                                                for c, a in conds)
                                            if conds else ''))
    if args.coverage:
        print_coverage(pair_coverage(drawn))
    return 0


if __name__ == '__main__':
    sys.exit(main())
