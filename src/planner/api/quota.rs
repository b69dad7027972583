//! The quota reservation (API-27, `QuotaReserveTask`) with Cinder's default
//! quota class: 10 volumes and 1000 GiB per project, no per-volume limit.

use super::result::{ApiStage, ApiVerdict, ExtractedRequest};
use super::{fail, Run, Stop, R};
use crate::error::ErrorClass;
use crate::facts::{Need, ProjectUsage};
use crate::pyvalue::PyInt;

/// `quota_volumes`: volumes per project (Cinder's default quota class).
pub(crate) const QUOTA_VOLUMES: i64 = 10;
/// `quota_gigabytes`: GiB of volumes and snapshots per project.
pub(crate) const QUOTA_GIGABYTES: i64 = 1000;
/// `per_volume_size_limit` (`-1`: none).
pub(crate) const PER_VOLUME_SIZE_LIMIT: i64 = -1;
/// The largest usage `quota_usages` can hold (32-bit columns); more is a
/// `QuotaUsageOverflow`.
pub(crate) const QUOTA_USAGE_MAX: i64 = 2_147_483_647;

impl Run<'_> {
    pub(super) fn reserve_quota(&mut self, extracted: &ExtractedRequest) -> R<()> {
        let stage = ApiStage::Quota;
        let size = &extracted.size;
        if PER_VOLUME_SIZE_LIMIT >= 0 && *size > PyInt::from(PER_VOLUME_SIZE_LIMIT) {
            return fail(
                stage,
                27,
                ErrorClass::VolumeSizeExceedsLimit,
                format!("Requested volume size {size}G is larger than maximum allowed limit {PER_VOLUME_SIZE_LIMIT}G."),
            );
        }
        let project = &self.req.project_id;
        let usage: ProjectUsage = match self.facts.project_usage.get(project) {
            Some(u) => *u,
            None => return Err(Stop::Need(vec![Need::ProjectUsage { project_id: project.clone() }])),
        };
        let volumes_in_use = i128::from(usage.volumes);
        let gigabytes_in_use = i128::from(usage.volume_gigabytes) + i128::from(usage.snapshot_gigabytes);
        let with_request = |in_use: i128| match size.to_i128() {
            Some(s) => PyInt::from(in_use.saturating_add(s)),
            None => size.clone(),
        };
        // The usage columns are 32-bit: checked before the limits.
        let max = PyInt::from(QUOTA_USAGE_MAX);
        if PyInt::from(volumes_in_use + 1) > max || with_request(gigabytes_in_use) > max {
            return fail(
                stage,
                27,
                ErrorClass::QuotaUsageOverflow,
                format!(
                    "Quota usage would overflow for resources: ['gigabytes', 'gigabytes_{}']. The requested operation \
                     would exceed the maximum allowed value ({QUOTA_USAGE_MAX}) for quota tracking.",
                    extracted.volume_type.name
                ),
            );
        }
        if QUOTA_VOLUMES >= 0 && i128::from(QUOTA_VOLUMES) < volumes_in_use + 1 {
            return fail(
                stage,
                27,
                ErrorClass::VolumeLimitExceeded,
                format!("Maximum number of volumes allowed ({QUOTA_VOLUMES}) exceeded for quota 'volumes'."),
            );
        }
        if QUOTA_GIGABYTES >= 0 && with_request(gigabytes_in_use) > PyInt::from(QUOTA_GIGABYTES) {
            return fail(
                stage,
                27,
                ErrorClass::VolumeSizeExceedsAvailableQuota,
                format!(
                    "Requested volume or snapshot exceeds allowed gigabytes quota. Requested {size}G, quota is \
                     {QUOTA_GIGABYTES}G and {gigabytes_in_use}G has been consumed."
                ),
            );
        }
        self.note(
            stage,
            27,
            ApiVerdict::QuotaFits {
                volumes_in_use: usage.volumes,
                gigabytes_in_use: usage.volume_gigabytes.saturating_add(usage.snapshot_gigabytes),
            },
        );
        Ok(())
    }
}
