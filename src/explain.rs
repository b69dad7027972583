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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::error::BackendErrorKind;
    use crate::model::{Bytes, LocationEntry};
    use crate::plan::{Action, DbWrite, DownloadExpectation, ErrorClass, Operation, Step};
    use crate::rbd::{ImageSpec, RbdOp};

    /// A plan whose every user-supplied string is one of `s`.
    fn plan_of(s: &[String]) -> Plan {
        let at = |i: usize| s[i % s.len()].clone();
        let step = |action| Step { action, expect: Expect::Ok, undo: Vec::new(), undoable: true };
        let decision = |subject, verdict| Decision { stage: Stage::DriverClone, subject, verdict };
        Plan {
            operation: Operation::CreateFromImage { image_id: at(0).into() },
            volume_id: at(1).into(),
            path: None,
            source: Some(Source::RbdLocation { url: at(2), pool: at(3), image: at(4), snap: at(5) }),
            steps: vec![
                step(Action::Rbd {
                    op: RbdOp::Create {
                        image: ImageSpec::new(at(6), at(7)),
                        size: Bytes(1 << 30),
                        order: 22,
                        features: 1,
                    },
                }),
                step(Action::DownloadImage {
                    image_id: at(8).into(),
                    expect: DownloadExpectation { size: Bytes(5), disk_format: at(9) },
                }),
                step(Action::Db {
                    write: DbWrite::SetGlanceMetadata {
                        volume_id: at(10).into(),
                        metadata: BTreeMap::from([(at(11), at(12))]),
                    },
                }),
                step(Action::Db {
                    write: DbWrite::UpdateSnapshot { snapshot_id: at(13).into(), status: at(14), previous: at(15) },
                }),
            ],
            outcome: Outcome::Failure { error: ErrorClass::ImageUnacceptable, message: at(16) },
            trace: vec![
                decision(Subject::Location { index: 0 }, Verdict::Rejected { because: Reason::NotRbd }),
                decision(Subject::Locations { first: 0, last: 1 }, Verdict::Rejected { because: Reason::NotRbd }),
                decision(Subject::DirectUrl { url: at(17).into() }, Verdict::Chosen),
                decision(
                    Subject::Volume { volume_id: at(18).into() },
                    Verdict::Noted { what: Reason::Note { text: at(19) } },
                ),
                decision(
                    Subject::Path,
                    Verdict::Rejected {
                        because: Reason::OtherHost(Box::new(HostMismatch {
                            candidate: Some(at(20).as_str().into()),
                            wanted: at(21).as_str().into(),
                        })),
                    },
                ),
                decision(
                    Subject::Path,
                    Verdict::Skipped { because: Reason::CallFails { call: at(22), error: BackendErrorKind::NotFound } },
                ),
                decision(Subject::Path, Verdict::Noted { what: Reason::UnparseableUrl { message: at(23) } }),
            ],
            locations: vec![LocationEntry::url(at(24)), LocationEntry::url(at(25))].into(),
            cache_deletions: vec![at(26).into()],
        }
    }

    proptest! {
        // CI raises the case count with CINDER_FLOW_CASES.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("CINDER_FLOW_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(0).max(256),
            ..ProptestConfig::default()
        })]

        /// Whatever users put in URLs, names, ids and messages, the
        /// rendering has one line per fact, step and decision and no raw
        /// character that could fake a line or a terminal sequence.
        #[test]
        fn rendered_plans_cannot_be_forged(strings in prop::collection::vec(any::<String>(), 26)) {
            let plan = plan_of(&strings);
            let text = render_plan(&plan);
            prop_assert!(!text.chars().any(|c| c != '\n' && crate::escape::needs_escape(c)), "{text:?}");
            // Header, source, outcome, "Steps:", the steps, "Why:", the trace.
            prop_assert_eq!(text.lines().count(), 3 + 1 + plan.steps.len() + 1 + plan.trace.len());
            for d in plan.explained() {
                prop_assert!(!d.to_string().chars().any(crate::escape::needs_escape));
            }
            for s in &plan.steps {
                prop_assert!(!s.action.to_string().chars().any(crate::escape::needs_escape));
                if let Action::Db { write } = &s.action {
                    prop_assert!(!write.to_string().chars().any(crate::escape::needs_escape));
                }
            }
        }
    }
}
