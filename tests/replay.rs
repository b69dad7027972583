//! Facts replay: the facts a decision was made from round-trip through
//! JSON, and planning again from the copy gives the same decision. The
//! docs promise that a decision can be captured in production and replayed
//! offline; this is the test of that promise.
//!
//! * over the testing kit's generated create-from-image situations
//!   (`CINDER_FLOW_CASES` cases; CI runs 10,000);
//! * over every conformance vector (create, delete, snapshot, clone, API).
#![cfg(feature = "testing")]

mod common;

use std::path::Path;

use common::cases;
use proptest::prelude::*;

use cinder_flow::conformance::{build_world, read_file, request_of, vector_files, VectorRequest};
use cinder_flow::planner::{plan, plan_api, ApiResult, Planning, Policy};
use cinder_flow::shell;
use cinder_flow::testing::strategies::situation;
use cinder_flow::{Facts, Plan};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

/// The facts through JSON and back; the copy must equal the original.
fn through_json(facts: &Facts) -> Facts {
    let json = serde_json::to_string(facts).expect("facts serialise");
    let back: Facts = serde_json::from_str(&json).expect("facts deserialise");
    assert_eq!(&back, facts, "facts changed through JSON");
    back
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Serialise the facts of a decision, deserialise them, plan again:
    /// the same plan, which itself survives JSON.
    #[test]
    fn captured_facts_replay_to_the_same_plan(s in situation()) {
        let w = s.build();
        let policy = Policy::faithful();
        let (planned, facts) =
            rt().block_on(shell::plan(w.backends(), &w.request, &w.config, &policy)).expect("plan");
        let replayed = match plan(&w.request, &through_json(&facts), &w.config, &policy).expect("replay") {
            Planning::Done(p) => *p,
            Planning::NeedFacts(n) => return Err(TestCaseError::fail(format!("replay asked for {n:?}"))),
        };
        prop_assert_eq!(&replayed, &planned);
        let json = serde_json::to_string(&planned).expect("plan serialises");
        prop_assert_eq!(serde_json::from_str::<Plan>(&json).expect("plan deserialises"), planned);
    }
}

#[test]
fn every_vector_replays_from_its_facts() {
    let rt = rt();
    let mut checked = 0;
    for dir in ["tests/vectors", "tests/vectors/oracle"] {
        for file in vector_files(Path::new(dir)).expect("vector directory") {
            for vector in read_file(&file).expect("vectors decode") {
                let world = build_world(&vector).expect("world");
                match request_of(&vector).expect("request") {
                    VectorRequest::Manager(request) => {
                        let policy = Policy::faithful();
                        let (planned, facts) = rt
                            .block_on(shell::plan(world.backends(), &request, &world.config, &policy))
                            .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
                        let replayed = plan(&request, &through_json(&facts), &world.config, &policy)
                            .expect("replay")
                            .done()
                            .unwrap_or_else(|| panic!("{}: replay needs more facts", vector.name));
                        assert_eq!(replayed, planned, "{}", vector.name);
                    }
                    VectorRequest::Api(request, kind) => {
                        let (decided, facts) = rt
                            .block_on(shell::api_request(world.backends(), &request, kind, &world.config))
                            .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
                        let replayed: ApiResult = plan_api(&request, kind, &through_json(&facts), &world.config)
                            .expect("replay")
                            .done()
                            .unwrap_or_else(|| panic!("{}: replay needs more facts", vector.name));
                        assert_eq!(replayed, decided, "{}", vector.name);
                        let json = serde_json::to_string(&decided).expect("result serialises");
                        assert_eq!(serde_json::from_str::<ApiResult>(&json).expect("deserialises"), decided);
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 700, "only {checked} vectors");
}
