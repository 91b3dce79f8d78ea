//! What the agent tells a registered breaker.

use std::cmp::Ordering;
use std::fmt;

/// The version of a fleet record: `epoch` is the store's time (µs) when the
/// record was created, `seq` counts its writes. A record created again after
/// its key vanished has a later epoch, so it outranks every older version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Version {
    pub epoch: u64,
    pub seq: u64,
}

impl Version {
    /// No record in the store (never written, or vanished).
    pub const NONE: Version = Version { epoch: 0, seq: 0 };
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.epoch, self.seq).cmp(&(other.epoch, other.seq))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

/// Why the fleet is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenReason {
    /// `quorum` distinct hosts voted within the vote window.
    Quorum,
    /// An operator called `isolate()` on some host (wins over everything).
    Isolated,
    /// The fleet's probe failed: open again, for a longer period.
    Reopened,
    /// The record vanished while open and a host wrote its view back.
    Restored,
}

/// Why the fleet is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// No record yet (or none any more): nothing ever opened the fleet.
    Fresh,
    /// The fleet's probe succeeded.
    Probe,
    /// Some host called `reset()`.
    Reset,
    /// The last isolation was released.
    Released,
    /// Some host called `disable()`.
    Disabled,
}

/// The probe lease the store granted to this host: admit exactly one local
/// call and report its result with `BreakerHandle::probe_result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Opaque, unique per grant: `epoch:seq:n:host`.
    pub token: String,
    /// The version of the open record the lease was granted in.
    pub version: Version,
    /// How long the lease lasts from its grant (store time).
    pub lease_ms: u64,
}

/// An event for one registered breaker. Open and Closed carry the whole
/// fleet view, so a binding adopts it as it is (they may repeat: after a
/// reconnect the current view is always sent again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetEvent {
    /// The fleet is open: open this host.
    Open {
        version: Version,
        /// When it opened, store clock (ms since the epoch); 0 when isolated
        /// before anything opened it.
        since_server_ms: u64,
        /// How long until the fleet's probe may start, measured on the store
        /// when the view was read; `None` while isolated.
        retry_in_ms: Option<u64>,
        reason: OpenReason,
        /// Failed probes since the fleet last closed (the backoff).
        reopenings: u32,
        disabled: bool,
    },
    /// The fleet is closed: close this host.
    Closed {
        version: Version,
        reason: CloseReason,
        disabled: bool,
    },
    /// This host holds the fleet's one probe.
    ProbeGranted { lease: Lease },
    /// The store cannot be reached (or refused this agent): run host-local.
    /// Sent once per outage.
    Degraded { reason: String },
    /// The store answers again; the fleet's current view follows at once.
    Recovered,
}
