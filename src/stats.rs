//! `getStats()` and the totals: every counter summed over every thread
//! (and process) sharing the buffer.

use crate::clock::{host_clock, HostClock};
use crate::table::with;
use napi::Result;
use napi_derive::napi;

/// Upper bounds (µs) of the cumulative latency buckets `stats` reports:
/// powers of 4 from 1 µs to about 4.6 minutes.
const LATENCY_BOUNDS: [u64; 15] = {
    let mut bounds = [0u64; 15];
    let mut i = 0;
    while i < 15 {
        bounds[i] = 1 << (2 * i);
        i += 1;
    }
    bounds
};

/// Everything `getStats()` reports, summed over every thread sharing the buffer.
#[napi(object)]
pub struct Stats {
    /// 0 CLOSED, 1 OPEN, 2 HALF_OPEN, as a caller would meet it now.
    pub state: u32,
    /// Wall-clock ms since the epoch when the current state began, never
    /// later than now; 0 if unknown.
    pub state_since: f64,
    pub consecutive_failures: u32,
    pub isolations: u32,
    pub disabled: bool,
    /// Failed probes since the breaker last closed.
    pub reopenings: u32,
    /// How long this opening lasts (backoff included), ms.
    pub open_ms: f64,
    pub requests: f64,
    pub successes: f64,
    pub failures: f64,
    pub rejections: f64,
    pub timeouts: f64,
    pub fallbacks: f64,
    pub probes: f64,
    pub slow_calls: f64,
    pub filtered: f64,
    /// Wall-clock ms since the epoch, never later than now; 0 if never.
    pub last_success_time: f64,
    /// Wall-clock ms since the epoch, never later than now; 0 if never.
    pub last_failure_time: f64,
    pub window_calls: Option<f64>,
    pub window_failures: Option<f64>,
    pub latency_count: Option<f64>,
    pub latency_sum_micros: Option<f64>,
    pub latency_max_micros: Option<f64>,
    pub latency_p50_micros: Option<f64>,
    pub latency_p90_micros: Option<f64>,
    pub latency_p99_micros: Option<f64>,
    /// Upper bounds (µs) of `latency_buckets`.
    pub latency_bounds_micros: Option<Vec<f64>>,
    /// Calls at or below each bound, cumulative.
    pub latency_buckets: Option<Vec<f64>>,
}

/// A stored wall-clock time as users see it (see [`breaker_core::clock::as_seen`]).
fn shown(ms: u64, now: &HostClock) -> f64 {
    breaker_core::clock::as_seen(ms, now) as f64
}

/// Reads every statistic of breaker `id`.
#[napi(catch_unwind)]
pub fn stats(id: u32) -> Result<Stats> {
    with(id, |i| {
        let now = &host_clock();
        let b = &i.breaker;
        let state = b.state(now) as u32;
        let t = b.totals();
        let overrides = b.overrides();
        let window = b.window_counts(now);
        let latency = b.latency();
        let bounds = LATENCY_BOUNDS.iter().map(|&b| b as f64).collect();
        Stats {
            state,
            state_since: shown(b.state_since().unwrap_or(0), now),
            consecutive_failures: b.consecutive_failures(),
            isolations: overrides.isolations,
            disabled: overrides.disabled,
            reopenings: b.reopenings(),
            open_ms: b.open_ms() as f64,
            requests: t.requests as f64,
            successes: t.successes as f64,
            failures: t.failures as f64,
            rejections: t.rejections as f64,
            timeouts: t.timeouts as f64,
            fallbacks: t.fallbacks as f64,
            probes: t.probes as f64,
            slow_calls: t.slow_calls as f64,
            filtered: t.filtered as f64,
            last_success_time: shown(t.last_success_ms, now),
            last_failure_time: shown(t.last_failure_ms, now),
            window_calls: window.map(|w| w.calls as f64),
            window_failures: window.map(|w| w.bad as f64),
            latency_count: latency.as_ref().map(|l| l.count as f64),
            latency_sum_micros: latency.as_ref().map(|l| l.sum_micros as f64),
            latency_max_micros: latency.as_ref().map(|l| l.max_micros as f64),
            latency_p50_micros: latency.as_ref().map(|l| l.percentile(0.5) as f64),
            latency_p90_micros: latency.as_ref().map(|l| l.percentile(0.9) as f64),
            latency_p99_micros: latency.as_ref().map(|l| l.percentile(0.99) as f64),
            latency_bounds_micros: latency.as_ref().map(|_| bounds),
            latency_buckets: latency.as_ref().map(|l| {
                LATENCY_BOUNDS
                    .iter()
                    .map(|&bound| l.cumulative_below(bound) as f64)
                    .collect()
            }),
        }
    })
}

/// Counters summed over every thread sharing the buffer.
#[napi(object)]
pub struct Totals {
    /// successes + failures + rejections.
    pub requests: f64,
    pub successes: f64,
    pub failures: f64,
    pub rejections: f64,
    /// The current run of consecutive failures.
    pub consecutive_failures: u32,
    /// ms since the Unix epoch, never later than now; 0 if never.
    pub last_success_time: f64,
    /// ms since the Unix epoch, never later than now; 0 if never.
    pub last_failure_time: f64,
}

/// Reads the counters of breaker `id`. Values are exact up to 2^53.
#[napi(catch_unwind)]
pub fn totals(id: u32) -> Result<Totals> {
    with(id, |i| {
        let t = i.breaker.totals();
        let now = &host_clock();
        Totals {
            requests: t.requests as f64,
            successes: t.successes as f64,
            failures: t.failures as f64,
            rejections: t.rejections as f64,
            consecutive_failures: i.breaker.consecutive_failures(),
            last_success_time: shown(t.last_success_ms, now),
            last_failure_time: shown(t.last_failure_ms, now),
        }
    })
}
