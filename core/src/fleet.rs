//! Fleet mode's local side: what the fleet agent (in the binding) does to a
//! host's shared memory when the fleet's state changes.
//!
//! - The **fleet hold** (bit 1 of `MODE`, `words::MODE_FLEET_HOLD`): while set,
//!   `admit` holds the breaker OPEN exactly as an isolation does, so no local
//!   probe starts while the fleet is open. It is a flag, not a count: every
//!   process of a host (sharing a breaker file) sets and clears the same bit.
//! - The **fleet lease** ([`FLEET_LEASE`]): the fleet probe lease the host
//!   acts on. The process granted a lease takes the slot from 0 with a
//!   compare-and-swap before it lets a local probe through, and gives it back
//!   when the probe's episode ends, so one process of a host acts on a lease
//!   at a time.
//!
//! Transitions made here are logged with the actor of the breaker they are
//! made through; the binding builds the agent's breakers with a fleet actor
//! id, so listeners can tell the fleet's transitions from local ones.

use std::sync::atomic::Ordering::{AcqRel, Acquire};

use crate::breaker::{Breaker, Transition};
use crate::cells::Cells;
use crate::clock::Clock;
use crate::layout::{FLEET_LEASE, MODE};
use crate::words::MODE_FLEET_HOLD;

impl<C: Cells> Breaker<C> {
    /// Whether the fleet holds this host OPEN.
    pub fn fleet_held(&self) -> bool {
        self.cells().word(MODE).load(Acquire) & MODE_FLEET_HOLD != 0
    }

    /// The fleet is open: hold this host OPEN (a disabled host only keeps
    /// the flag). Returns the transition to OPEN, if this made it.
    pub fn fleet_hold(&self, now: impl Clock) -> Option<Transition> {
        self.cells().word(MODE).fetch_or(MODE_FLEET_HOLD, AcqRel);
        if self.overrides().disabled {
            return None;
        }
        self.hold_open(&now)
    }

    /// The fleet closed: the hold ends, and a host it held closes (unless
    /// isolated here). A host the fleet did not hold (it tripped on its own
    /// and the fleet never opened) is left as it is.
    pub fn fleet_close(&self, now: impl Clock) -> Option<Transition> {
        let before = self.cells().word(MODE).fetch_and(!MODE_FLEET_HOLD, AcqRel);
        if before & MODE_FLEET_HOLD == 0 || self.overrides().isolations > 0 {
            return None;
        }
        self.close_now(&now)
    }

    /// The store is away: the hold ends and the host runs on its own from
    /// its current state (an OPEN host probes after its own open period).
    /// Returns whether it was held.
    pub fn fleet_release(&self) -> bool {
        self.cells().word(MODE).fetch_and(!MODE_FLEET_HOLD, AcqRel) & MODE_FLEET_HOLD != 0
    }

    /// This host holds the fleet's probe lease `lease` (not 0): takes the
    /// lease slot from 0, drops the hold and starts a half-open episode, so
    /// the next call anywhere on the host is the fleet's probe. Returns the
    /// episode's generation, or `None` (nothing changed) if another process
    /// of the host is acting on a lease or the host is isolated.
    pub fn fleet_probe(&self, lease: i32, now: impl Clock) -> Option<u32> {
        if lease == 0 || self.overrides().isolations > 0 {
            return None;
        }
        self.cells()
            .word(FLEET_LEASE)
            .compare_exchange(0, lease, AcqRel, Acquire)
            .ok()?;
        self.cells().word(MODE).fetch_and(!MODE_FLEET_HOLD, AcqRel);
        match self.force_half_open_at(now) {
            Some(Transition::HalfOpened) => Some(self.generation()),
            _ => {
                self.fleet_end_lease(lease);
                None
            }
        }
    }

    /// The lease slot, if it still holds `lease`, goes back to 0.
    pub fn fleet_end_lease(&self, lease: i32) -> bool {
        self.cells()
            .word(FLEET_LEASE)
            .compare_exchange(lease, 0, AcqRel, Acquire)
            .is_ok()
    }

    /// The fleet lease this host is acting on, 0 if none.
    pub fn fleet_lease(&self) -> i32 {
        self.cells().word(FLEET_LEASE).load(Acquire)
    }
}
