"""A stand-in for python-glanceclient's v2 client (FORMAT.md §7).

Cinder's real ``GlanceImageService`` (``show``, ``get_location``,
``download``) runs on top of this client; only the HTTP layer is replaced.

* ``images.get(id)``: the image as Glance's ``GET /v2/images/{id}`` shows it:
  core attributes, custom properties at the top level, ``direct_url`` (and
  ``locations``) only when ``direct_url`` is non-null.
* ``images.get_image_locations(id)`` (the service-only location API): the
  image's ``locations`` list when ``glance.location_api == "new"``; HTTP 501
  (``HTTPNotImplemented``) when it is ``"legacy"``.
* ``images.data(id)``: no data is moved (downloads are simulated by the
  world's edge functions, see world.py).
* ``schemas.get('image')``: glanceclient's built-in image schema, which tells
  core attributes from custom properties.
"""

from glanceclient import exc as glance_exc
from glanceclient.v2 import image_schema
from glanceclient.v2 import schemas

CORE_ATTRIBUTES = ('id', 'owner', 'status', 'visibility', 'container_format',
                   'disk_format', 'size', 'virtual_size', 'min_disk',
                   'min_ram', 'created_at', 'updated_at')


class GlanceImage(dict):
    """Like glanceclient's warlock model: a dict with attribute access."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key)


class _Images(object):
    def __init__(self, client):
        self._client = client

    def _find(self, image_id):
        for image in self._client.images_spec:
            if image['id'] == str(image_id):
                return image
        raise glance_exc.HTTPNotFound('image %s not found' % image_id)

    def get(self, image_id):
        spec = self._find(image_id)
        body = {'name': spec['id'], 'protected': False, 'tags': []}
        for key in CORE_ATTRIBUTES:
            body[key] = spec[key]
        if spec['direct_url'] is not None:
            body['direct_url'] = spec['direct_url']
            body['locations'] = list(spec['locations'] or [])
        body.update(spec['properties'])
        return GlanceImage(body)

    def get_image_locations(self, image_id):
        if self._client.location_api == 'legacy':
            raise glance_exc.HTTPNotImplemented(
                'This operation is not supported by Glance.')
        spec = self._find(image_id)
        return [dict(loc) for loc in (spec['locations'] or [])]

    def data(self, image_id, *args, **kwargs):
        self._find(image_id)
        return iter([b''])

    def list(self, *args, **kwargs):
        return [self.get(spec['id']) for spec in self._client.images_spec]


class _ImageMembers(object):
    def list(self, image_id):
        return []


class _Schemas(object):
    def get(self, schema_name):
        if schema_name != 'image':
            raise glance_exc.HTTPNotFound(schema_name)
        return schemas.Schema(image_schema._BASE_SCHEMA)


class _HttpClient(object):
    additional_headers = {}


class FakeGlanceClient(object):
    """The object Cinder's GlanceClientWrapper would get from glanceclient."""

    def __init__(self, images, location_api):
        self.images_spec = images
        self.location_api = location_api
        self.images = _Images(self)
        self.image_members = _ImageMembers()
        self.schemas = _Schemas()
        self.http_client = _HttpClient()
