//! The decision trace and how it reads: every alternative the planner
//! considered, what it decided about it and why, in types a program can
//! match on ([`Decision`], [`Reason`], ...) and words an operator can read
//! ([`render_plan`]).

use std::fmt::Write as _;

use crate::plan::{Expect, Outcome, Plan, Source};

pub use crate::trace::{Decision, Formats, HostMismatch, OwnerMismatch, Reason, Stage, StaleEntry, Subject, Verdict};

/// Renders a plan for an operator: what will happen, how it ends, and every
/// decision with its reason.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan for {} of volume {}", plan.operation.name(), plan.volume_id);
    match (&plan.path, &plan.source) {
        (Some(p), Some(s)) => {
            let _ = writeln!(out, "  path:    {p}");
            let _ = writeln!(out, "  source:  {}", source_words(s));
        }
        (Some(p), None) => {
            let _ = writeln!(out, "  path:    {p}");
        }
        (None, Some(s)) => {
            let _ = writeln!(out, "  source:  {}", source_words(s));
        }
        (None, None) => {}
    }
    match &plan.outcome {
        Outcome::Success => {
            let _ = writeln!(out, "  outcome: succeeds");
        }
        Outcome::Failure { error, message } => {
            let _ = writeln!(out, "  outcome: fails with {error}: {message}");
        }
    }
    if plan.steps.is_empty() {
        let _ = writeln!(out, "Steps: none");
    } else {
        let _ = writeln!(out, "Steps:");
        for (i, s) in plan.steps.iter().enumerate() {
            match s.expect {
                Expect::Ok => {
                    let _ = writeln!(out, "  {:>2}. {}", i + 1, s.action);
                }
                Expect::Fail(k) => {
                    let _ =
                        writeln!(out, "  {:>2}. {}  -- expected to fail ({k}), as upstream handles", i + 1, s.action);
                }
            }
        }
    }
    if !plan.trace.is_empty() {
        let _ = writeln!(out, "Why:");
        for d in plan.explained() {
            let _ = writeln!(out, "  - {d}");
        }
    }
    out
}

fn source_words(s: &Source) -> String {
    match s {
        Source::RbdLocation { url, .. } => format!("Glance's RBD snapshot {url}"),
        Source::Volume { volume_id } => format!("volume {volume_id}"),
        Source::Cache { volume_id } => format!("cached image volume {volume_id}"),
        Source::Glance { image_id } => format!("image {image_id} downloaded from Glance"),
        Source::Snapshot { snapshot_id } => format!("snapshot {snapshot_id}"),
    }
}
