//! A testing kit (cargo feature `testing`): proptest strategies for the
//! crate's types and whole situations ([`strategies`]), and a conformance
//! suite for [`Driver`](crate::ports::Driver) implementations
//! ([`driver_suite`]), and ones for [`ImageService`](crate::ports::ImageService)
//! ([`image_suite`]) and [`VolumeDb`](crate::ports::VolumeDb)
//! ([`db_suite`]) implementations.
//!
//! A driver author runs the suite against a throwaway pool:
//!
//! ```text
//! [dev-dependencies]
//! cinder-flow = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_driver_behaves_like_librbd() {
//!     let driver = MyDriver::connect(/* ... */).await;
//!     let failures = cinder_flow::testing::driver_suite::run_all(&driver, "scratch-pool", "run-1").await;
//!     assert!(failures.is_empty(), "{failures:#?}");
//! }
//! ```
//!
//! These items are for tests; their details may change between minor
//! versions.

pub mod db_suite;
pub mod driver_suite;
pub mod image_suite;
pub mod strategies;
