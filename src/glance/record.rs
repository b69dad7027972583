//! Glance's JSON image record as Cinder reads it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::{Bytes, GiB, Image, LocationEntry, Timestamp};

/// The base properties of Glance 33's image schema (`/v2/schemas/image`,
/// `glance/api/v2/images.py: get_base_properties`). Cinder's
/// `_translate_from_glance` keeps these as attributes and moves every other
/// top-level key into `properties`.
pub(crate) const BASE_PROPERTIES: [&str; 25] = [
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "direct_url",
    "min_ram",
    "min_disk",
    "self",
    "file",
    "stores",
    "schema",
    "locations",
];

/// An image record from `GET /v2/images/{id}`.
pub(crate) fn parse_image(doc: &Value) -> Result<Image, String> {
    let obj = doc.as_object().ok_or("the image is not a JSON object")?;
    let string = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{k} is {other}, not a string")),
        }
    };
    let uint = |k: &str| -> Result<Option<u64>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("{k} is {v}, not a non-negative integer")),
        }
    };
    let time = |k: &str| -> Result<Timestamp, String> {
        let s = string(k)?.ok_or_else(|| format!("{k} is missing"))?;
        s.parse().map_err(|e| format!("{k}: {e}"))
    };
    let id = string("id")?.ok_or("id is missing")?;
    let locations = match obj.get("locations") {
        None => None,
        Some(v) => Some(parse_locations(v)?),
    };
    let properties: BTreeMap<String, Value> = obj
        .iter()
        .filter(|(k, _)| !BASE_PROPERTIES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Image {
        id: id.into(),
        owner: string("owner")?.map(Into::into),
        status: string("status")?.ok_or("status is missing")?,
        visibility: string("visibility")?.unwrap_or_default(),
        container_format: string("container_format")?,
        disk_format: string("disk_format")?,
        size: uint("size")?.map(Bytes),
        virtual_size: uint("virtual_size")?.map(Bytes),
        min_disk: GiB(uint("min_disk")?.unwrap_or(0)),
        min_ram: uint("min_ram")?.unwrap_or(0),
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        direct_url: string("direct_url")?,
        locations,
        properties,
    })
}

/// A location list (`locations` of the image, or the body of `GET
/// /v2/images/{id}/locations`). Entries keep their order; Glance's
/// internal `id`/`status` keys are not part of an entry.
pub(crate) fn parse_locations(v: &Value) -> Result<Arc<[LocationEntry]>, String> {
    let items = v.as_array().ok_or("locations is not a list")?;
    items
        .iter()
        .map(|item| {
            let o = item.as_object().ok_or("a location is not an object")?;
            let url = match o.get("url") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(Arc::<str>::from(s.as_str())),
                Some(other) => return Err(format!("a location url is {other}")),
            };
            let metadata = match o.get("metadata") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                Some(other) => return Err(format!("location metadata is {other}")),
            };
            Ok(LocationEntry { url, metadata })
        })
        .collect()
}

/// The body of `POST /v2/images` for a record: the attributes a client may
/// set, custom properties at the top level (as strings: Glance keeps extra
/// properties as strings).
pub(crate) fn create_body(image: &Image) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), Value::String(image.id.as_str().to_owned()));
    o.insert("visibility".into(), Value::String(image.visibility.clone()));
    o.insert("owner".into(), image.owner.as_ref().map_or(Value::Null, |p| Value::String(p.as_str().to_owned())));
    if let Some(f) = &image.container_format {
        o.insert("container_format".into(), Value::String(f.clone()));
    }
    if let Some(f) = &image.disk_format {
        o.insert("disk_format".into(), Value::String(f.clone()));
    }
    o.insert("min_disk".into(), Value::from(image.min_disk.0));
    o.insert("min_ram".into(), Value::from(image.min_ram));
    for (k, v) in &image.properties {
        let v = match v {
            Value::String(s) => Value::String(s.clone()),
            other => Value::String(other.to_string()),
        };
        o.insert(k.clone(), v);
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn glance_33_record() -> Value {
        // As Glance 33 answers for an image with one cinder location.
        json!({"name": null, "disk_format": "raw", "container_format": "bare", "visibility": "private",
               "size": 1073741824, "virtual_size": null, "status": "active", "checksum": null,
               "protected": false, "min_ram": 0, "min_disk": 0, "owner": null, "os_hidden": false,
               "os_hash_algo": null, "os_hash_value": null, "id": "aaaaaaaa-0000-4000-8000-000000000002",
               "created_at": "2026-12-07T20:13:55Z", "updated_at": "2026-12-07T20:13:55Z",
               "locations": [{"url": "cinder://22222222-2222-4222-8222-222222222221", "metadata": {}}],
               "tags": [], "self": "/v2/images/aaaaaaaa-0000-4000-8000-000000000002",
               "file": "/v2/images/aaaaaaaa-0000-4000-8000-000000000002/file", "schema": "/v2/schemas/image",
               "cinder_img_volume_type": "fast"})
    }

    #[test]
    fn a_glance_record_reads_as_cinder_reads_it() {
        let image = parse_image(&glance_33_record()).unwrap();
        assert_eq!(image.id.as_str(), "aaaaaaaa-0000-4000-8000-000000000002");
        assert_eq!(image.owner, None);
        assert_eq!(image.size, Some(Bytes(1 << 30)));
        assert_eq!(image.virtual_size, None);
        assert_eq!(image.direct_url, None);
        let locations = image.locations.as_deref().unwrap();
        assert_eq!(locations, [LocationEntry::url("cinder://22222222-2222-4222-8222-222222222221")]);
        // Only the custom property is a property; base ones are not.
        assert_eq!(image.properties.keys().collect::<Vec<_>>(), ["cinder_img_volume_type"]);
        assert_eq!(image.updated_at, "2026-12-07T20:13:55Z".parse().unwrap());
    }

    #[test]
    fn hidden_locations_are_none_and_bad_fields_are_errors() {
        let mut doc = glance_33_record();
        doc.as_object_mut().unwrap().remove("locations");
        assert_eq!(parse_image(&doc).unwrap().locations, None);
        doc["size"] = json!(-1);
        assert!(parse_image(&doc).unwrap_err().contains("size"));
        assert!(parse_image(&json!([])).is_err());
        assert!(parse_locations(&json!([{"url": 3}])).is_err());
    }

    #[test]
    fn the_create_body_has_only_settable_fields() {
        let image = parse_image(&glance_33_record()).unwrap();
        let body = create_body(&image);
        for k in ["status", "size", "virtual_size", "created_at", "updated_at", "locations", "direct_url"] {
            assert!(body.get(k).is_none(), "{k}");
        }
        assert_eq!(body["cinder_img_volume_type"], "fast");
        assert_eq!(body["owner"], Value::Null);
    }
}
