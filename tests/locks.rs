//! Issue 13.4 in one process: 32 concurrent creates of one image through
//! the image-volume cache, limited to 2 entries (by count, then by size).
//!
//! Without a lock every create looks the cache up before any has filled it,
//! so each misses and makes an entry of its own: the limit is overshot
//! (upstream serialises this with `@coordination.synchronized('{image_id}')`
//! on `_prepare_image_cache_entry`, `volume/flows/manager/create_volume.py:874`).
//! With [`LocalLocks`] the first create fills the cache under the lock and
//! the others find its entry: the limit holds, and so does everything
//! `support::problems` checks.
//!
//! The in-memory ports answer at once; `support::Yielding` makes every
//! call give way first, as real I/O does, so the creates interleave on a
//! single-threaded runtime the same way on every run.

#[path = "lock_support/mod.rs"]
mod support;

use std::sync::Arc;

use cinder_flow::conformance::World;
use cinder_flow::coordination::{Coordinator, LocalLocks, LockName};
use cinder_flow::memory::JournalEntry;
use cinder_flow::model::ImageId;
use cinder_flow::planner::Policy;
use cinder_flow::rbd::RbdOp;
use cinder_flow::shell::{self, ExecOptions};

use support::{Limit, Yielding, CREATES, IMAGE, LIMIT};

/// Runs the 32 creates at once; answers the world afterwards and the
/// cluster calls that took effect.
async fn run_all(limit: Limit, locks: Option<LocalLocks>) -> (Arc<World>, Vec<RbdOp>, Vec<String>) {
    let (world, requests) = support::world(limit);
    let world = Arc::new(world);
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests {
        let world = Arc::clone(&world);
        let locks = locks.clone();
        tasks.spawn(async move {
            let ports = Yielding(world.backends());
            let (policy, options) = (Policy::faithful(), ExecOptions::default());
            match locks {
                Some(locks) => shell::run_with(&locks, ports.backends(), &request, &world.config, &policy, &options)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", request.volume_id)),
                None => {
                    let (plan, _facts) = shell::plan(ports.backends(), &request, &world.config, &policy)
                        .await
                        .map_err(|e| format!("{}: {e}", request.volume_id))?;
                    shell::execute(&plan, ports.backends(), &options)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{}: {e}", request.volume_id))
                }
            }
        });
    }
    let mut errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("a create panicked") {
            errors.push(e);
        }
    }
    let applied = world
        .journal
        .entries()
        .into_iter()
        .filter_map(|e| match e {
            JournalEntry::Rbd { op, result: Ok(()) } => Some(op),
            _ => None,
        })
        .collect();
    (world, applied, errors)
}

fn image_entries(world: &World) -> usize {
    world.db.cache_entries().iter().filter(|e| e.image_id.as_str() == IMAGE).count()
}

#[tokio::test(flavor = "current_thread")]
async fn without_the_lock_32_creates_overshoot_the_cache_limit() {
    for limit in [Limit::Count, Limit::Size] {
        let (world, _applied, errors) = run_all(limit, None).await;
        assert!(errors.is_empty(), "{limit:?}: {errors:#?}");
        let entries = image_entries(&world);
        // Every create missed: one entry each, none evicted.
        assert_eq!(entries, CREATES, "{limit:?}: the race this lock exists for");
        assert!(entries as u64 > LIMIT);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn with_local_locks_32_creates_keep_the_cache_limit() {
    for limit in [Limit::Count, Limit::Size] {
        let locks = LocalLocks::new();
        let (world, applied, errors) = run_all(limit, Some(locks.clone())).await;
        assert!(errors.is_empty(), "{limit:?}: {errors:#?}");
        let problems = support::problems(&world.cluster.snapshot(), &world.db.contents(), &applied);
        assert!(problems.is_empty(), "{limit:?}: {problems:#?}");
        // The first create filled the cache, the 31 others cloned its entry.
        assert_eq!(image_entries(&world), 1, "{limit:?}");
        assert_eq!(locks.in_use(), 0, "every lock was released");
    }
}

/// The same creates on a multi-threaded runtime, through `shell::run` and
/// the process's lock table: the guarantee does not rest on one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_run_keeps_the_limit_on_several_threads() {
    let (world, requests) = support::world(Limit::Count);
    let world = Arc::new(world);
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests {
        let world = Arc::clone(&world);
        tasks.spawn(async move {
            let ports = Yielding(world.backends());
            shell::run(ports.backends(), &request, &world.config, &Policy::faithful(), &ExecOptions::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("no panic").expect("every create succeeds");
    }
    assert_eq!(image_entries(&world), 1);
}

/// The image lock is the one upstream names, so a create of another image
/// does not wait for it, and one of the same image does.
#[tokio::test(flavor = "current_thread")]
async fn the_image_lock_is_per_image() {
    let locks = LocalLocks::new();
    let held = locks.acquire(&LockName::image(&ImageId::from(IMAGE)).unwrap()).await.unwrap();
    assert_eq!(held.name().as_str(), format!("cinder-{IMAGE}"));
    let (world, mut requests) = support::world(Limit::Count);
    let request = requests.remove(0);
    let ports = Yielding(world.backends());
    let (policy, options) = (Policy::faithful(), ExecOptions::default());
    let blocked = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        shell::run_with(&locks, ports.backends(), &request, &world.config, &policy, &options),
    )
    .await;
    assert!(blocked.is_err(), "a create of the image waits while its lock is held elsewhere");
    assert_eq!(world.db.get_volume(&request.volume_id).unwrap().status.as_str(), "creating", "nothing was done");
    held.release().await.unwrap();
    shell::run_with(&locks, ports.backends(), &request, &world.config, &policy, &options).await.expect("then it runs");
    assert_eq!(locks.in_use(), 0);
}
