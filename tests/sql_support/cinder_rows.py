"""Cinder's own DB API on both sides of the SQL backend's interop test.

    python cinder_rows.py write CINDER_CONF SPEC_JSON
        writes the rows SPEC_JSON describes with Cinder 29's DB API
        (cinder.db.api), as cinder-api and cinder-volume would;
    python cinder_rows.py read CINDER_CONF SPEC_JSON
        reads the rows SPEC_JSON names with Cinder's objects and DB API and
        prints what Cinder sees, as JSON, for the Rust side to check.

Run with the venv that has cinder==29.0.0 (tests/sql_support/mod.rs).
"""

import datetime
import json
import sys

from oslo_config import cfg

from cinder.common import config  # noqa: F401  (registers the options)
from cinder import context
from cinder import exception
from cinder.db import api as db_api
from cinder import objects
from cinder.volume import volume_types


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")


def iso(d):
    return d.strftime("%Y-%m-%dT%H:%M:%SZ") if d else None


def write(ctx, spec):
    t = spec["type"]
    db_api.volume_type_create(ctx, {"id": t["id"], "name": t["name"], "extra_specs": t["extra_specs"]})
    db_api.volume_type_encryption_create(ctx, t["id"], t["encryption"])
    qos = db_api.qos_specs_create(ctx, {"name": t["qos_name"], "consumer": "back-end", "specs": t["qos_specs"]})
    db_api.qos_specs_associate(ctx, qos["id"], t["id"])
    for v in spec["volumes"]:
        values = {
            "id": v["id"],
            "size": v["size"],
            "host": v["host"],
            "cluster_name": v["cluster_name"],
            "project_id": v["project_id"],
            "user_id": v["user_id"],
            "status": v["status"],
            "availability_zone": v["availability_zone"],
            "bootable": v["bootable"],
            "use_quota": v["use_quota"],
            "volume_type_id": t["id"],
            "encryption_key_id": v["encryption_key_id"],
            "created_at": ts(v["created_at"]),
            "metadata": v["metadata"],
            "admin_metadata": v["admin_metadata"],
        }
        db_api.volume_create(ctx, values)
        if v["deleted"]:
            db_api.volume_destroy(ctx, v["id"])
    for s in spec["snapshots"]:
        db_api.snapshot_create(ctx, {
            "id": s["id"],
            "volume_id": s["volume_id"],
            "volume_size": s["volume_size"],
            "status": s["status"],
            "project_id": s["project_id"],
            "volume_type_id": t["id"],
        })
    for s in spec["services"]:
        db_api.service_create(ctx, dict(s))
    db_api.project_default_volume_type_set(ctx, t["id"], spec["project_id"])
    c = spec["cache"]
    db_api.image_volume_cache_create(ctx, c["host"], c["cluster_name"], c["image_id"], ts(c["image_updated_at"]),
                                 c["volume_id"], c["size"])
    db_api.volume_glance_metadata_bulk_create(ctx, spec["glance"]["volume_id"], spec["glance"]["metadata"])


def read(ctx, spec):
    out = {"volumes": {}, "glance": {}}
    for v in spec["volumes"]:
        try:
            vol = objects.Volume.get_by_id(ctx, v["id"])
        except Exception as e:  # VolumeNotFound for deleted rows
            out["volumes"][v["id"]] = type(e).__name__
            continue
        out["volumes"][v["id"]] = {
            "size": vol.size,
            "host": vol.host,
            "cluster_name": vol.cluster_name,
            "project_id": vol.project_id,
            "user_id": vol.user_id,
            "status": vol.status,
            "attach_status": vol.attach_status,
            "availability_zone": vol.availability_zone,
            "bootable": vol.bootable,
            "use_quota": vol.use_quota,
            "volume_type": vol.volume_type.name,
            "encryption_key_id": vol.encryption_key_id,
            "created_at": iso(vol.created_at),
            "metadata": dict(vol.metadata),
            "admin_metadata": dict(vol.admin_metadata),
        }
        try:
            rows = db_api.volume_glance_metadata_get(ctx, v["id"])
        except exception.GlanceMetadataNotFound:
            rows = []
        out["glance"][v["id"]] = {m["key"]: m["value"] for m in rows}
    t = volume_types.get_by_name_or_id(ctx, spec["type"]["name"])
    enc = db_api.volume_type_encryption_get(ctx, t["id"])
    qos = volume_types.get_volume_type_qos_specs(t["id"])["qos_specs"]
    out["type"] = {
        "id": t["id"],
        "name": t["name"],
        "extra_specs": t["extra_specs"],
        "encryption": {k: enc[k] for k in ("provider", "cipher", "key_size", "control_location")} if enc else None,
        "qos_specs": qos["specs"] if qos else None,
    }
    out["snapshots"] = {}
    for s in spec["snapshots"]:
        snap = objects.Snapshot.get_by_id(ctx, s["id"])
        out["snapshots"][s["id"]] = {"volume_id": snap.volume_id, "volume_size": snap.volume_size,
                                     "status": snap.status, "project_id": snap.project_id}
    out["services"] = sorted(
        [{"host": s.host, "binary": s.binary, "topic": s.topic, "availability_zone": s.availability_zone,
          "disabled": s.disabled} for s in objects.ServiceList.get_all(ctx)],
        key=lambda s: s["host"])
    default = db_api.project_default_volume_type_get(ctx, spec["project_id"])
    out["default_type"] = default.volume_type_id if default else None
    with db_api.main_context_manager.reader.using(ctx):
        usage = {}
        for name in ("_sync_volumes", "_sync_snapshots", "_sync_gigabytes"):
            usage.update(db_api.QUOTA_SYNC_FUNCTIONS[name](ctx, spec["project_id"]))
    # SUM() is a Decimal on MySQL.
    out["usage"] = {k: int(v) for k, v in usage.items()}
    out["cache"] = [
        {"image_id": e.image_id, "host": e.host, "cluster_name": e.cluster_name, "volume_id": e.volume_id,
         "size": e.size, "image_updated_at": iso(e.image_updated_at)}
        for e in db_api.image_volume_cache_get_all(ctx, host=spec["cache"]["host"])]
    out["on_backend"] = sorted(v.id for v in objects.VolumeList.get_all(ctx, filters={"host": spec["backend"]}))
    return out


def main():
    mode, conf, spec_file = sys.argv[1:4]
    cfg.CONF(["--config-file", conf], project="cinder")
    objects.register_all()
    ctx = context.get_admin_context()
    with open(spec_file) as f:
        spec = json.load(f)
    if mode == "write":
        write(ctx, spec)
        print("{}")
    else:
        print(json.dumps(read(ctx, spec), sort_keys=True))


if __name__ == "__main__":
    main()
