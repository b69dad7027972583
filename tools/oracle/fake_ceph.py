"""In-memory stand-ins for the ``rados`` and ``rbd`` Python bindings.

The RBD driver of Cinder talks to Ceph only through these two modules. This
file builds replacement modules bound to one simulated cluster (FORMAT.md §9)
and implements the librbd semantics listed in FORMAT.md §9.1. Every call that
changes the cluster is appended to ``Cluster.ops`` in the §11.1 notation; a
call that raises is recorded as ``["failed", "<ErrorClass>", ...op]`` and
changes nothing.

Images are tracked as objects, so a parent reference survives a rename or a
move to the trash, as it does in Ceph (where references use image ids).
"""

import types

GiB = 1 << 30
MiB = 1 << 20

RBD_FEATURE_LAYERING = 1
RBD_FEATURE_STRIPINGV2 = 2
RBD_FEATURE_EXCLUSIVE_LOCK = 4
RBD_FEATURE_OBJECT_MAP = 8
RBD_FEATURE_FAST_DIFF = 16
RBD_FEATURE_DEEP_FLATTEN = 32
RBD_FEATURE_JOURNALING = 64
RBD_OPERATION_FEATURE_CLONE_PARENT = 1
RBD_OPERATION_FEATURE_CLONE_CHILD = 2


# --- exception classes ------------------------------------------------------
# Named exactly like the python-rbd / python-rados ones: the result reports
# the class name of an escaping exception.

def _exc(name, base):
    return type(name, (base,), {'__module__': 'rbd'})


class RbdError(Exception):
    pass


RbdError.__name__ = RbdError.__qualname__ = 'Error'
RbdError.__module__ = 'rbd'
RbdOSError = _exc('OSError', RbdError)
RBD_ERRORS = {'Error': RbdError, 'OSError': RbdOSError}
for _name in ('ImageNotFound', 'ImageExists', 'ImageBusy',
              'ImageHasSnapshots', 'InvalidArgument', 'PermissionError',
              'ReadOnlyImage', 'FunctionNotSupported', 'NoSpace',
              'ObjectNotFound', 'ObjectExists', 'IOError',
              'InvalidSnapshot', 'ArgumentOutOfRange', 'Timeout',
              'ConnectionShutdown', 'DiskQuotaExceeded'):
    RBD_ERRORS[_name] = _exc(_name, RbdOSError)


class RadosError(Exception):
    pass


RadosError.__name__ = RadosError.__qualname__ = 'Error'
RadosError.__module__ = 'rados'
RadosOSError = type('OSError', (RadosError,), {'__module__': 'rados'})
RADOS_ERRORS = {'Error': RadosError, 'OSError': RadosOSError}
for _name in ('ObjectNotFound', 'TimedOut', 'PermissionError',
              'ObjectExists', 'IOError', 'NoSpace',
              'InterruptedOrTimeoutError'):
    RADOS_ERRORS[_name] = type(_name, (RadosOSError,), {'__module__': 'rados'})


def _rbd_err(name, msg=''):
    return RBD_ERRORS[name](msg)


# --- cluster state ----------------------------------------------------------

class ParentRef(object):
    """A clone's link to ``image@snap``.

    ``image`` is the parent Img object, or None for a dangling reference (the
    vector named a parent that is not in the cluster); then ``pool`` and
    ``name`` keep the names given in the vector.
    """

    def __init__(self, image, snap, pool=None, name=None):
        self.image = image
        self.snap = snap
        self._pool = pool
        self._name = name

    def names(self):
        if self.image is not None:
            return self.image.pool, self.image.name, self.snap
        return self._pool, self._name, self.snap

    def refers_to(self, image, snap):
        return self.image is image and self.snap == snap


class Snap(object):
    def __init__(self, name, size, protected=False, parent=None):
        self.name = name
        self.size = size
        self.protected = protected
        self.parent = parent
        # clone v2: a removed snapshot that still has children is moved to
        # the trash namespace; it is invisible but keeps its children.
        self.hidden = False


class Img(object):
    def __init__(self, pool, name, size, features=RBD_FEATURE_LAYERING,
                 stripe_unit=4 * MiB, watchers=0, readable=True, parent=None):
        self.pool = pool
        self.name = name
        self.size = size
        self.features = features
        self.stripe_unit = stripe_unit
        self.watchers = watchers
        self.readable = readable
        self.parent = parent
        self.snaps = []
        self.in_trash = False

    def snap(self, name, include_hidden=False):
        for s in self.snaps:
            if s.name == name and (include_hidden or not s.hidden):
                return s
        return None

    def visible_snaps(self):
        return [s for s in self.snaps if not s.hidden]


class Cluster(object):
    """The simulated Ceph cluster of one vector (FORMAT.md §9)."""

    def __init__(self, spec):
        self.fsid = spec['fsid']
        self.reachable = spec['reachable']
        self.clone_v2 = spec['clone_v2']
        self.default_features = spec['rbd_default_features']
        self.ops = []
        self.pools = {}
        parents = []
        for pool, images in spec['pools'].items():
            self.pools[pool] = {}
            for name, im in images.items():
                img = Img(pool, name, im['size'], im['features'],
                          im['stripe_unit'], im['watchers'], im['readable'])
                self.pools[pool][name] = img
                parents.append((img, im['parent']))
                for sn in im['snaps']:
                    snap = Snap(sn['name'], sn['size'], sn['protected'])
                    img.snaps.append(snap)
                    parents.append((snap, sn['parent']))
        for owner, ref in parents:
            owner.parent = self._resolve(ref)
        self.trash = []

    def _resolve(self, ref):
        if ref is None:
            return None
        target = self.pools.get(ref['pool'], {}).get(ref['image'])
        if target is None:
            return ParentRef(None, ref['snap'], ref['pool'], ref['image'])
        return ParentRef(target, ref['snap'])

    # queries
    def all_images(self):
        for pool in sorted(self.pools):
            for name in sorted(self.pools[pool]):
                yield self.pools[pool][name]
        for img in self.trash:
            yield img

    def children(self, image, snap_name):
        """Images (also trashed ones) cloned from ``image@snap_name``."""
        found = set()
        for img in self.all_images():
            refs = [img.parent] + [s.parent for s in img.snaps]
            if any(r is not None and r.refers_to(image, snap_name)
                   for r in refs):
                found.add((img.pool, img.name))
        return sorted(found)

    def lookup(self, pool, name):
        return self.pools.get(pool, {}).get(name)

    # bookkeeping
    def record(self, op):
        self.ops.append(list(op))

    def run(self, op, check, apply):
        """Record ``op``; ``check()`` may raise (then it is a failed op)."""
        try:
            check()
        except (RbdError, RadosError) as e:
            self.ops.append(['failed', type(e).__name__] + list(op))
            raise
        result = apply()
        self.ops.append(list(op))
        return result

    def drop_unused_hidden_snaps(self, ref):
        """clone v2: a trashed snapshot disappears with its last child."""
        if ref is None or ref.image is None:
            return
        snap = ref.image.snap(ref.snap, include_hidden=True)
        if snap is not None and snap.hidden and \
                not self.children(ref.image, snap.name):
            ref.image.snaps.remove(snap)

    def detach(self, img):
        """Forget ``img`` (removed): release its parent references."""
        refs = [img.parent] + [s.parent for s in img.snaps]
        img.parent = None
        img.snaps = []
        for ref in refs:
            self.drop_unused_hidden_snaps(ref)


# --- the fake modules -------------------------------------------------------

def make_modules(cluster):
    """Return ``(rados_module, rbd_module)`` bound to ``cluster``."""

    class Ioctx(object):
        def __init__(self, pool):
            self.pool = pool

        def close(self):
            pass

        def get_pool_name(self):
            return self.pool

    class Rados(object):
        def __init__(self, rados_id=None, clustername=None, conffile=None,
                     **kwargs):
            self.connected = False

        def conf_set(self, key, value):
            pass

        def conf_get(self, key):
            if key == 'rbd_default_features':
                if cluster.default_features is None:
                    return None
                return str(cluster.default_features)
            return None

        def connect(self, timeout=None):
            if not cluster.reachable:
                raise RADOS_ERRORS['TimedOut']('simulated: unreachable')
            self.connected = True

        def open_ioctx(self, pool):
            if not cluster.reachable:
                raise RADOS_ERRORS['TimedOut']('simulated: unreachable')
            if pool not in cluster.pools:
                raise RADOS_ERRORS['ObjectNotFound']('no pool %s' % pool)
            return Ioctx(pool)

        def shutdown(self):
            self.connected = False

        def get_fsid(self):
            return cluster.fsid

        def mon_command(self, cmd, inbuf, timeout=0, target=None):
            # Pool statistics are not simulated: Cinder reports 'unknown'.
            return 1, b'', 'not simulated'

    def _image(ioctx, name):
        img = cluster.lookup(ioctx.pool, name)
        if img is None:
            raise _rbd_err('ImageNotFound', 'image %s/%s not found'
                           % (ioctx.pool, name))
        return img

    class Image(object):
        def __init__(self, ioctx, name, snapshot=None, read_only=False,
                     **kwargs):
            self.img = _image(ioctx, name)
            if not self.img.readable:
                raise _rbd_err('PermissionError',
                               'simulated: no read permission on %s/%s'
                               % (ioctx.pool, name))
            self.snap_name = None
            if snapshot is not None:
                self.set_snap(snapshot)
            self.ioctx = ioctx

        # read-only calls
        def close(self):
            pass

        def _snap(self, name):
            snap = self.img.snap(name)
            if snap is None:
                raise _rbd_err('ImageNotFound', 'no snapshot %s@%s'
                               % (self.img.name, name))
            return snap

        def set_snap(self, name):
            if name is not None:
                self._snap(name)
            self.snap_name = name

        def size(self):
            if self.snap_name is not None:
                return self._snap(self.snap_name).size
            return self.img.size

        def stripe_unit(self):
            return self.img.stripe_unit

        def stripe_count(self):
            return 1

        def features(self):
            return self.img.features

        def op_features(self):
            return RBD_OPERATION_FEATURE_CLONE_PARENT if cluster.clone_v2 \
                else 0

        def parent_info(self):
            if self.snap_name is not None:
                ref = self._snap(self.snap_name).parent
            else:
                ref = self.img.parent
            if ref is None:
                raise _rbd_err('ImageNotFound', 'image has no parent')
            return ref.names()

        def list_snaps(self):
            return [{'id': i, 'size': s.size, 'name': s.name, 'namespace': 0}
                    for i, s in enumerate(self.img.visible_snaps())]

        def is_protected_snap(self, name):
            return self._snap(name).protected

        def list_children(self):
            if self.snap_name is not None:
                return cluster.children(self.img, self.snap_name)
            found = set()
            for s in self.img.snaps:
                found.update(cluster.children(self.img, s.name))
            return sorted(found)

        # cluster-changing calls
        def _op(self, *args):
            return (args[0], self.img.pool, self.img.name) + args[1:]

        def create_snap(self, name):
            def check():
                if self.img.snap(name) is not None:
                    raise _rbd_err('ImageExists', 'snapshot %s exists' % name)

            def apply():
                self.img.snaps.append(Snap(name, self.img.size, False,
                                           self.img.parent))
            cluster.run(self._op('create_snap', name), check, apply)

        def protect_snap(self, name):
            def check():
                if self._snap(name).protected:
                    raise _rbd_err('ImageBusy', 'snapshot already protected')

            def apply():
                self._snap(name).protected = True
            cluster.run(self._op('protect_snap', name), check, apply)

        def unprotect_snap(self, name):
            def check():
                snap = self._snap(name)
                if not snap.protected:
                    raise _rbd_err('InvalidArgument', 'snapshot not protected')
                if cluster.children(self.img, name):
                    raise _rbd_err('ImageBusy', 'snapshot has children')

            def apply():
                self._snap(name).protected = False
            cluster.run(self._op('unprotect_snap', name), check, apply)

        def remove_snap(self, name):
            def check():
                snap = self._snap(name)
                if snap.protected:
                    raise _rbd_err('ImageBusy', 'snapshot is protected')
                if not cluster.clone_v2 and cluster.children(self.img, name):
                    raise _rbd_err('ImageBusy', 'snapshot has children')

            def apply():
                snap = self._snap(name)
                if cluster.children(self.img, name):
                    snap.hidden = True      # clone v2: moved to the trash
                else:
                    self.img.snaps.remove(snap)
                    cluster.drop_unused_hidden_snaps(snap.parent)
                if self.snap_name == name:
                    self.snap_name = None
            cluster.run(self._op('remove_snap', name), check, apply)

        def flatten(self, on_progress=None):
            def check():
                if self.img.parent is None:
                    raise _rbd_err('InvalidArgument', 'image has no parent')

            def apply():
                ref = self.img.parent
                self.img.parent = None
                cluster.drop_unused_hidden_snaps(ref)
            cluster.run(self._op('flatten'), check, apply)

        def resize(self, size, allow_shrink=True):
            def apply():
                self.img.size = size
            cluster.run(self._op('resize', size), lambda: None, apply)

        def copy(self, dest_ioctx, dest_name, features=0, order=0,
                 stripe_unit=0, stripe_count=0, data_pool=None):
            op = ('copy', self.img.pool, self.img.name, dest_ioctx.pool,
                  dest_name)

            def check():
                if cluster.lookup(dest_ioctx.pool, dest_name) is not None:
                    raise _rbd_err('ImageExists', 'image %s exists'
                                   % dest_name)

            def apply():
                cluster.pools[dest_ioctx.pool][dest_name] = Img(
                    dest_ioctx.pool, dest_name, self.size(),
                    self.img.features, self.img.stripe_unit)
            cluster.run(op, check, apply)

        def update_features(self, features, enabled):
            def apply():
                if enabled:
                    self.img.features |= features
                else:
                    self.img.features &= ~features
            cluster.run(self._op('update_features', features, bool(enabled)),
                        lambda: None, apply)

        # Not simulated (no op defined in FORMAT.md §11.1): accepted, no-op.
        def mirror_image_enable(self, *args, **kwargs):
            pass

        def mirror_image_disable(self, *args, **kwargs):
            pass

        def metadata_set(self, key, value):
            pass

        def metadata_get(self, key):
            raise _rbd_err('ObjectNotFound', key)

        def metadata_list(self):
            return []

        def metadata_remove(self, key):
            pass

    class RBD(object):
        def version(self):
            return (1, 18, 0)

        def list(self, ioctx):
            return sorted(cluster.pools[ioctx.pool])

        def create(self, ioctx, name, size, order=None, old_format=True,
                   features=None, *args, **kwargs):
            def check():
                if cluster.lookup(ioctx.pool, name) is not None:
                    raise _rbd_err('ImageExists', 'image %s exists' % name)

            def apply():
                cluster.pools[ioctx.pool][name] = Img(
                    ioctx.pool, name, size,
                    RBD_FEATURE_LAYERING if features is None else features,
                    (1 << order) if order else 4 * MiB)
            cluster.run(('create', ioctx.pool, name, size), check, apply)

        def clone(self, p_ioctx, p_name, p_snapname, c_ioctx, c_name,
                  features=None, order=None, *args, **kwargs):
            op = ('clone', p_ioctx.pool, p_name, p_snapname, c_ioctx.pool,
                  c_name)

            def check():
                parent = _image(p_ioctx, p_name)
                snap = parent.snap(p_snapname)
                if snap is None:
                    raise _rbd_err('ImageNotFound', 'no snapshot %s@%s'
                                   % (p_name, p_snapname))
                if not snap.protected and not cluster.clone_v2:
                    raise _rbd_err('InvalidArgument',
                                   'parent snapshot must be protected')
                if cluster.lookup(c_ioctx.pool, c_name) is not None:
                    raise _rbd_err('ImageExists', 'image %s exists' % c_name)

            def apply():
                parent = cluster.lookup(p_ioctx.pool, p_name)
                snap = parent.snap(p_snapname)
                cluster.pools[c_ioctx.pool][c_name] = Img(
                    c_ioctx.pool, c_name, snap.size,
                    parent.features if features is None else features,
                    (1 << order) if order else parent.stripe_unit,
                    parent=ParentRef(parent, p_snapname))
            cluster.run(op, check, apply)

        def remove(self, ioctx, name, *args, **kwargs):
            def check():
                img = _image(ioctx, name)
                if img.watchers > 0:
                    raise _rbd_err('ImageBusy', 'image has watchers')
                if img.snaps:
                    raise _rbd_err('ImageHasSnapshots', 'image has snapshots')

            def apply():
                img = cluster.pools[ioctx.pool].pop(name)
                cluster.detach(img)
            cluster.run(('remove', ioctx.pool, name), check, apply)

        def rename(self, ioctx, src, dest):
            def check():
                _image(ioctx, src)
                if cluster.lookup(ioctx.pool, dest) is not None:
                    raise _rbd_err('ImageExists', 'image %s exists' % dest)

            def apply():
                img = cluster.pools[ioctx.pool].pop(src)
                img.name = dest
                cluster.pools[ioctx.pool][dest] = img
            cluster.run(('rename', ioctx.pool, src, dest), check, apply)

        def trash_move(self, ioctx, name, delay=0):
            def check():
                img = _image(ioctx, name)
                if img.watchers > 0:
                    raise _rbd_err('ImageBusy', 'image has watchers')

            def apply():
                img = cluster.pools[ioctx.pool].pop(name)
                img.in_trash = True
                cluster.trash.append(img)
            cluster.run(('trash_move', ioctx.pool, name, delay), check, apply)

        def trash_list(self, ioctx):
            return [{'id': '%s/%s' % (img.pool, img.name), 'name': img.name}
                    for img in cluster.trash if img.pool == ioctx.pool]

        def trash_remove(self, ioctx, image_id, force=False):
            img = next((i for i in cluster.trash
                        if '%s/%s' % (i.pool, i.name) == image_id), None)
            name = img.name if img else image_id

            def check():
                if img is None:
                    raise _rbd_err('ImageNotFound', image_id)
                if img.snaps:
                    raise _rbd_err('ImageBusy', 'image has snapshots')

            def apply():
                cluster.trash.remove(img)
                cluster.detach(img)
            cluster.run(('trash_remove', ioctx.pool, name), check, apply)

    rados_mod = types.ModuleType('rados')
    rados_mod.Rados = Rados
    rados_mod.Ioctx = Ioctx
    for name, cls in RADOS_ERRORS.items():
        setattr(rados_mod, name, cls)

    rbd_mod = types.ModuleType('rbd')
    rbd_mod.RBD = RBD
    rbd_mod.Image = Image
    for name, cls in RBD_ERRORS.items():
        setattr(rbd_mod, name, cls)
    for name, value in globals().items():
        if name.startswith('RBD_FEATURE_') or \
                name.startswith('RBD_OPERATION_FEATURE_'):
            setattr(rbd_mod, name, value)
    return rados_mod, rbd_mod
