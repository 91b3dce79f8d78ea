//! The state machine, as compare-and-swap transitions on shared slots.
//!
//! ## Encoding
//!
//! The **control word** (slots `STATE`, `GENERATION`) is one 64-bit atomic:
//! the state (0 CLOSED, 1 OPEN, 2 HALF_OPEN) in its low half, so JavaScript's
//! `Atomics.load(array, STATE)` reads the state alone, and a generation in its
//! high half. Every transition the core makes is one CAS on this word that
//! bumps the generation, so a transition decided on a stale read fails and is
//! decided again, and a probe's result only counts for its own episode.
//!
//! The **timer word** (slot `TIMER`) holds `tag:18 | kind:2 | ms:44`. It means
//! something only while its tag equals the low 18 bits of the current
//! generation and its kind is not 0 (so the zeroes of a fresh buffer are no
//! entry):
//!
//! ```text
//!   state      timer tag == generation            otherwise
//!   OPEN       kind OPEN:  opened at `ms`         not stamped yet: the first
//!                                                 caller to see it stamps it
//!   HALF_OPEN  kind LEASE: probe admitted at `ms` free: the next caller probes
//! ```
//!
//! The timer's `ms` is on the host's monotonic clock ([`Clock::mono_ms`]),
//! so stepping the wall clock moves no open period and no lease.
//!
//! An entry for an older generation is harmless, so the timer is only ever
//! written by CAS from a value read while the control word was unchanged: a
//! stale writer can never destroy the entry of a newer generation.
//!
//! `STATE` set to OPEN from JavaScript leaves the generation alone, so the
//! timer's tag does not match and the first breaker to see it stamps the
//! opening with its own clock, as SPEC.md asks.
//!
//! ## Transitions
//!
//! ```text
//!            failures reach threshold            reset timeout passed,
//!   CLOSED ─────────────────────────────▶ OPEN ───────────────────────▶ HALF_OPEN
//!     ▲                                    ▲   first caller claims it      │  │
//!     │            probe fails             │                               │  │
//!     │   ◀────────────────────────────────┴───────────────────────────────┘  │
//!     └──────────────────────── probe succeeds ───────────────────────────────┘
//! ```
//!
//! A lease older than the reset timeout (its probe's thread died) starts a new
//! half-open episode, so another caller may probe.

use crate::cells::Cells;
use crate::clock::Clock;
use crate::features::{Features, WindowSpec};
use crate::layout::{
    stripe_slot, FAILURES, FAILURE_COUNT, FALLBACKS, FILTERED, HALF_OPEN, ISOLATIONS,
    LAST_FAILURE_TIME, LAST_SUCCESS_TIME, LOG_ENTRIES, LOG_ENTRY_SLOTS, MODE, MODE_DISABLED,
    PROBE_COUNT, REJECTIONS, REOPENINGS, REQUESTS, SLOW_CALLS, STATE, STRIPES, SUCCESSES, TIMEOUTS,
    TIMER, TRANSITION_LOG,
};
use crate::{histogram, window};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// The three states, as stored in the `STATE` slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl State {
    pub const ALL: [State; 3] = [State::Closed, State::Open, State::HalfOpen];

    /// The name JavaScript sees (`'CLOSED' | 'OPEN' | 'HALF_OPEN'`).
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
        }
    }

    fn from_raw(raw: u32) -> Option<State> {
        match raw {
            0 => Some(State::Closed),
            1 => Some(State::Open),
            2 => Some(State::HalfOpen),
            _ => None,
        }
    }
}

/// A breaker's settings. Every thread sharing a buffer should use the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Consecutive failures that open the breaker; 0: only the rate does.
    failure_threshold: u32,
    reset_timeout_ms: u64,
    /// Longest open period the backoff may reach (== reset timeout: no backoff).
    max_reset_timeout_ms: u64,
    backoff_multiplier: f64,
    half_open_max_calls: u32,
    success_threshold: u32,
    rate: Option<RatePolicy>,
    histogram: bool,
}

/// Opening on a failure rate over a window of recent calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePolicy {
    /// Percentage of bad calls (failures, slow calls) that opens the breaker.
    pub threshold_percent: f64,
    /// Calls the window must hold before the rate counts.
    pub minimum_calls: u32,
    pub window: WindowSpec,
}

/// The settings past the seed's two, as JavaScript numbers; `None` for the default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Policies {
    /// Default 1.
    pub half_open_max_calls: Option<f64>,
    /// Default 1.
    pub success_threshold: Option<f64>,
    /// Default: the reset timeout (no backoff).
    pub max_reset_timeout: Option<f64>,
    /// Default 2.
    pub backoff_multiplier: Option<f64>,
    /// Percent in (0, 100]; enables the rate policy.
    pub failure_rate_threshold: Option<f64>,
    /// Default 10.
    pub minimum_calls: Option<f64>,
    /// Calls (count window, default 100) or ms (time window).
    pub window_size: Option<f64>,
    /// True for a time window; default a count window.
    pub window_is_time: bool,
    /// Buckets of a time window, default 10.
    pub window_buckets: Option<f64>,
    /// Consecutive failures also open the breaker even with a rate policy.
    pub consecutive_too: bool,
    pub histogram: bool,
}

/// Most isolations held at once: [`Breaker::isolate`] refuses another.
pub const MAX_ISOLATIONS: u32 = u16::MAX as u32;
/// Largest accepted threshold: `FAILURE_COUNT` is an `Int32Array` slot.
pub const MAX_FAILURE_THRESHOLD: u32 = i32::MAX as u32;
/// Largest accepted reset timeout: about 278 years, far inside the 44-bit timer.
pub const MAX_RESET_TIMEOUT_MS: u64 = 1 << 43;
/// Largest `halfOpenMaxCalls` and `successThreshold`: 16-bit fields of `HALF_OPEN`.
pub const MAX_PROBES: u32 = u16::MAX as u32;

/// Why a setting was refused: the option's name, what it must be, what it was.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    FailureThreshold(f64),
    ResetTimeout(f64),
    Option {
        name: &'static str,
        expected: String,
        got: f64,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::FailureThreshold(got) => write!(
                f,
                "failureThreshold must be an integer from 1 to {MAX_FAILURE_THRESHOLD}, got {got}"
            ),
            ConfigError::ResetTimeout(got) => write!(
                f,
                "resetTimeout must be a finite number of milliseconds from 0 to \
                 {MAX_RESET_TIMEOUT_MS}, got {got}"
            ),
            ConfigError::Option {
                name,
                expected,
                got,
            } => write!(f, "{name} must be {expected}, got {got}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn integer_in(name: &'static str, value: f64, low: u32, high: u32) -> Result<u32, ConfigError> {
    if value.fract() == 0.0 && value >= f64::from(low) && value <= f64::from(high) {
        Ok(value as u32)
    } else {
        Err(ConfigError::Option {
            name,
            expected: format!("an integer from {low} to {high}"),
            got: value,
        })
    }
}

impl Config {
    /// Validates settings as JavaScript numbers. A fractional reset timeout is
    /// rounded up to whole milliseconds.
    pub fn new(failure_threshold: f64, reset_timeout_ms: f64) -> Result<Config, ConfigError> {
        let threshold_ok = failure_threshold.fract() == 0.0
            && failure_threshold >= 1.0
            && failure_threshold <= MAX_FAILURE_THRESHOLD as f64;
        if !threshold_ok {
            return Err(ConfigError::FailureThreshold(failure_threshold));
        }
        let reset_timeout_ms =
            milliseconds_up(reset_timeout_ms).ok_or(ConfigError::ResetTimeout(reset_timeout_ms))?;
        Ok(Config {
            failure_threshold: failure_threshold as u32,
            reset_timeout_ms,
            max_reset_timeout_ms: reset_timeout_ms,
            backoff_multiplier: 2.0,
            half_open_max_calls: 1,
            success_threshold: 1,
            rate: None,
            histogram: false,
        })
    }

    /// The seed's settings plus the policies past them.
    pub fn with_policies(
        failure_threshold: f64,
        reset_timeout_ms: f64,
        policies: &Policies,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::new(failure_threshold, reset_timeout_ms)?;
        if let Some(calls) = policies.half_open_max_calls {
            config.half_open_max_calls = integer_in("halfOpenMaxCalls", calls, 1, MAX_PROBES)?;
        }
        if let Some(successes) = policies.success_threshold {
            config.success_threshold = integer_in("successThreshold", successes, 1, MAX_PROBES)?;
        }
        if let Some(max) = policies.max_reset_timeout {
            config.max_reset_timeout_ms = milliseconds_up(max)
                .filter(|&max| max >= config.reset_timeout_ms)
                .ok_or_else(|| ConfigError::Option {
                    name: "maxResetTimeout",
                    expected: format!(
                        "a finite number of milliseconds from resetTimeout ({}) to {MAX_RESET_TIMEOUT_MS}",
                        config.reset_timeout_ms
                    ),
                    got: max,
                })?;
        }
        if let Some(multiplier) = policies.backoff_multiplier {
            if !(multiplier.is_finite() && (1.0..=1000.0).contains(&multiplier)) {
                return Err(ConfigError::Option {
                    name: "backoffMultiplier",
                    expected: "a number from 1 to 1000".to_string(),
                    got: multiplier,
                });
            }
            config.backoff_multiplier = multiplier;
        }
        if let Some(percent) = policies.failure_rate_threshold {
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(ConfigError::Option {
                    name: "failureRateThreshold",
                    expected: "a percentage above 0 and at most 100".to_string(),
                    got: percent,
                });
            }
        }
        // The window options matter only with a failure rate (as the
        // multiplier only with a longer maxResetTimeout); without it they
        // change nothing, but are checked as they would be with it.
        let window = if policies.failure_rate_threshold.is_some()
            || policies.window_size.is_some()
            || policies.window_buckets.is_some()
            || policies.minimum_calls.is_some()
        {
            Some(rate_window(policies)?)
        } else {
            None
        };
        if let (Some(percent), Some((window, minimum_calls))) =
            (policies.failure_rate_threshold, window)
        {
            config.rate = Some(RatePolicy {
                threshold_percent: percent,
                minimum_calls,
                window,
            });
            if !policies.consecutive_too {
                config.failure_threshold = 0;
            }
        }
        config.histogram = policies.histogram;
        Ok(config)
    }

    /// Consecutive failures that open the breaker; 0 when only the rate does.
    pub fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    pub fn reset_timeout_ms(&self) -> u64 {
        self.reset_timeout_ms
    }

    pub fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls
    }

    pub fn success_threshold(&self) -> u32 {
        self.success_threshold
    }

    pub fn rate(&self) -> Option<&RatePolicy> {
        self.rate.as_ref()
    }

    /// The optional memory regions these settings need.
    pub fn features(&self) -> Features {
        Features {
            window: self.rate.map(|rate| rate.window),
            histogram: self.histogram,
        }
    }

    /// How long the breaker stays open after `reopenings` failed probes in a
    /// row: the reset timeout times the multiplier to that power, capped.
    pub fn open_ms(&self, reopenings: u32) -> u64 {
        if self.max_reset_timeout_ms == self.reset_timeout_ms || reopenings == 0 {
            return self.reset_timeout_ms;
        }
        let grown = self.reset_timeout_ms as f64
            * self.backoff_multiplier.powi(reopenings.min(4096) as i32);
        if grown >= self.max_reset_timeout_ms as f64 {
            self.max_reset_timeout_ms
        } else {
            grown.ceil() as u64
        }
    }

    /// How long a probe may run before another caller may take over: the
    /// reset timeout, and at least 1 ms so a zero timeout still admits one
    /// probe at a time.
    fn lease_ms(&self) -> u64 {
        self.reset_timeout_ms.max(1)
    }
}

/// The failure-rate window and its minimum calls, checked.
fn rate_window(policies: &Policies) -> Result<(WindowSpec, u32), ConfigError> {
    let window = if policies.window_is_time {
        let ms = policies.window_size.ok_or(ConfigError::Option {
            name: "windowSize",
            expected: "a number of milliseconds for a time window".to_string(),
            got: f64::NAN,
        })?;
        let ms = integer_in("windowSize", ms, 1, crate::features::MAX_WINDOW_MS)?;
        let buckets = policies
            .window_buckets
            .unwrap_or(10.0_f64.min(f64::from(ms)));
        let buckets = integer_in(
            "windowBuckets",
            buckets,
            1,
            crate::features::MAX_WINDOW_BUCKETS.min(ms),
        )?;
        WindowSpec::Time { ms, buckets }
    } else {
        let calls = policies.window_size.unwrap_or(100.0);
        let calls = integer_in("windowSize", calls, 1, crate::features::MAX_WINDOW_CALLS)?;
        WindowSpec::Count { calls }
    };
    // A count window never holds more than its size: a larger minimum would
    // never be reached. The default shrinks to fit.
    let most = match window {
        WindowSpec::Count { calls } => calls,
        WindowSpec::Time { .. } => i32::MAX as u32,
    };
    let minimum_calls = match policies.minimum_calls {
        Some(minimum) => integer_in("minimumCalls", minimum, 1, most)?,
        None => 10.min(most),
    };
    Ok((window, minimum_calls))
}

/// Whole milliseconds from 0 to [`MAX_RESET_TIMEOUT_MS`], rounded up.
fn milliseconds_up(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms >= 0.0 && ms <= MAX_RESET_TIMEOUT_MS as f64).then(|| ms.ceil() as u64)
}

/// Which of the per-thread counter stripes a caller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe(usize);

impl Stripe {
    /// The stripe for the `n`-th thread (wraps around [`STRIPES`]).
    pub const fn new(n: usize) -> Stripe {
        Stripe(n % STRIPES)
    }

    /// Which stripe this is, from 0 to [`STRIPES`] - 1.
    pub const fn index(self) -> usize {
        self.0
    }
}

/// Proof that a caller was admitted as the half-open probe of one episode.
/// Its number is that episode's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(pub u32);

/// What `admit` decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// CLOSED: run the task, then report with `on_success` / `on_failure`.
    Run,
    /// This caller is the half-open probe: run the task, then report with `on_probe_result`.
    Probe(Ticket),
    /// OPEN (or another caller is probing): do not run the task. Already counted.
    Reject,
}

/// A change of state this call made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

/// Counters summed over every stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Calls that settled or were rejected: successes + failures + rejections.
    pub requests: u64,
    /// Includes errors the error filter accepted.
    pub successes: u64,
    /// Includes timeouts.
    pub failures: u64,
    pub rejections: u64,
    pub timeouts: u64,
    /// Calls answered by a fallback.
    pub fallbacks: u64,
    pub slow_calls: u64,
    /// Errors the error filter accepted.
    pub filtered: u64,
    /// Probes admitted.
    pub probes: u64,
    /// Wall-clock ms since the epoch, 0 if never.
    pub last_success_ms: u64,
    /// Wall-clock ms since the epoch, 0 if never.
    pub last_failure_ms: u64,
}

/// Extra facts about a call's outcome, counted beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks {
    /// The call timed out (a failure).
    pub timed_out: bool,
    /// A fallback answered the call.
    pub fallback: bool,
    /// The call took longer than `slowCallDuration`: bad for the rate.
    pub slow: bool,
    /// The error filter accepted the call's error (a success).
    pub filtered: bool,
}

/// One entry of the transition log: the transition that made generation `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    pub generation: u32,
    /// The state it moved to.
    pub state: State,
    /// Wall-clock ms since the epoch when it was made (0 unknown).
    pub time_ms: u64,
    /// Who made it (the binding's thread number), 20 bits.
    pub actor: u32,
}

/// What the transition log answers for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRead {
    /// Its entry, written and published.
    Ready(LogEntry),
    /// Not written yet: the transition is a moment old, or its writer died
    /// mid-write (a process killed, over a breaker file).
    Pending,
    /// Overwritten: the log holds only the last [`LOG_ENTRIES`] transitions.
    Gone,
}

/// The shared switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Control {
    pub isolations: u32,
    pub disabled: bool,
    /// Failed probes since the breaker last closed.
    pub reopenings: u32,
}

// Control word: state in the low half, generation in the high half.
fn control(state: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(state)
}
fn state_raw(control: u64) -> u32 {
    control as u32
}
fn generation(control: u64) -> u32 {
    (control >> 32) as u32
}

// Timer word: tag:18 | kind:2 | ms:44. Kind 0 never matches, so the zero
// word of a fresh buffer is no entry for generation 0.
const TIME_BITS: u32 = 44;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const KIND_MASK: u64 = 0b11 << TIME_BITS;
const TAG_SHIFT: u32 = TIME_BITS + 2;
const TAG_MASK: u64 = (1 << (64 - TAG_SHIFT)) - 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Opened = 1,
    Lease = 2,
}

fn timer(generation: u32, kind: Kind, now_ms: u64) -> u64 {
    ((u64::from(generation) & TAG_MASK) << TAG_SHIFT)
        | ((kind as u64) << TIME_BITS)
        | (now_ms & TIME_MASK)
}

/// The time in `word` if it is an entry of `kind` for `generation`.
fn timer_entry(word: u64, generation: u32, kind: Kind) -> Option<u64> {
    let tag_matches = (word >> TAG_SHIFT) == u64::from(generation) & TAG_MASK;
    let kind_matches = (word & KIND_MASK) >> TIME_BITS == kind as u64;
    (tag_matches && kind_matches).then_some(word & TIME_MASK)
}

// Probe word (HALF_OPEN): generation:32 | running:16 | succeeded:16.
fn probe_word(generation: u32, running: u32, succeeded: u32) -> u64 {
    (u64::from(generation) << 32)
        | (u64::from(running & 0xffff) << 16)
        | u64::from(succeeded & 0xffff)
}

/// The probes of episode `generation` in `word`: (running, succeeded);
/// (0, 0) when the word belongs to another episode.
fn probes_of(word: u64, generation: u32) -> (u32, u32) {
    if (word >> 32) as u32 == generation {
        (((word >> 16) & 0xffff) as u32, (word & 0xffff) as u32)
    } else {
        (0, 0)
    }
}

/// What the control, timer and probe words say, read consistently.
enum View {
    Closed,
    /// OPEN, stamped at `since`.
    Open {
        since: u64,
    },
    /// OPEN, not stamped for this generation yet.
    OpenUnstamped,
    /// HALF_OPEN: `running` probes admitted and not reported, `succeeded`
    /// reported successes; the lease stamped at `lease` (the latest admission).
    HalfOpen {
        running: u32,
        succeeded: u32,
        probes: u64,
        lease: Option<u64>,
    },
    /// Something other than a state (written from JavaScript).
    Invalid,
}

/// One breaker over shared cells. Cheap to build; holds no state of its own
/// beyond its settings, so any number of them may share the same cells.
pub struct Breaker<C: Cells> {
    cells: C,
    config: Config,
    features: Features,
    actor: u32,
}

impl<C: Cells> Breaker<C> {
    /// A breaker over `cells`, which must be long enough for
    /// `config.features()` (see `features::claim_features`).
    pub fn new(cells: C, config: Config) -> Self {
        Breaker {
            cells,
            features: config.features(),
            config,
            actor: 0,
        }
    }

    /// Names who makes this breaker's transitions in the log (20 bits kept).
    pub fn with_actor(mut self, actor: u32) -> Self {
        self.actor = actor & ACTOR_MASK as u32;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn cells(&self) -> &C {
        &self.cells
    }

    /// Decides whether a call may run. Counts a rejection when it may not.
    pub fn admit(&self, now: impl Clock, stripe: Stripe) -> Admission {
        let now = &now;
        if self.control().load(Acquire) as u32 != State::Closed as u32 {
            let switches = self.switches();
            if switches.isolations > 0 || self.fleet_held() {
                self.hold_open(now);
                return self.reject(stripe);
            }
            if switches.disabled && State::from_raw(self.control().load(Acquire) as u32).is_some() {
                return Admission::Run;
            }
        }
        loop {
            let (word, timer_word, view) = self.view();
            let generation = generation(word);
            match view {
                View::Closed => return Admission::Run,
                View::OpenUnstamped => {
                    self.stamp_timer(word, timer_word, Kind::Opened, now);
                }
                View::Open { since } if now.mono_ms() < since => {
                    // Stamped later than now: by an earlier boot (a breaker
                    // file kept across a reboot). The wait starts over from now.
                    self.stamp_timer(word, timer_word, Kind::Opened, now);
                }
                View::Open { since } if now.mono_ms() - since < self.open_ms() => {
                    return self.reject(stripe);
                }
                View::Open { .. } => {
                    // Open long enough: start a half-open episode; the
                    // probes are whoever then take its places.
                    self.swap_control(word, State::HalfOpen, now);
                }
                View::HalfOpen {
                    running,
                    succeeded,
                    probes,
                    lease,
                } => {
                    if running < self.config.half_open_max_calls {
                        let taken = probe_word(generation, running + 1, succeeded);
                        if self
                            .cells
                            .wide(HALF_OPEN)
                            .compare_exchange(probes, taken, AcqRel, Acquire)
                            .is_ok()
                        {
                            self.stamp_timer(word, timer_word, Kind::Lease, now);
                            self.cells.wide(PROBE_COUNT).fetch_add(1, Relaxed);
                            return Admission::Probe(Ticket(generation));
                        }
                        continue;
                    }
                    match lease {
                        // Full, its lease not stamped yet: stamp it from now.
                        None => {
                            self.stamp_timer(word, timer_word, Kind::Lease, now);
                        }
                        Some(since) if now.mono_ms() < since => {
                            self.stamp_timer(word, timer_word, Kind::Lease, now);
                        }
                        Some(since) if now.mono_ms() - since < self.config.lease_ms() => {
                            return self.reject(stripe);
                        }
                        Some(_) => {
                            // The probes' lease ran out (their threads died or
                            // they hang): a new episode, so their late results
                            // no longer count.
                            self.swap_control(word, State::HalfOpen, now);
                        }
                    }
                }
                View::Invalid => {
                    self.swap_control(word, State::Open, now);
                }
            }
        }
    }

    /// Reports that a call admitted with [`Admission::Run`] succeeded.
    pub fn on_success(&self, now: impl Clock, stripe: Stripe) {
        let now = &now;
        self.on_successes(1, now, stripe);
    }

    /// Reports `count` successes of calls admitted with [`Admission::Run`]
    /// at once, the last of them at `now`: a thread may publish its
    /// successes in batches. Like one success, it ends a run of failures.
    pub fn on_successes(&self, count: u64, now: impl Clock, stripe: Stripe) {
        let now = &now;
        if count != 0 {
            self.count_successes(count, now, stripe);
            self.record_window(count, 0, now);
            self.end_failure_run();
        }
    }

    /// Adds `count` successes to the counters and the window, and nothing
    /// else: successes published after the fact, whose effect on the run of
    /// failures was already had when they happened (the run was 0 then). Unlike
    /// [`Breaker::on_successes`] it leaves the run alone, so failures counted
    /// since those successes still count.
    pub fn publish_successes(&self, count: u64, now: impl Clock, stripe: Stripe) {
        let now = &now;
        if count != 0 {
            self.count_successes(count, now, stripe);
            self.record_window(count, 0, now);
        }
    }

    /// Reports one success with marks: a slow call (bad for the rate, so it
    /// may open the breaker) or an error the filter accepted. Ends the run.
    pub fn on_marked_success(
        &self,
        marks: Marks,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        self.count_successes(1, now, stripe);
        self.count_marks(marks, stripe);
        self.end_failure_run();
        if !marks.slow {
            self.record_window(1, 0, now);
            return None;
        }
        self.record_window(0, 1, now);
        if self.rate_reached(now) {
            self.trip(now)
        } else {
            None
        }
    }

    /// Reports that a call admitted with [`Admission::Run`] failed. Opens the
    /// breaker when the run of failures reaches the threshold while CLOSED.
    pub fn on_failure(&self, now: impl Clock, stripe: Stripe) -> Option<Transition> {
        let now = &now;
        self.on_marked_failure(Marks::default(), now, stripe)
    }

    /// [`Breaker::on_failure`] with marks (timed out, answered by a fallback, slow).
    pub fn on_marked_failure(
        &self,
        marks: Marks,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        self.count_marks(marks, stripe);
        let run = self.count_failure(now, stripe);
        self.record_window(0, 1, now);
        let threshold = self.config.failure_threshold;
        let consecutive = threshold != 0 && run >= threshold;
        if consecutive || self.rate_reached(now) {
            self.trip(now)
        } else {
            None
        }
    }

    /// Counts that a fallback answered a call (one rejected while open).
    pub fn on_fallback(&self, stripe: Stripe) {
        self.bump(stripe, FALLBACKS);
    }

    /// Opens a CLOSED breaker (a failure condition was met), unless disabled.
    fn trip(&self, now: &impl Clock) -> Option<Transition> {
        loop {
            let word = self.control().load(Acquire);
            if state_raw(word) != State::Closed as u32 || self.switches().disabled {
                return None;
            }
            if let Some(opened) = self.swap_control(word, State::Open, now) {
                self.stamp_opening(opened, now);
                // `disable()` may have closed the breaker just before this
                // opened it: a read-modify-write, so that it or `disable`'s sees the other.
                if self.cells.word(MODE).fetch_add(0, AcqRel) & MODE_DISABLED != 0 {
                    // Undone: CLOSED again, but two transitions were logged,
                    // so the caller is told (and tells the listeners).
                    return self
                        .swap_control(opened, State::Closed, now)
                        .map(|_| Transition::Closed);
                }
                return Some(Transition::Opened);
            }
        }
    }

    /// Whether the failure rate policy says open now.
    fn rate_reached(&self, now: &impl Clock) -> bool {
        let Some(rate) = &self.config.rate else {
            return false;
        };
        let counts = window::read(
            &self.cells,
            self.features.window_base(),
            &rate.window,
            now.mono_ms(),
        );
        counts.calls >= u64::from(rate.minimum_calls)
            && counts.calls > 0
            && counts.bad as f64 * 100.0 >= rate.threshold_percent * counts.calls as f64
    }

    fn record_window(&self, good: u64, bad: u64, now: &impl Clock) {
        if let Some(rate) = &self.config.rate {
            window::record(
                &self.cells,
                self.features.window_base(),
                &rate.window,
                good,
                bad,
                now.mono_ms(),
            );
        }
    }

    /// The failure-rate window's content: (calls, bad calls); `None` without a rate policy.
    pub fn window_counts(&self, now: impl Clock) -> Option<window::WindowCounts> {
        let now = &now;
        let rate = self.config.rate.as_ref()?;
        Some(window::read(
            &self.cells,
            self.features.window_base(),
            &rate.window,
            now.mono_ms(),
        ))
    }

    /// Records a call's duration in the latency histogram, if there is one.
    pub fn record_latency(&self, micros: u64, stripe: Stripe) {
        if self.features.histogram {
            histogram::record(&self.cells, self.features.histogram_base(), stripe, micros);
        }
    }

    /// The latency histogram summed over every thread; `None` without one.
    pub fn latency(&self) -> Option<histogram::Snapshot> {
        self.features
            .histogram
            .then(|| histogram::read(&self.cells, self.features.histogram_base()))
    }

    /// Reports the result of the probe holding `ticket`. A failure opens the
    /// breaker again; `successThreshold` successes of one episode close it.
    /// A ticket of an episode that has ended (lease taken over, forced
    /// transition) changes no state.
    pub fn on_probe_result(
        &self,
        ticket: Ticket,
        succeeded: bool,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        self.on_marked_probe_result(ticket, succeeded, Marks::default(), now, stripe)
    }

    /// [`Breaker::on_probe_result`] with marks.
    pub fn on_marked_probe_result(
        &self,
        ticket: Ticket,
        succeeded: bool,
        marks: Marks,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        self.count_marks(marks, stripe);
        let probing = control(State::HalfOpen as u32, ticket.0);
        if !succeeded {
            self.count_failure(now, stripe);
            let opened = self.swap_control(probing, State::Open, now)?;
            self.cells.word(REOPENINGS).fetch_add(1, Relaxed);
            self.stamp_opening(opened, now);
            return Some(Transition::Opened);
        }
        self.count_successes(1, now, stripe);
        self.end_failure_run();
        // The success counts, and this probe's place is free again, except
        // after the success that closes the breaker: freed, it could admit
        // one more probe into an episode about to end.
        let probes = self.cells.wide(HALF_OPEN);
        let mut word = probes.load(Acquire);
        let succeeded = loop {
            if (word >> 32) as u32 != ticket.0 {
                return None; // another episode's word: this one has ended
            }
            let (running, done) = probes_of(word, ticket.0);
            let done_now = done.saturating_add(1);
            let freed = if done_now >= self.config.success_threshold {
                0
            } else {
                1
            };
            let next = probe_word(ticket.0, running.saturating_sub(freed), done_now);
            match probes.compare_exchange(word, next, AcqRel, Acquire) {
                Ok(_) => break done_now,
                Err(seen) => word = seen,
            }
        };
        if succeeded < self.config.success_threshold {
            return None;
        }
        let closed = self.swap_control(probing, State::Closed, now)?;
        Some(self.after_closing(closed, now))
    }

    /// A closed breaker starts over: no backoff, an empty window.
    fn start_over(&self, now: &impl Clock) {
        self.cells.word(REOPENINGS).store(0, Relaxed);
        if let Some(rate) = &self.config.rate {
            window::clear(
                &self.cells,
                self.features.window_base(),
                &rate.window,
                now.mono_ms(),
            );
        }
    }

    /// What must follow every close: the backoff and the window start over,
    /// and whatever happened meanwhile that should keep the breaker open
    /// (failures reaching the threshold, an isolation) reopens it.
    fn after_closing(&self, closed: u64, now: &impl Clock) -> Transition {
        self.start_over(now);
        // Failures counted since the run was reset saw HALF_OPEN and left the
        // decision to this close: they come after the success, so if they
        // reach the threshold they open the breaker again. Read-modify-writes,
        // so that they or `count_failure`'s / `isolate`'s see the other.
        let run = self.cells.word(FAILURE_COUNT).fetch_add(0, AcqRel) as u32;
        let threshold = self.config.failure_threshold;
        let isolated = self.cells.wide(ISOLATIONS).fetch_add(0, AcqRel) & ISOLATION_COUNT > 0;
        // A disabled breaker never opens on failures (loom found `disable()`
        // closing a breaker that a racing failure had just opened, and this
        // reopening it on that failure's run).
        let disabled = self.cells.word(MODE).fetch_add(0, AcqRel) & MODE_DISABLED != 0;
        if isolated || (!disabled && threshold != 0 && run >= threshold) {
            if let Some(opened) = self.swap_control(closed, State::Open, now) {
                self.stamp_opening(opened, now);
                return Transition::Opened;
            }
        }
        Transition::Closed
    }

    /// The state a caller would meet now: HALF_OPEN as soon as a call would be
    /// admitted as a probe. Stamps an opening made from JavaScript.
    pub fn state(&self, now: impl Clock) -> State {
        let now = &now;
        loop {
            let (word, timer_word, view) = self.view();
            let held = self.switches().isolations > 0 || self.fleet_held();
            if held && !matches!(view, View::Invalid) {
                return State::Open;
            }
            match view {
                View::Closed => return State::Closed,
                View::OpenUnstamped => {
                    self.stamp_timer(word, timer_word, Kind::Opened, now);
                }
                View::Open { since } => {
                    let mono = now.mono_ms();
                    let due = mono >= since && mono - since >= self.open_ms();
                    return if due { State::HalfOpen } else { State::Open };
                }
                View::HalfOpen { .. } => return State::HalfOpen,
                View::Invalid => {
                    self.swap_control(word, State::Open, now);
                }
            }
        }
    }

    /// When the current state began (ms), if the log still knows.
    pub fn state_since(&self) -> Option<u64> {
        let word = self.control().load(Acquire);
        match self.log_entry(generation(word)) {
            Some(entry) if entry.state as u32 == state_raw(word) => Some(entry.time_ms),
            _ => None,
        }
    }

    /// How long the breaker stays open this time, backoff included.
    pub fn open_ms(&self) -> u64 {
        self.config
            .open_ms(self.cells.word(REOPENINGS).load(Relaxed).max(0) as u32)
    }

    /// Forces a new half-open episode: the next caller probes, and a probe
    /// already running no longer decides anything.
    pub fn force_half_open(&self) -> Transition {
        self.force_half_open_at(0)
    }

    /// [`Breaker::force_half_open`], logged at `now`. An isolated breaker
    /// stays OPEN: isolation wins.
    pub fn force_half_open_at(&self, now: impl Clock) -> Transition {
        let now = &now;
        loop {
            if self.switches().isolations > 0 {
                self.hold_open(now);
                return Transition::Opened;
            }
            let word = self.control().load(Acquire);
            if self.swap_control(word, State::HalfOpen, now).is_some() {
                return Transition::HalfOpened;
            }
        }
    }

    /// Holds the breaker OPEN for every thread until every isolation is
    /// released or the breaker is reset. Returns the isolation's epoch (pass
    /// it to [`Breaker::release_isolation`]) and the transition, if it made
    /// one; `None` (and takes nothing) when [`MAX_ISOLATIONS`] are held.
    pub fn isolate(&self, now: impl Clock) -> Option<(u64, Option<Transition>)> {
        let now = &now;
        let taken = self
            .cells
            .wide(ISOLATIONS)
            .fetch_update(AcqRel, Acquire, |n| {
                (n & ISOLATION_COUNT < ISOLATION_COUNT).then(|| n + 1)
            })
            .ok()?;
        Some((isolation_epoch(taken), self.hold_open(now)))
    }

    /// Releases one isolation taken in `epoch`; the last one closes the
    /// breaker. An isolation from before a `reset()` (another epoch) releases
    /// nothing. Returns the transition, if it made one.
    pub fn release_isolation(&self, epoch: u64, now: impl Clock) -> Option<Transition> {
        let now = &now;
        let released = self
            .cells
            .wide(ISOLATIONS)
            .fetch_update(AcqRel, Acquire, |n| {
                (isolation_epoch(n) == epoch && n & ISOLATION_COUNT > 0).then(|| n - 1)
            });
        match released {
            Ok(n) if n & ISOLATION_COUNT == 1 => self.close_now(now),
            _ => None,
        }
    }

    /// Closes the breaker and clears the run of failures, the backoff, the
    /// window and every isolation (a new isolation epoch begins, so handles
    /// taken before release nothing). Lifetime counters are kept.
    pub fn reset(&self, now: impl Clock) -> Option<Transition> {
        let now = &now;
        let _ = self
            .cells
            .wide(ISOLATIONS)
            .fetch_update(AcqRel, Acquire, |n| {
                Some((n & !ISOLATION_COUNT).wrapping_add(ISOLATION_COUNT + 1))
            });
        self.close_now(now)
    }

    /// Lets every call through (and never opens) while `disabled`; counting goes on.
    pub fn set_disabled(&self, disabled: bool, now: impl Clock) -> Option<Transition> {
        let now = &now;
        if disabled {
            self.cells.word(MODE).fetch_or(MODE_DISABLED, AcqRel);
            if self.switches().isolations == 0 {
                return self.close_now(now);
            }
        } else {
            self.cells.word(MODE).fetch_and(!MODE_DISABLED, AcqRel);
        }
        None
    }

    /// The shared switches.
    pub fn switches(&self) -> Control {
        Control {
            isolations: (self.cells.wide(ISOLATIONS).load(Acquire) & ISOLATION_COUNT) as u32,
            disabled: self.cells.word(MODE).load(Acquire) & MODE_DISABLED != 0,
            reopenings: self.cells.word(REOPENINGS).load(Relaxed).max(0) as u32,
        }
    }

    /// Moves any state but OPEN to OPEN.
    pub(crate) fn hold_open(&self, now: &impl Clock) -> Option<Transition> {
        loop {
            let word = self.control().load(Acquire);
            if state_raw(word) == State::Open as u32 {
                return None;
            }
            if let Some(opened) = self.swap_control(word, State::Open, now) {
                self.stamp_opening(opened, now);
                return Some(Transition::Opened);
            }
        }
    }

    /// Closes the breaker now, whatever its state, and starts its counts over.
    pub(crate) fn close_now(&self, now: &impl Clock) -> Option<Transition> {
        self.cells.word(FAILURE_COUNT).store(0, Release);
        loop {
            let word = self.control().load(Acquire);
            if state_raw(word) == State::Closed as u32 {
                self.start_over(now);
                return None;
            }
            if let Some(closed) = self.swap_control(word, State::Closed, now) {
                return match self.after_closing(closed, now) {
                    Transition::Closed => Some(Transition::Closed),
                    _ => None,
                };
            }
        }
    }

    /// The run of consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.cells.word(FAILURE_COUNT).load(Relaxed) as u32
    }

    /// Counters summed over all stripes.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            last_failure_ms: self.cells.wide(LAST_FAILURE_TIME).load(Relaxed),
            probes: self.cells.wide(PROBE_COUNT).load(Relaxed),
            ..Totals::default()
        };
        for stripe in 0..STRIPES {
            let read = |offset| self.cells.wide(stripe_slot(stripe, offset)).load(Relaxed);
            totals.requests = totals.requests.wrapping_add(read(REQUESTS));
            totals.successes = totals.successes.wrapping_add(read(SUCCESSES));
            totals.failures = totals.failures.wrapping_add(read(FAILURES));
            totals.rejections = totals.rejections.wrapping_add(read(REJECTIONS));
            totals.timeouts = totals.timeouts.wrapping_add(read(TIMEOUTS));
            totals.fallbacks = totals.fallbacks.wrapping_add(read(FALLBACKS));
            totals.slow_calls = totals.slow_calls.wrapping_add(read(SLOW_CALLS));
            totals.filtered = totals.filtered.wrapping_add(read(FILTERED));
            totals.last_success_ms = totals.last_success_ms.max(read(LAST_SUCCESS_TIME));
        }
        totals
    }

    /// The generation of the control word: bumped by every transition.
    pub fn generation(&self) -> u32 {
        generation(self.control().load(Acquire))
    }

    /// The log entry of the transition that made `generation`, if the log
    /// still holds it (it keeps the last [`LOG_ENTRIES`]) and its writer has
    /// finished writing it.
    pub fn log_entry(&self, generation: u32) -> Option<LogEntry> {
        let at = log_slot(generation);
        let head = self.cells.wide(at).load(Acquire);
        if (head >> 32) as u32 != generation || head & LOG_WRITING != 0 {
            return None;
        }
        let info = self.cells.wide(at + 2).load(Acquire);
        if self.cells.wide(at).load(Acquire) != head || info >> TIME_BITS != log_tag(generation) {
            return None;
        }
        Some(LogEntry {
            generation,
            state: State::from_raw(head as u32 & LOG_STATE_MASK)?,
            time_ms: info & TIME_MASK,
            actor: (head as u32 >> LOG_ACTOR_SHIFT) & ACTOR_MASK as u32,
        })
    }

    /// Reads the log entry of the transition that made `generation`, and
    /// when it is not there, tells why: its writer has not published it yet
    /// (the control word moves first, the entry a moment later), or a newer
    /// generation holds its place.
    pub fn read_log(&self, generation: u32) -> LogRead {
        if let Some(entry) = self.log_entry(generation) {
            return LogRead::Ready(entry);
        }
        let head = self.cells.wide(log_slot(generation)).load(Acquire);
        // The generation in the place now: older (not written yet), the same
        // (being written), or newer (overwritten), counted modulo 2^32.
        let ahead = ((head >> 32) as u32).wrapping_sub(generation) as i32;
        if ahead > 0 {
            LogRead::Gone
        } else {
            LogRead::Pending
        }
    }

    /// Writes the log entry of the transition that made `generation`. The
    /// transitions call it right after moving the control word; it is public
    /// so that tests can race a writer held up between the two.
    ///
    /// A writer can be held up for longer than [`LOG_ENTRIES`] transitions
    /// (preempted, or its thread paused): the newest generation always keeps
    /// the entry, so a late writer of an older one writes nothing. The entry
    /// is claimed (head marked writing), then its info is written, then the
    /// head is published; readers take only a published head whose info
    /// carries its generation's tag.
    pub fn log_transition(&self, generation: u32, state: State, now_ms: u64) {
        let at = log_slot(generation);
        let head = self.cells.wide(at);
        let published = (u64::from(generation) << 32)
            | u64::from(self.actor << LOG_ACTOR_SHIFT)
            | u64::from(state as u32);
        let claim = published | LOG_WRITING;
        let mut seen = head.load(Acquire);
        loop {
            if !precedes((seen >> 32) as u32, generation) {
                return;
            }
            match head.compare_exchange_weak(seen, claim, AcqRel, Acquire) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        let info = self.cells.wide(at + 2);
        let mine = (log_tag(generation) << TIME_BITS) | (now_ms & TIME_MASK);
        let mut seen = info.load(Acquire);
        // A newer writer's info stays: that writer has claimed the head too.
        while tag_precedes(seen >> TIME_BITS, log_tag(generation)) {
            match info.compare_exchange_weak(seen, mine, AcqRel, Acquire) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        // Fails only if a newer writer claimed the entry meanwhile.
        let _ = head.compare_exchange(claim, published, AcqRel, Relaxed);
    }

    fn write_log(&self, word: u64, now: &impl Clock) {
        if let Some(state) = State::from_raw(state_raw(word)) {
            self.log_transition(generation(word), state, now.wall_ms());
        }
    }

    fn control(&self) -> &crate::cells::AtomicU64 {
        self.cells.wide(STATE)
    }

    fn timer(&self) -> &crate::cells::AtomicU64 {
        self.cells.wide(TIMER)
    }

    /// Reads the control, timer and probe words as one consistent view: the
    /// control word did not change while the others were read.
    fn view(&self) -> (u64, u64, View) {
        loop {
            let word = self.control().load(Acquire);
            let timer_word = self.timer().load(Acquire);
            let probes = self.cells.wide(HALF_OPEN).load(Acquire);
            if self.control().load(Acquire) != word {
                continue;
            }
            let generation = generation(word);
            let view = match State::from_raw(state_raw(word)) {
                Some(State::Closed) => View::Closed,
                Some(State::Open) => match timer_entry(timer_word, generation, Kind::Opened) {
                    Some(since) => View::Open { since },
                    None => View::OpenUnstamped,
                },
                Some(State::HalfOpen) => {
                    let (running, succeeded) = probes_of(probes, generation);
                    View::HalfOpen {
                        running,
                        succeeded,
                        probes,
                        lease: timer_entry(timer_word, generation, Kind::Lease),
                    }
                }
                None => View::Invalid,
            };
            return (word, timer_word, view);
        }
    }

    /// Moves the control word from `expected` to `to` with the next
    /// generation, and logs it. Returns the new word, or `None` if another
    /// caller moved it first.
    fn swap_control(&self, expected: u64, to: State, now: &impl Clock) -> Option<u64> {
        let next = control(to as u32, generation(expected).wrapping_add(1));
        self.control()
            .compare_exchange(expected, next, AcqRel, Acquire)
            .ok()?;
        self.write_log(next, now);
        Some(next)
    }

    /// Writes a timer entry for the generation of `word`, replacing
    /// `timer_word`, which was read while the control word was `word`.
    /// Returns whether this caller's entry was written.
    fn stamp_timer(&self, word: u64, timer_word: u64, kind: Kind, now: &impl Clock) -> bool {
        let entry = timer(generation(word), kind, now.mono_ms());
        self.timer()
            .compare_exchange(timer_word, entry, AcqRel, Acquire)
            .is_ok()
    }

    /// Stamps the opening that made control word `opened`, unless another
    /// caller has stamped it or the breaker has moved on.
    fn stamp_opening(&self, opened: u64, now: &impl Clock) {
        let timer_word = self.timer().load(Acquire);
        if self.control().load(Acquire) != opened {
            return;
        }
        if timer_entry(timer_word, generation(opened), Kind::Opened).is_none() {
            self.stamp_timer(opened, timer_word, Kind::Opened, now);
        }
    }

    fn reject(&self, stripe: Stripe) -> Admission {
        self.bump(stripe, REQUESTS);
        self.bump(stripe, REJECTIONS);
        Admission::Reject
    }

    fn count_marks(&self, marks: Marks, stripe: Stripe) {
        if marks.timed_out {
            self.bump(stripe, TIMEOUTS);
        }
        if marks.fallback {
            self.bump(stripe, FALLBACKS);
        }
        if marks.slow {
            self.bump(stripe, SLOW_CALLS);
        }
        if marks.filtered {
            self.bump(stripe, FILTERED);
        }
    }

    fn count_successes(&self, count: u64, now: &impl Clock, stripe: Stripe) {
        self.add(stripe, REQUESTS, count);
        self.add(stripe, SUCCESSES, count);
        raise(
            self.cells.wide(stripe_slot(stripe.0, LAST_SUCCESS_TIME)),
            now.wall_ms(),
        );
    }

    /// A success ends the run of failures. Most successes find it at 0
    /// already and write nothing to the shared header line.
    fn end_failure_run(&self) {
        let failures = self.cells.word(FAILURE_COUNT);
        if failures.load(Relaxed) != 0 {
            failures.store(0, Relaxed);
        }
    }

    /// Counts a failure; returns the run of consecutive failures it makes.
    fn count_failure(&self, now: &impl Clock, stripe: Stripe) -> u32 {
        self.bump(stripe, REQUESTS);
        self.bump(stripe, FAILURES);
        raise(self.cells.wide(LAST_FAILURE_TIME), now.wall_ms());
        (self.cells.word(FAILURE_COUNT).fetch_add(1, AcqRel) as u32).wrapping_add(1)
    }

    fn bump(&self, stripe: Stripe, offset: usize) {
        self.add(stripe, offset, 1);
    }

    fn add(&self, stripe: Stripe, offset: usize, count: u64) {
        self.cells
            .wide(stripe_slot(stripe.0, offset))
            .fetch_add(count, Relaxed);
    }
}

// ISOLATIONS (64-bit): epoch:48 (bits 16..63) | count:16. `reset()` starts a
// new epoch: a handle from before it could match again only after 2^48
// resets.
const ISOLATION_COUNT: u64 = MAX_ISOLATIONS as u64;

fn isolation_epoch(word: u64) -> u64 {
    word >> 16
}

// Log entry, two 64-bit words.
// Head: generation:32 | writing:1 | (unused):3 | actor:20 | state:8.
// Info: tag:20 (the generation's low bits) | time:44.
const ACTOR_BITS: u32 = 20;
const ACTOR_MASK: u64 = (1 << ACTOR_BITS) - 1;
const LOG_ACTOR_SHIFT: u32 = 8;
const LOG_STATE_MASK: u32 = 0xff;
const LOG_WRITING: u64 = 1 << 31;
const LOG_TAG_MASK: u64 = (1 << (64 - TIME_BITS)) - 1;

fn log_slot(generation: u32) -> usize {
    TRANSITION_LOG + (generation as usize % LOG_ENTRIES) * LOG_ENTRY_SLOTS
}

fn log_tag(generation: u32) -> u64 {
    u64::from(generation) & LOG_TAG_MASK
}

/// Whether generation `a` comes before `b` (wrapping: within 2^31 of each other).
fn precedes(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

/// [`precedes`] for log tags, which wrap at 2^20.
fn tag_precedes(a: u64, b: u64) -> bool {
    let distance = b.wrapping_sub(a) & LOG_TAG_MASK;
    distance != 0 && distance <= LOG_TAG_MASK >> 1
}

/// How far ahead of a caller's wall clock a stored time may be and still be
/// taken for another caller's slightly later reading; further ahead, the wall
/// clock was stepped back since it was stored.
pub const WALL_STEP_MS: u64 = 1000;

/// Raises a wall-clock time to `now_ms`; writes nothing when it is already
/// there. A time more than [`WALL_STEP_MS`] ahead of `now_ms` was stored
/// before the wall clock was stepped back: it is replaced, so the slot says
/// when the latest call happened on the clock as it is now.
fn raise(slot: &crate::cells::AtomicU64, now_ms: u64) {
    let mut seen = slot.load(Relaxed);
    while seen < now_ms || seen > now_ms.saturating_add(WALL_STEP_MS) {
        match slot.compare_exchange_weak(seen, now_ms, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => seen = actual,
        }
    }
}
