//! cinder-flow: OpenStack Cinder's volume-creation decision flow as a pure,
//! explainable planner.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod conformance;
pub mod error;
pub mod explain;
pub mod facts;
pub mod location;
pub mod memory;
pub mod model;
pub mod plan;
pub mod planner;
pub mod ports;
pub mod rbd;
pub mod shell;
