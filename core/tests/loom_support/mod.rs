//! What every loom test file shares: exploring a model and printing how many
//! interleavings it took, and running a deliberately broken model that loom
//! must catch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

/// Runs `body` in every interleaving loom explores within `preemption_bound`
/// (`None`: unbounded), prints how many it explored, and returns the count.
pub fn explore<F>(name: &str, preemption_bound: Option<usize>, body: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    // A std atomic, outside the model: counts executions, not interleaved itself.
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    let counter = runs.clone();
    let started = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, SeqCst);
        body();
    });
    let explored = runs.load(SeqCst);
    let bound = preemption_bound.map_or("unbounded".to_string(), |b| format!("bound {b}"));
    println!(
        "loom model {name}: {explored} interleavings explored (preemption {bound}) in {:.2?}",
        started.elapsed()
    );
    explored
}

/// Runs a model expected to violate `invariant`; returns loom's panic message.
/// Fails if loom finds nothing, or fails it for another reason.
pub fn expect_violation<F>(name: &str, invariant: &str, model: F) -> String
where
    F: Fn() + Sync + Send + 'static,
{
    let outcome = catch_unwind(AssertUnwindSafe(|| explore(name, None, model)));
    let payload = match outcome {
        Ok(explored) => {
            panic!("loom explored {explored} interleavings of {name} and found nothing")
        }
        Err(payload) => payload,
    };
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains(invariant),
        "loom failed {name} for another reason: {message}"
    );
    println!("loom model {name}: caught as expected: {message}");
    message
}
