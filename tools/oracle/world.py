"""Building the situation a vector describes, and the simulated edges.

``World`` is set up inside a running ``cinder.tests.unit.test.TestCase``
(which already provides an in-memory sqlite database with Cinder's schema,
config fixtures, a fake RPC transport and notifier). It then

* applies the vector's Cinder options (FORMAT.md §3),
* inserts the database rows (§5, §8) through Cinder's own DB API,
* creates the fake Ceph cluster and installs the fake ``rados``/``rbd``
  modules into Cinder's RBD driver module (§9),
* points Cinder's Glance client wrapper at the fake Glance client (§7),
* replaces the remaining edges: shell commands (``qemu-img``, ``rbd
  import``), ``qemu-img info``, the image download, the free space of the
  conversion directory (§10), the key manager and sleeping.

Everything between these edges is unmodified Cinder code.
"""

import json
import os
import shutil
import time
import uuid

from castellan.common.objects import symmetric_key
import castellan.key_manager
import fixtures
from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_utils import imageutils
import sqlalchemy

from cinder import context as cinder_context
from cinder.db import api as db_api
from cinder.db import models
from cinder import exception
from cinder.image import glance
from cinder.image import image_utils
from cinder import objects
from cinder.objects import base as objects_base
from cinder.scheduler import rpcapi as scheduler_rpcapi
from cinder.volume import configuration
from cinder.volume import driver as volume_driver
from cinder.volume.drivers import rbd as rbd_driver  # noqa: F401 (opts)
from cinder.volume import manager as volume_manager  # noqa: F401 (opts)
from cinder.volume import rpcapi as volume_rpcapi

import fake_ceph
import fake_glance
import vectors

CONF = cfg.CONF
RBD_DRIVER = 'cinder.volume.drivers.rbd.RBDDriver'
RPC_VERSIONS = {
    'cinder-volume': volume_rpcapi.VolumeAPI.RPC_API_VERSION,
    'cinder-scheduler': scheduler_rpcapi.SchedulerAPI.RPC_API_VERSION,
}


class _NoSleep(object):
    """Stands in for the ``time`` module of a Cinder module: no sleeping."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        pass


# --- key manager -----------------------------------------------------------

class FakeKeyManager(object):
    """Every key id is known; keys are 256 zero bits."""

    def __init__(self, *args, **kwargs):
        pass

    def create_key(self, context, algorithm='AES', length=256, **kwargs):
        return str(uuid.uuid4())

    def store(self, context, managed_object, **kwargs):
        return str(uuid.uuid4())

    def get(self, context, managed_object_id, **kwargs):
        return symmetric_key.SymmetricKey('AES', 256, b'\0' * 32)

    def delete(self, context, managed_object_id, **kwargs):
        pass


# --- local files, shell commands, qemu-img ---------------------------------

class Edges(object):
    """Simulated data copies: files only exist as (size, format) records."""

    def __init__(self, world):
        self.world = world
        # absolute path -> (virtual size in bytes, qemu format)
        self.files = {}

    # the image download (image_utils.fetch)
    def fetch(self, context, image_service, image_id, path, *args, **kwargs):
        spec = self.world.image_spec(image_id)
        size = spec['virtual_size']
        if size is None:
            size = spec['size']
        fmt = image_utils.fixup_disk_format(spec['disk_format'])
        self.files[os.path.abspath(path)] = (size, fmt)
        with open(path, 'wb'):
            pass

    # image data copied into a volume (image_utils.fetch_to_volume_format)
    def wrap_fetch_to_volume_format(self, real):
        def fetch_to_volume_format(context, image_service, image_id, *args,
                                   **kwargs):
            self.world.cluster.record(['download_image', image_id])
            return real(context, image_service, image_id, *args, **kwargs)
        return fetch_to_volume_format

    # qemu-img info
    def qemu_img_info(self, path, *args, **kwargs):
        size, fmt = self.files.get(os.path.abspath(path), (0, 'raw'))
        info = {'filename': path, 'format': fmt, 'virtual-size': size,
                'actual-size': size, 'dirty-flag': False}
        if fmt == 'qcow2':
            info['format-specific'] = {'type': 'qcow2',
                                       'data': {'compat': '1.1'}}
        elif fmt == 'vmdk':
            info['format-specific'] = {
                'type': 'vmdk', 'data': {'create-type': 'monolithicSparse'}}
        return imageutils.QemuImgInfo(json.dumps(info), format='json')

    def disk_usage(self, path):
        free = self.world.vector['env']['image_conversion_free_bytes']
        return shutil._ntuple_diskusage(free * 2, free, free)

    # shell commands (utils.execute and the driver's _execute)
    def execute(self, *cmd, **kwargs):
        cmd = [str(c) for c in cmd]
        while cmd and (cmd[0] == 'env' or '=' in cmd[0]):
            cmd = cmd[1:]
        if cmd[:2] == ['qemu-img', '--version']:
            return 'qemu-img version 8.2.2\n', ''
        if cmd[:2] == ['qemu-img', 'info']:
            info = self.qemu_img_info(cmd[-1])
            return json.dumps({'format': info.file_format,
                               'virtual-size': info.virtual_size}), ''
        if cmd[:2] == ['qemu-img', 'create']:
            size = cmd[-1]
            units = {'M': 1 << 20, 'G': 1 << 30, 'K': 1 << 10}
            nbytes = (int(size[:-1]) * units[size[-1]]
                      if size[-1] in units else int(size))
            self.files[os.path.abspath(cmd[-2])] = (nbytes, 'raw')
            return '', ''
        if cmd[:2] == ['qemu-img', 'convert']:
            src, dst = cmd[-2], cmd[-1]
            size, _fmt = self.files.get(os.path.abspath(src), (0, 'raw'))
            self.files[os.path.abspath(dst)] = (size, 'raw')
            if not dst.startswith('rbd:'):
                with open(dst, 'wb'):
                    pass
            return '', ''
        if cmd[:2] == ['rbd', 'import']:
            return self.rbd_import(cmd[2:])
        raise processutils.ProcessExecutionError(
            cmd=' '.join(cmd), exit_code=127,
            stderr='oracle: command not simulated')

    def rbd_import(self, args):
        valued = ('--pool', '--dest-pool', '--order', '--id', '--cluster',
                  '--conf', '--image-format', '--dest', '--image-feature')
        opts, positional = {}, []
        i = 0
        while i < len(args):
            if args[i] in valued:
                opts[args[i]] = args[i + 1]
                i += 2
            elif args[i].startswith('--'):
                i += 1
            else:
                positional.append(args[i])
                i += 1
        path, name = positional[0], positional[1]
        pool = opts.get('--dest-pool') or opts.get('--pool')
        size, _fmt = self.files.get(os.path.abspath(path), (0, 'raw'))
        cluster = self.world.cluster
        op = ['import', pool, name, size]
        if pool not in cluster.pools or cluster.lookup(pool, name):
            cluster.record(['failed', 'ProcessExecutionError'] + op)
            raise processutils.ProcessExecutionError(
                cmd='rbd import', exit_code=1,
                stderr='rbd: import failed: (17) File exists'
                if pool in cluster.pools else 'rbd: pool not found')
        order = int(opts.get('--order', 22))
        features = cluster.default_features or fake_ceph.RBD_FEATURE_LAYERING
        cluster.pools[pool][name] = fake_ceph.Img(pool, name, size, features,
                                                  1 << order)
        cluster.record(op)
        return '', ''


# --- the world -------------------------------------------------------------

class World(object):
    def __init__(self, case, vector):
        self.case = case
        self.vector = vector
        self.admin = cinder_context.get_admin_context()
        self.type_ids = {}
        self.cluster = fake_ceph.Cluster(vector['cluster'])
        self.edges = Edges(self)

    # helpers
    def image_spec(self, image_id):
        for spec in self.all_images():
            if spec['id'] == image_id:
                return spec
        raise exception.ImageNotFound(image_id=image_id)

    def all_images(self):
        v = self.vector
        return ([v['image']] if v['image'] else []) + v['images']

    def context_for(self, project_id, user_id):
        return cinder_context.RequestContext(
            user_id=user_id, project_id=project_id, is_admin=False,
            roles=['member', 'reader'], auth_token='oracle-token')

    # setup
    def build(self):
        self.configure()
        self.patch_edges()
        self.build_db()

    def configure(self):
        v = self.vector
        backend = v['backend']['name']
        case = self.case
        # Register every backend option in the backend's group, as Cinder's
        # Configuration does for the driver it loads.
        shared = CONF._groups[configuration.SHARED_CONF_GROUP]._opts
        configuration.Configuration(
            [o['opt'] for o in shared.values()], config_group=backend)
        case.override_config('volume_driver', RBD_DRIVER, group=backend)
        conv_dir = os.path.join(
            case.useFixture(fixtures.TempDir()).path, 'conversion')
        case.override_config('image_conversion_dir', conv_dir)
        for name, value in sorted(v['config'].items()):
            if name in shared:
                case.override_config(name, value, group=backend)
            elif name in CONF:
                case.override_config(name, value)
            else:
                raise vectors.VectorError('unknown Cinder option %r' % name)

    def patch_edges(self):
        case, edges = self.case, self.edges
        rados_mod, rbd_mod = fake_ceph.make_modules(self.cluster)
        case.patch('cinder.volume.drivers.rbd.rados', rados_mod)
        case.patch('cinder.volume.drivers.rbd.rbd', rbd_mod)
        client = fake_glance.FakeGlanceClient(
            self.all_images(), self.vector['glance']['location_api'])
        case.mock_object(glance.GlanceClientWrapper, '_create_onetime_client',
                         lambda *a, **k: client)
        case.mock_object(glance.GlanceClientWrapper, '_create_static_client',
                         lambda *a, **k: client)
        case.mock_object(image_utils, 'fetch', edges.fetch)
        case.mock_object(image_utils, 'fetch_to_volume_format',
                         edges.wrap_fetch_to_volume_format(
                             image_utils.fetch_to_volume_format))
        case.mock_object(image_utils, 'qemu_img_info', edges.qemu_img_info)
        case.mock_object(image_utils.shutil, 'disk_usage', edges.disk_usage)
        case.mock_object(image_utils.utils, 'execute', edges.execute)
        case.mock_object(castellan.key_manager, 'API', FakeKeyManager)
        case.mock_object(volume_driver, 'time', _NoSleep())
        case.mock_object(glance, 'time', _NoSleep())

    # database
    def build_db(self):
        engine = db_api.get_engine()
        sqlalchemy.event.listen(engine, 'connect', _case_sensitive_like)
        with engine.connect() as conn:
            conn.exec_driver_sql('PRAGMA case_sensitive_like = ON')
        db = self.vector['db']
        ctx = self.admin
        default = db_api.volume_type_get_by_name(ctx, '__DEFAULT__')
        self.type_ids['__DEFAULT__'] = default['id']
        for t in db['volume_types']:
            self.add_volume_type(t)
        for vol in db['volumes']:
            self.add_volume(vol)
        by_id = {x['id']: x for x in db['volumes']}
        for s in db['snapshots']:
            src = by_id[s['volume_id']]
            db_api.snapshot_create(ctx, {
                'id': s['id'], 'volume_id': s['volume_id'],
                'volume_size': s['volume_size'], 'status': s['status'],
                'project_id': s['project_id'], 'user_id': src['user_id'],
                'volume_type_id': self.type_id(src['volume_type']),
                'encryption_key_id': s['encryption_key_id'],
                'progress': '100%'})
        for s in db['services']:
            db_api.service_create(ctx, {
                'host': s['host'], 'binary': s['binary'],
                'topic': s['topic'],
                'availability_zone': s['availability_zone'],
                'disabled': s['disabled'], 'report_count': 0,
                'uuid': str(uuid.uuid4()),
                # A current service (an unset version reads as Liberty).
                'rpc_current_version': RPC_VERSIONS.get(
                    s['binary'], volume_rpcapi.VolumeAPI.RPC_API_VERSION),
                'object_current_version':
                    objects_base.OBJ_VERSIONS.get_current()})
        for e in db['image_cache']:
            if e['volume_id'] not in by_id:
                raise vectors.VectorError(
                    'image cache entry: volume %s is not a db.volumes row'
                    % e['volume_id'])
            entry = db_api.image_volume_cache_create(
                ctx, e['host'], e['cluster_name'], e['image_id'],
                vectors.parse_timestamp(e['image_updated_at']),
                e['volume_id'], e['size'])
            self.set_last_used(entry['id'],
                               vectors.parse_timestamp(e['last_used']))

    def set_last_used(self, entry_id, when):
        ctx = self.admin
        with db_api.main_context_manager.writer.using(ctx):
            ctx.session.query(models.ImageVolumeCacheEntry).filter_by(
                id=entry_id).update({'last_used': when})

    def add_volume_type(self, t):
        ctx = self.admin
        if t['name'] in self.type_ids:
            type_id = self.type_ids[t['name']]
            if t['extra_specs']:
                db_api.volume_type_extra_specs_update_or_create(
                    ctx, type_id, t['extra_specs'])
        else:
            values = {'name': t['name'], 'extra_specs': t['extra_specs']}
            if t['id']:
                values['id'] = t['id']
            type_id = db_api.volume_type_create(ctx, values)['id']
            self.type_ids[t['name']] = type_id
        if t['encryption'] is not None:
            enc = t['encryption']
            db_api.volume_type_encryption_create(ctx, type_id, {
                'provider': enc['provider'], 'cipher': enc['cipher'],
                'key_size': enc['key_size'],
                'control_location': enc['control_location']})

    def type_id(self, name):
        try:
            return self.type_ids[name]
        except KeyError:
            raise vectors.VectorError('unknown volume type %r' % name)

    def add_group(self, spec, project_id, user_id):
        """A group (FORMAT.md §6) on the vector's backend host.

        FORMAT.md gives only id/status/availability_zone; the group is made
        to support every volume type of the vector and to live on
        ``backend.host`` (Cinder needs a host to cast to).
        """
        ctx = self.admin
        gtype = db_api.group_type_create(ctx, {'name': 'oracle-group-type'})
        db_api.group_create(ctx, {
            'id': spec['id'], 'status': spec.get('status', 'available'),
            'availability_zone': spec.get('availability_zone'),
            'group_type_id': gtype['id'], 'project_id': project_id,
            'host': spec.get('host', self.vector['backend']['host']),
            'user_id': user_id, 'name': 'group-%s' % spec['id'],
            'volume_type_ids': sorted(set(self.type_ids.values()))})
        return objects.Group.get_by_id(ctx, spec['id'])

    def add_backup(self, spec, project_id, user_id):
        ctx = self.admin
        db_api.backup_create(ctx, {
            'id': spec['id'], 'status': spec.get('status', 'available'),
            'size': spec.get('size', 1), 'project_id': project_id,
            'user_id': user_id, 'volume_id': spec['id'],
            'display_name': 'backup-%s' % spec['id']})
        return objects.Backup.get_by_id(ctx, spec['id'])

    def add_volume(self, vol):
        values = {
            'id': vol['id'], 'host': vol['host'],
            'cluster_name': vol['cluster_name'],
            'project_id': vol['project_id'], 'user_id': vol['user_id'],
            'size': vol['size'], 'status': vol['status'],
            'volume_type_id': self.type_id(vol['volume_type']),
            'encryption_key_id': vol['encryption_key_id'],
            'availability_zone': vol['availability_zone'],
            'bootable': vol['bootable'], 'use_quota': vol['use_quota'],
            'metadata': dict(vol['metadata']),
            'admin_metadata': dict(vol['admin_metadata']),
            'created_at': vectors.parse_timestamp(vol['created_at']),
            'snapshot_id': vol['snapshot_id'],
            'source_volid': vol['source_volid'],
            'attach_status': 'detached',
            'display_name': 'vol-%s' % vol['id'],
        }
        if vol['name_id']:
            values['_name_id'] = vol['name_id']
        row = db_api.volume_create(self.admin, values)
        if vol['deleted']:
            # volume_create re-reads the row, which fails for a deleted one:
            # soft-delete it after the insert.
            ctx = self.admin
            with db_api.main_context_manager.writer.using(ctx):
                ctx.session.query(models.Volume).filter_by(
                    id=vol['id']).update(
                        {'deleted': True,
                         'deleted_at': values['created_at']})
        return row


def _case_sensitive_like(dbapi_conn, record):
    cursor = dbapi_conn.cursor()
    cursor.execute('PRAGMA case_sensitive_like = ON')
    cursor.close()
