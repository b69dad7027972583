//! Vector decoding, world building and running the operation never panic
//! or hang: bad vectors are typed errors, odd situations are plans.
#![no_main]

use cinder_flow::conformance::{build_world, parse_vectors, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(vectors) = parse_vectors(text) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for v in vectors.iter().take(4) {
        if build_world(v).is_err() {
            continue;
        }
        let _ = rt.block_on(run(v));
    }
});
