//! Gathering the facts of an API request (`API.create`, or the extraction
//! alone) until the API planner decides.

use crate::config::Config;
use crate::facts::Facts;
use crate::planner::{ApiKind, ApiPlanner, ApiRequest, ApiResult};

use super::gather::{drive, Backends, GatherError};

/// Decides what upstream's API does with `request`: drives an
/// [`ApiPlanner`], fetching what it needs through the ports. Returns the
/// result and the facts it was made from (serialisable, so the decision can
/// be replayed with [`crate::planner::plan_api`] alone).
///
/// ```
/// use cinder_flow::config::Config;
/// use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
/// use cinder_flow::model::Service;
/// use cinder_flow::planner::{ApiKind, ApiRequest, RequestedSize};
/// use cinder_flow::rbd::Cluster;
/// use cinder_flow::shell::{api_request, Backends};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let driver = MemoryCluster::new(Cluster::new("fsid-1"));
/// let images = MemoryImageService::new();
/// let db = MemoryVolumeDb::new();
/// db.add_service(Service {
///     host: "hostA@ceph".into(),
///     binary: "cinder-volume".into(),
///     topic: "cinder-volume".into(),
///     availability_zone: "az1".into(),
///     disabled: false,
/// });
/// let backends = Backends { driver: &driver, images: &images, db: &db };
/// let mut request = ApiRequest::new("project-1", "user-1");
/// request.size = RequestedSize::from(2);
/// request.availability_zone = Some("az1".into());
/// let (result, _facts) = api_request(backends, &request, ApiKind::Create, &Config::default()).await.unwrap();
/// assert_eq!(result.volume().unwrap().availability_zone.as_deref(), Some("az1"));
/// # }
/// ```
pub async fn api_request(
    backends: Backends<'_>,
    request: &ApiRequest,
    kind: ApiKind,
    config: &Config,
) -> Result<(ApiResult, Facts), GatherError> {
    api_request_from(backends, request, kind, config, Facts::new()).await
}

/// [`api_request`], starting from facts already known.
pub async fn api_request_from(
    backends: Backends<'_>,
    request: &ApiRequest,
    kind: ApiKind,
    config: &Config,
    facts: Facts,
) -> Result<(ApiResult, Facts), GatherError> {
    let (result, facts) = drive(backends, ApiPlanner::borrowing(request, kind, config)?.with_facts(facts)).await?;
    tracing::info!(
        project_id = %request.project_id,
        outcome = %result.error().map_or("accepted", |e| e.name()),
        zones = ?result.extracted().map(|e| &e.availability_zones),
        "api request decided"
    );
    for d in &result.trace {
        tracing::debug!(stage = %d.stage, rule = %d.rule, "{}", d.verdict);
    }
    Ok((result, facts))
}
