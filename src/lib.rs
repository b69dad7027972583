//! cinder-flow: OpenStack Cinder's volume-creation decision flow as a pure,
//! explainable planner.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod error;
pub mod model;
pub mod rbd;
