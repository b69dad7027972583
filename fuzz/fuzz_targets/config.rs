//! cinder.conf loading and option setting never panic; errors are typed.
#![no_main]

use cinder_flow::config::{CinderConf, Config, OPTIONS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(conf) = CinderConf::parse(text) {
        if let Ok(loaded) = conf.load(None) {
            loaded.config.validate().expect("a loaded configuration is valid");
        }
        let _ = conf.load(Some("ceph"));
    }
    // Every option's text parser, with the input as the value.
    let mut c = Config::default();
    let idx = data.first().map(|b| *b as usize % OPTIONS.len()).unwrap_or(0);
    if c.set_from_str(OPTIONS[idx].name, text).is_ok() {
        c.validate().expect("set keeps the configuration valid");
    }
});
