//! Location parsing never panics, and the fast paths agree with the full
//! parsers; RBD locations survive a render/parse round trip.
#![no_main]

use cinder_flow::internals::is_uuid_like;
use cinder_flow::location::{may_be_cinder, rbd_fsid, CinderLocation, CinderLocationError, ImageLocation, RbdLocation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else { return };
    let rbd = RbdLocation::parse(url);
    assert_eq!(rbd_fsid(url).map(|f| f.into_owned()), rbd.as_ref().map(|l| l.fsid.clone()).map_err(Clone::clone));
    if let Ok(loc) = &rbd {
        assert_eq!(RbdLocation::parse(&loc.to_string()).as_ref(), Ok(loc));
    }
    let cinder = CinderLocation::parse(url);
    assert_eq!(may_be_cinder(url), !matches!(cinder, Err(CinderLocationError::NotCinder { .. })));
    if let Ok(loc) = &cinder {
        assert!(is_uuid_like(loc.volume_id.as_str()));
    }
    let _ = ImageLocation::classify(url);
});
