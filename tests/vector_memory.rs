//! Decoding a vector uses memory bounded by the vector's size (issue 13.3):
//! measured with a counting allocator at the largest vector text allowed,
//! in the shape that costs most per byte (a long array of one-digit
//! numbers: two bytes of text, a 32-byte JSON value each).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use cinder_flow::conformance::parse_vectors;
use cinder_flow::conformance::vector::MAX_VECTOR_BYTES;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// A valid vector of exactly `MAX_VECTOR_BYTES` bytes whose bulk is a
/// capability holding `[1,1,1,…]`.
fn largest_vector() -> (String, usize) {
    let head = r#"{"name":"big","operation":"create_volume","volume":{"id":"11111111-1111-4111-8111-111111111111"},"backend":{"capabilities":{"bulk":[1"#;
    let tail = "]}}}";
    let mut text = String::with_capacity(MAX_VECTOR_BYTES);
    text.push_str(head);
    let mut ones = 1;
    while text.len() + 2 + tail.len() <= MAX_VECTOR_BYTES {
        text.push_str(",1");
        ones += 1;
    }
    // Pad to the exact bound with whitespace JSON allows.
    while text.len() + tail.len() < MAX_VECTOR_BYTES {
        text.push(' ');
    }
    text.push_str(tail);
    assert_eq!(text.len(), MAX_VECTOR_BYTES);
    (text, ones)
}

#[test]
fn decoding_the_largest_vector_stays_within_a_bounded_multiple_of_its_size() {
    let (text, ones) = largest_vector();
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let vectors = parse_vectors(&text).expect("the largest vector allowed decodes");
    let peak = PEAK.load(Ordering::SeqCst) - before;
    assert_eq!(vectors.len(), 1);
    let bulk = vectors[0].backend.capabilities["bulk"].as_array().expect("array").len();
    assert_eq!(bulk, ones);
    let ratio = peak as f64 / text.len() as f64;
    eprintln!("peak {peak} bytes for {} bytes of text: {ratio:.1}x", text.len());
    // The JSON tree is 16 bytes per text byte here (up to twice that while
    // its array grows), held twice (the vector's `raw` tree and the decoded
    // capability); measured 40x, about 160 MiB at the bound. No third copy.
    assert!(ratio < 44.0, "decoding took {ratio:.1} times the text");

    // One byte more is refused before any decoding.
    let mut over = text;
    over.insert(over.len() - 1, ' ');
    let e = parse_vectors(&over).unwrap_err();
    assert!(e.contains("at most 4194304 bytes"), "{e}");
}
