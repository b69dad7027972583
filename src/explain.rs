//! The decision trace and how it reads: every alternative the planner
//! considered, what it decided about it and why, in types a program can
//! match on ([`Decision`], [`Reason`], ...) and words an operator can read
//! ([`render_plan`]).

use std::fmt;

use crate::plan::{Expect, Outcome, Plan, Source};

pub use crate::escape::Escaped;
pub use crate::trace::{Decision, Formats, HostMismatch, OwnerMismatch, Reason, Stage, StaleEntry, Subject, Verdict};

/// Renders a plan for an operator: what will happen, how it ends, and every
/// decision with its reason.
///
/// One line per fact, step and decision: the user data the lines show
/// (URLs, names, ids, messages) is escaped (see [`Escaped`]), so no value
/// can start a line of its own or send a terminal sequence.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let mut line = |args: fmt::Arguments<'_>| {
        // Everything but the line's end goes through the escaper.
        let _ = crate::escape::Escaper::new(&mut out).write_fmt(args);
        out.push('\n');
    };
    line(format_args!("Plan for {} of volume {}", plan.operation.name(), plan.volume_id));
    if let Some(p) = &plan.path {
        line(format_args!("  path:    {p}"));
    }
    if let Some(s) = &plan.source {
        line(format_args!("  source:  {}", source_words(s)));
    }
    match &plan.outcome {
        Outcome::Success => line(format_args!("  outcome: succeeds")),
        Outcome::Failure { error, message } => line(format_args!("  outcome: fails with {error}: {message}")),
    }
    if plan.steps.is_empty() {
        line(format_args!("Steps: none"));
    } else {
        line(format_args!("Steps:"));
        for (i, s) in plan.steps.iter().enumerate() {
            match s.expect {
                Expect::Ok => line(format_args!("  {:>2}. {}", i + 1, s.action)),
                Expect::Fail(k) => {
                    line(format_args!("  {:>2}. {}  -- expected to fail ({k}), as upstream handles", i + 1, s.action))
                }
            }
        }
    }
    if !plan.trace.is_empty() {
        line(format_args!("Why:"));
        for d in plan.explained() {
            line(format_args!("  - {d}"));
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
