//! Plain data: ids, sizes, hosts, database rows, Glance images.
//!
//! Everything here is serde-serialisable and free of behaviour beyond
//! upstream's own helpers (`extract_host`, `Volume.name`, host matching).

mod host;
mod ids;
mod image;
mod name;
mod size;
mod timestamp;
mod volume;

pub use host::{check_host_len, Host, HostFilter, HostTooLong, MatchLevel, HOST_MAX_CHARS};
pub use ids::{ImageId, ProjectId, SnapshotId, UserId, VolumeId};
pub use image::{Image, ImageLocation, LocationApi, LocationEntry};
pub use name::Name;
pub use size::{Bytes, GiB, SizeOverflow, GIB, MIB};
pub use timestamp::{Timestamp, TimestampError};
pub use volume::{CacheEntry, Encryption, Service, Snapshot, Volume, VolumeStatus, VolumeType, DEFAULT_VOLUME_TYPE};
