"""Result building: trace events, strategy (path/source), result objects.

``Recorder.install`` wraps the Cinder methods named in FORMAT.md §11.2 so
that each call appends a trace event; the same wrappers note which creation
strategy ended up being used (``path``/``source``, §11) and which cache
volumes Cinder asked to delete (``cache_evictions``). The wrapped methods
still run unmodified.

``finish`` turns a raw result into the §11 shape (generated UUIDs replaced by
NEW-n) and ``compare`` applies the §12 matching rule.
"""

import functools
import inspect
import json
import re
import urllib.parse

from cinder.image import cache as image_cache
from cinder.volume.drivers import rbd as rbd_driver
from cinder.volume.flows.manager import create_volume as manager_flow

COMPARED = ('name', 'operation', 'outcome', 'error', 'rbd_ops', 'path',
            'source', 'volume', 'cache_entries', 'cache_evictions', 'api')
FIELD_ORDER = ('name', 'operation', 'outcome', 'error', 'rbd_ops', 'trace',
               'path', 'source', 'volume', 'cache_entries', 'cache_evictions',
               'api')
UUID_RE = re.compile(r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
                     r'[0-9a-fA-F]{4}-[0-9a-fA-F]{12}')

Driver = rbd_driver.RBDDriver
FlowTask = manager_flow.CreateVolumeFromSpecTask
Cache = image_cache.ImageVolumeCache


def _vol_id(volume):
    return volume['id'] if isinstance(volume, dict) else volume.id


class Recorder(object):
    def __init__(self):
        self.trace = []
        self.evictions = []
        self.path = None
        self.source = None
        self._cloneable_url = None
        self._in_image_volume_clone = 0
        self._image_volume_src = None
        self._cache_entry = None

    # --- generic wrapper ----------------------------------------------------
    def _wrap(self, case, cls, name, start=None, done=None, before=None,
              after=None, end=None):
        """Wrap ``cls.name``.

        ``start(args)`` -> event recorded when the call starts;
        ``done(args)`` -> event head, completed with the result (``after``
        maps the return value) or ``"error:<Class>"``; ``before(args)`` runs
        first, ``after(args, ret)`` returns the value for the event and
        ``end()`` runs last in any case.
        """
        real = getattr(cls, name)
        signature = inspect.signature(real)

        @functools.wraps(real)
        def wrapper(*a, **kw):
            bound = signature.bind(*a, **kw)
            bound.apply_defaults()
            args = bound.arguments
            if before:
                before(args)
            if start:
                self.trace.append(start(args))
            try:
                ret = real(*a, **kw)
            except Exception as e:
                if done:
                    self.trace.append(done(args) +
                                      ['error:%s' % type(e).__name__])
                raise
            finally:
                if end:
                    end()
            if done:
                self.trace.append(done(args) + [after(args, ret)])
            return ret
        case.mock_object(cls, name, wrapper)

    # --- the §11.2 events ---------------------------------------------------
    def install(self, case):
        w = functools.partial(self._wrap, case)
        # RBD driver
        w(Driver, '_is_cloneable',
          done=lambda a: ['is_cloneable', a['image_location']],
          after=self._after_is_cloneable)
        w(Driver, 'clone_image', done=lambda a: ['clone_image'],
          after=self._after_clone_image)
        w(Driver, 'create_volume',
          start=lambda a: ['create_volume', a['volume'].id])
        w(Driver, 'create_cloned_volume',
          start=self._start_cloned_volume)
        w(Driver, 'create_volume_from_snapshot',
          start=lambda a: ['create_volume_from_snapshot', a['volume'].id,
                           a['snapshot'].id])
        w(Driver, 'copy_image_to_volume',
          start=lambda a: ['copy_image_to_volume', a['volume'].id,
                           a['image_id']])
        w(Driver, 'copy_image_to_encrypted_volume',
          start=lambda a: ['copy_image_to_encrypted_volume', a['volume'].id,
                           a['image_id']])
        w(Driver, 'extend_volume',
          start=lambda a: ['extend_volume', a['volume'].id, a['new_size']])
        w(Driver, 'delete_volume',
          start=lambda a: ['delete_volume', a['volume'].id])
        # manager flow (CreateVolumeFromSpecTask)
        w(FlowTask, '_clone_image_volume',
          before=self._before_image_volume_clone,
          end=self._end_image_volume_clone,
          done=lambda a: ['clone_image_volume'],
          after=self._after_image_volume_clone)
        w(FlowTask, '_create_from_image_cache',
          before=self._before_cache_clone,
          done=lambda a: ['cache_clone'], after=self._after_cache_clone)
        w(FlowTask, '_prepare_image_cache_entry',
          done=lambda a: ['prepare_cache_entry'],
          after=lambda a, ret: ret[1])
        w(FlowTask, '_create_from_image_cache_or_download',
          before=self._before_cache_or_download)
        w(FlowTask, '_create_from_image_download',
          start=lambda a: ['download', a['volume'].id])
        # image-volume cache
        w(Cache, 'get_entry',
          done=lambda a: ['cache_get_entry', a['image_id']],
          after=self._after_get_entry)
        w(Cache, 'ensure_space', done=lambda a: ['cache_ensure_space'],
          after=lambda a, ret: ret)
        w(Cache, 'create_cache_entry',
          done=lambda a: ['cache_create_entry', a['image_id']],
          after=lambda a, ret: ret['volume_id'])
        w(Cache, 'evict',
          start=lambda a: ['cache_evict', a['cache_entry']['volume_id']])
        w(Cache, 'delete_cached_volume',
          before=lambda a: self.evictions.append(
              a['cache_entry']['volume_id']))

    # --- strategy bookkeeping -----------------------------------------------
    def _after_is_cloneable(self, args, ret):
        if ret:
            self._cloneable_url = args['image_location']
        return ret

    def _after_clone_image(self, args, ret):
        cloned = bool(ret[1])
        if cloned:
            url = self._cloneable_url
            _fsid, pool, image, snap = [
                urllib.parse.unquote(p)
                for p in url[len('rbd://'):].split('/')]
            self.path = 'driver_clone'
            self.source = {'kind': 'rbd_location', 'url': url, 'pool': pool,
                           'image': image, 'snap': snap}
        return cloned

    def _start_cloned_volume(self, args):
        if self._in_image_volume_clone:
            self._image_volume_src = args['src_vref'].id
        return ['create_cloned_volume', args['volume'].id,
                args['src_vref'].id]

    def _before_image_volume_clone(self, args):
        self._in_image_volume_clone += 1
        self._image_volume_src = None

    def _end_image_volume_clone(self):
        self._in_image_volume_clone -= 1

    def _after_image_volume_clone(self, args, ret):
        cloned = bool(ret[1])
        if cloned:
            self.path = 'image_volume_clone'
            self.source = {'kind': 'volume',
                           'volume_id': self._image_volume_src}
        return cloned

    def _before_cache_clone(self, args):
        self._cache_entry = None

    def _after_get_entry(self, args, ret):
        self._cache_entry = ret['volume_id'] if ret else None
        return self._cache_entry

    def _after_cache_clone(self, args, ret):
        cloned = bool(ret[1])
        if cloned:
            self.path = 'cache_hit'
            self.source = {'kind': 'cache', 'volume_id': self._cache_entry}
        return cloned

    def _before_cache_or_download(self, args):
        # Entered from _prepare_image_cache_entry (cache miss, the volume is
        # downloaded and then cloned into a new cache entry) or as the
        # final "use the cache, else download" step of _create_from_image.
        self.path = ('cache_miss_download' if args['update_cache']
                     else 'download')
        self.source = {'kind': 'glance', 'image_id': args['image_id']}


# --- result shape ----------------------------------------------------------

def replace_new_ids(result, vector_text):
    """Replace UUIDs that do not occur in the vector by NEW-1, NEW-2, ..."""
    known = {u.lower() for u in UUID_RE.findall(vector_text)}
    mapping = {}

    def sub(match):
        u = match.group(0)
        if u.lower() in known:
            return u
        if u not in mapping:
            mapping[u] = 'NEW-%d' % (len(mapping) + 1)
        return mapping[u]

    def walk(x):
        if isinstance(x, str):
            return UUID_RE.sub(sub, x)
        if isinstance(x, list):
            return [walk(i) for i in x]
        if isinstance(x, dict):
            return {k: walk(x[k]) for k in x}
        return x

    ordered = {k: result[k] for k in FIELD_ORDER if k in result}
    ordered.update({k: v for k, v in result.items() if k not in ordered})
    return walk(ordered)


def compare(result, expected):
    """Return (mismatched compared fields, trace differs)."""
    bad = []
    for key in COMPARED:
        if (key in result) != (key in expected) or \
                result.get(key) != expected.get(key):
            bad.append(key)
    trace_differs = ('trace' in expected and
                     result.get('trace') != expected.get('trace'))
    return bad, trace_differs


def dumps(obj):
    return json.dumps(obj, sort_keys=False, separators=(', ', ': '))
