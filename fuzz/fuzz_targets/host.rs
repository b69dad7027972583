//! Host parsing and SQL-LIKE host matching never panic or hang (inputs are
//! capped at the 255 characters Cinder's `host` column holds, times four).
#![no_main]

use cinder_flow::model::{Host, HostFilter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > 1024 {
        return;
    }
    let (value, field) = text.split_once('\n').unwrap_or((text, text));
    let filter = HostFilter::new(value);
    let matched = filter.matches(Some(field));
    if value == field {
        assert!(matched);
    }
    assert!(!filter.matches(None));
    let h = Host::new(field);
    assert!(h.as_str().starts_with(h.backend()));
    assert!(h.backend().starts_with(h.host()));
    let _ = h.pool();
    let _ = h.backend_name();
});
