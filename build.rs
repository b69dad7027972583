//! Build script: with the `rbd` feature, generates Rust bindings for the
//! system's `rados/librados.h` and `rbd/librbd.h` (allowlisting `rados_*` and
//! `rbd_*`) and links librados and librbd. Without it, does nothing.

fn main() {
    #[cfg(feature = "rbd")]
    rbd::generate();
}

#[cfg(feature = "rbd")]
mod rbd {
    use std::path::PathBuf;

    pub(crate) fn generate() {
        println!("cargo:rerun-if-changed=build.rs");
        println!("cargo:rustc-link-lib=dylib=rbd");
        println!("cargo:rustc-link-lib=dylib=rados");
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        let bindings = bindgen::Builder::default()
            .header_contents("cinder_flow_rbd.h", "#include <rados/librados.h>\n#include <rbd/librbd.h>\n")
            .allowlist_function("rados_.*|rbd_.*")
            .allowlist_type("rados_.*|rbd_.*")
            .allowlist_var("RBD_.*|LIBRBD_.*|LIBRADOS_.*")
            // The crate's rust-version.
            .rust_target(bindgen::RustTarget::stable(80, 0).expect("a known Rust version"))
            .layout_tests(false)
            .generate_comments(false)
            .derive_default(true)
            .default_enum_style(bindgen::EnumVariation::Consts)
            .prepend_enum_name(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
            .generate()
            .unwrap_or_else(|e| {
                panic!(
                    "generating librbd bindings failed ({e}); the `rbd` feature needs the librbd-dev, \
                     librados-dev and libclang-dev packages"
                )
            });
        bindings.write_to_file(out.join("librbd_bindings.rs")).expect("writing the bindings");
    }
}
