//! A [`Driver`](crate::ports::Driver) on a real Ceph cluster: librbd and
//! librados through bindings generated at build time (feature `rbd`; needs
//! the librbd-dev, librados-dev and libclang-dev packages).
//!
//! * [`RbdDriver`] implements the port: cluster facts, pools, image facts
//!   with snapshots, protection, parents and children (trashed ones
//!   included), every [`RbdOp`](crate::rbd::RbdOp), and the import of
//!   downloaded data through librbd writes that skip runs of zeros.
//! * `ffi` is the small safe wrapper over the generated bindings: RAII
//!   handles for the connection, pool contexts and images, and errno values
//!   mapped to [`BackendErrorKind`](crate::error::BackendErrorKind)s. It is
//!   the only module with `unsafe` code.
//!
//! `tests/rbd_real.rs` runs the conformance vectors on a real cluster
//! through this driver and on the in-memory cluster and compares them;
//! `.ci/ceph.sh` starts a throwaway cluster for it.

mod blocking;
mod driver;
// The safe wrapper over the bindings, and the only `unsafe` code of the
// crate besides the SIMD byte scan of `location`. Public but hidden: the
// real-Ceph test harness uses it to make cephx users.
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod ffi;
#[allow(unsafe_code)]
mod sys;

pub use driver::{RbdConfig, RbdDriver, Watch};
