"""Reading test vectors and filling in the defaults of FORMAT.md §1-§10."""

import copy
import datetime
import glob
import json
import os

OPERATIONS = ('create_from_image', 'create_cloned_volume',
              'create_from_snapshot', 'create_volume', 'delete_volume',
              'api_create', 'api_extract')
MANAGER_OPERATIONS = ('create_from_image', 'create_cloned_volume',
                      'create_from_snapshot', 'create_volume')

GiB = 1 << 30
BASE_TIME = datetime.datetime(2024, 1, 1, 0, 0, 0)
BASE_TIMESTAMP = '2024-01-01T00:00:00Z'


class VectorError(Exception):
    """The vector itself is malformed (not a Cinder outcome)."""


def timestamp(seconds):
    t = BASE_TIME + datetime.timedelta(seconds=seconds)
    return t.strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_timestamp(value):
    """ISO 8601 UTC string -> naive UTC datetime."""
    value = value.replace('Z', '+00:00')
    t = datetime.datetime.fromisoformat(value)
    if t.tzinfo is not None:
        t = t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return t


def _fill(obj, defaults, what):
    if not isinstance(obj, dict):
        raise VectorError('%s must be an object' % what)
    out = copy.deepcopy(defaults)
    out.update(copy.deepcopy(obj))
    return out


def _require(obj, keys, what):
    for key in keys:
        if obj.get(key) is None:
            raise VectorError('%s: missing required field %r' % (what, key))


def volume(obj, index, status='available'):
    v = _fill(obj, {
        'host': None, 'cluster_name': None, 'project_id': 'project-1',
        'user_id': 'user-1', 'size': 1, 'status': status,
        'volume_type': '__DEFAULT__', 'encryption_key_id': None,
        'availability_zone': 'nova', 'bootable': False, 'use_quota': True,
        'metadata': {}, 'admin_metadata': {}, 'created_at': timestamp(index),
        'deleted': False, 'name_id': None, 'snapshot_id': None,
        'source_volid': None}, 'volume')
    _require(v, ['id'], 'volume')
    return v


def image(obj):
    im = _fill(obj, {
        'owner': None, 'status': 'active', 'visibility': 'private',
        'container_format': 'bare', 'disk_format': 'raw', 'size': GiB,
        'virtual_size': None, 'min_disk': 0, 'min_ram': 0,
        'created_at': BASE_TIMESTAMP, 'updated_at': BASE_TIMESTAMP,
        'direct_url': None, 'locations': [], 'properties': {}}, 'image')
    _require(im, ['id'], 'image')
    if im['locations'] is not None:
        im['locations'] = [_fill(loc, {'url': None, 'metadata': {}},
                                 'image location')
                           for loc in im['locations']]
    return im


def rbd_image(obj):
    im = _fill(obj, {'size': GiB, 'features': 1, 'stripe_unit': 4 << 20,
                     'watchers': 0, 'readable': True, 'parent': None,
                     'snaps': []}, 'rbd image')
    snaps = []
    for sn in im['snaps']:
        s = _fill(sn, {'size': im['size'], 'protected': False,
                       'parent': im['parent']}, 'rbd snapshot')
        _require(s, ['name'], 'rbd snapshot')
        snaps.append(s)
    im['snaps'] = snaps
    return im


def normalize(raw):
    """Return the vector with every default filled in."""
    v = _fill(raw, {
        'description': '', 'config': {}, 'backend': {}, 'request': {},
        'images': [], 'glance': {}, 'db': {}, 'cluster': {}, 'env': {}},
        'vector')
    _require(v, ['name', 'operation'], 'vector')
    if v['operation'] not in OPERATIONS:
        raise VectorError('unknown operation %r' % v['operation'])
    v['backend'] = _fill(v['backend'], {
        'name': 'ceph', 'host': 'hostA@ceph', 'cluster': None,
        'capabilities': {}}, 'backend')
    v['glance'] = _fill(v['glance'], {'location_api': 'new'}, 'glance')
    v['env'] = _fill(v['env'], {
        'image_conversion_free_bytes': 1 << 60}, 'env')

    db = _fill(v['db'], {'volume_types': [], 'volumes': [], 'snapshots': [],
                         'services': [], 'image_cache': []}, 'db')
    db['volume_types'] = [
        _fill(t, {'id': None, 'extra_specs': {}, 'encryption': None},
              'volume type') for t in db['volume_types']]
    for t in db['volume_types']:
        _require(t, ['name'], 'volume type')
        if t['encryption'] is not None:
            t['encryption'] = _fill(t['encryption'], {
                'provider': 'luks', 'cipher': 'aes-xts-plain64',
                'key_size': 256, 'control_location': 'front-end'},
                'encryption')
    db['volumes'] = [volume(x, i) for i, x in enumerate(db['volumes'])]
    by_id = {x['id']: x for x in db['volumes']}
    snaps = []
    for s in db['snapshots']:
        _require(s, ['id', 'volume_id'], 'snapshot')
        src = by_id.get(s['volume_id'])
        if src is None:
            raise VectorError('snapshot %s: volume %s is not a db.volumes row'
                              % (s['id'], s['volume_id']))
        snaps.append(_fill(s, {'volume_size': src['size'],
                               'status': 'available',
                               'project_id': src['project_id'],
                               'encryption_key_id': None}, 'snapshot'))
    db['snapshots'] = snaps
    db['services'] = [
        _fill(s, {'binary': 'cinder-volume', 'topic': 'cinder-volume',
                  'availability_zone': 'nova', 'disabled': False}, 'service')
        for s in db['services']]
    for s in db['services']:
        _require(s, ['host'], 'service')
    entries = []
    for i, e in enumerate(db['image_cache']):
        e = _fill(e, {'cluster_name': None, 'size': 1,
                      'image_updated_at': BASE_TIMESTAMP,
                      'last_used': timestamp(i)}, 'image cache entry')
        _require(e, ['image_id', 'host', 'volume_id'], 'image cache entry')
        entries.append(e)
    db['image_cache'] = entries
    v['db'] = db

    cl = _fill(v['cluster'], {
        'fsid': '00000000-0000-0000-0000-00000000f51d', 'reachable': True,
        'clone_v2': False, 'rbd_default_features': None, 'pools': {}},
        'cluster')
    cl['pools'] = {pool: {name: rbd_image(im) for name, im in imgs.items()}
                   for pool, imgs in cl['pools'].items()}
    v['cluster'] = cl

    if 'image' in v and v['image'] is not None:
        v['image'] = image(v['image'])
    else:
        v['image'] = None
    v['images'] = [image(x) for x in v['images']]

    op = v['operation']
    if op.startswith('api_'):
        v['request'] = _fill(v['request'], {
            'size': None, 'availability_zone': None, 'volume_type': None,
            'snapshot_id': None, 'source_volid': None, 'image_id': None,
            'group': None, 'backup': None, 'project_id': 'project-1',
            'user_id': 'user-1', 'metadata': None, 'name': 'vol',
            'description': None}, 'request')
        v['volume'] = None
    else:
        if not v.get('volume'):
            raise VectorError('operation %s needs a volume' % op)
        status = 'deleting' if op == 'delete_volume' else 'creating'
        v['volume'] = volume(v['volume'], len(db['volumes']), status)
        if 'status' not in raw['volume']:
            v['volume']['status'] = status
        if op == 'create_cloned_volume':
            _require(v['request'], ['source_volid'], 'request')
            v['volume']['source_volid'] = (v['volume']['source_volid'] or
                                           v['request']['source_volid'])
        elif op == 'create_from_snapshot':
            _require(v['request'], ['snapshot_id'], 'request')
            v['volume']['snapshot_id'] = (v['volume']['snapshot_id'] or
                                          v['request']['snapshot_id'])
        elif op == 'create_from_image' and v['image'] is None:
            raise VectorError('create_from_image needs an image')
    return v


def load_path(path):
    """Yield (vector, expected-or-None) for a file or a directory."""
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, '*.json'))
                       if not f.endswith('.expected.json'))
    elif path.endswith('.expected.json'):
        files = []      # an expected result, not a vector (e.g. via a glob)
    else:
        files = [path]
    for fname in files:
        with open(fname) as f:
            data = json.load(f)
        items = data if isinstance(data, list) else [data]
        for raw in items:
            expected = raw.get('expected')
            if expected is None and isinstance(raw, dict) and 'name' in raw:
                exp_file = os.path.join(os.path.dirname(fname),
                                        raw['name'] + '.expected.json')
                if os.path.exists(exp_file):
                    with open(exp_file) as f:
                        expected = json.load(f)
            yield fname, raw, expected
