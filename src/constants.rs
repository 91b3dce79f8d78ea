//! The numbers the facade and the binding share, defined here once: the
//! facade reads them from `constants()` when it loads (lib/constants.js).

use breaker_core::{layout, Marks, State, Transition, MAX_ISOLATIONS};
use napi_derive::napi;

/// `admit` answers a probe ticket (>= 0), or one of these.
pub(crate) const ADMIT_RUN: f64 = -2.0;
pub(crate) const ADMIT_REJECT: f64 = -1.0;
/// Added to `admit`'s answer when the call made a transition: the answer is
/// then at least `ADMIT_TRANSITION + ADMIT_RUN`, above every ticket (< 2^32),
/// and `answer - ADMIT_TRANSITION` is the decision; exact in a double. (The
/// answers without a transition stay small integers: no number is
/// allocated for them.)
pub(crate) const ADMIT_TRANSITION: f64 = (1u64 << 33) as f64;

/// Bits of the `marks` argument of the per-call functions.
pub(crate) const MARK_TIMED_OUT: u32 = 1;
pub(crate) const MARK_FALLBACK: u32 = 2;
pub(crate) const MARK_SLOW: u32 = 4;
pub(crate) const MARK_FILTERED: u32 = 8;

/// Isolation epochs are below this (48 bits): exact in a JavaScript number.
pub(crate) const EPOCH_LIMIT: f64 = (1u64 << 48) as f64;

pub(crate) fn marks(bits: u32) -> Marks {
    Marks {
        timed_out: bits & MARK_TIMED_OUT != 0,
        fallback: bits & MARK_FALLBACK != 0,
        slow: bits & MARK_SLOW != 0,
        filtered: bits & MARK_FILTERED != 0,
    }
}

/// What every mutator answers: 0 if it made no transition, else 1 (it
/// opened the breaker), 2 (half-opened) or 3 (closed).
pub(crate) fn transition_code(transition: Option<Transition>) -> u32 {
    match transition {
        None => 0,
        Some(Transition::Opened) => 1,
        Some(Transition::HalfOpened) => 2,
        Some(Transition::Closed) => 3,
    }
}

/// The numbers the facade and the binding share.
#[napi(object)]
pub struct Constants {
    /// `STATE_NAMES[state]` names a value of the `STATE` slot.
    #[napi(js_name = "STATE_NAMES")]
    pub state_names: Vec<String>,
    #[napi(js_name = "ADMIT_RUN")]
    pub admit_run: f64,
    #[napi(js_name = "ADMIT_REJECT")]
    pub admit_reject: f64,
    #[napi(js_name = "ADMIT_TRANSITION")]
    pub admit_transition: f64,
    #[napi(js_name = "MARK_TIMED_OUT")]
    pub mark_timed_out: u32,
    #[napi(js_name = "MARK_FALLBACK")]
    pub mark_fallback: u32,
    #[napi(js_name = "MARK_SLOW")]
    pub mark_slow: u32,
    #[napi(js_name = "MARK_FILTERED")]
    pub mark_filtered: u32,
    /// Isolations one buffer may hold at once.
    #[napi(js_name = "MAX_ISOLATIONS")]
    pub max_isolations: u32,
    /// Transitions the shared log keeps: the last `LOG_ENTRIES`.
    #[napi(js_name = "LOG_ENTRIES")]
    pub log_entries: u32,
}

/// The numbers the facade and the binding share (see `Constants`).
#[napi(catch_unwind)]
pub fn constants() -> Constants {
    Constants {
        state_names: State::ALL.iter().map(|s| s.name().to_string()).collect(),
        admit_run: ADMIT_RUN,
        admit_reject: ADMIT_REJECT,
        admit_transition: ADMIT_TRANSITION,
        mark_timed_out: MARK_TIMED_OUT,
        mark_fallback: MARK_FALLBACK,
        mark_slow: MARK_SLOW,
        mark_filtered: MARK_FILTERED,
        max_isolations: MAX_ISOLATIONS,
        log_entries: layout::LOG_ENTRIES as u32,
    }
}

/// The slot names, in index order: `layout()[i]` names slot `i`.
#[napi(catch_unwind)]
pub fn layout() -> Vec<String> {
    layout::names()
}
