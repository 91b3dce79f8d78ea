//! The fleet agent of circuit-breaker-js: one breaker shared by many hosts
//! through Redis (>= 6.2) or Valkey, standalone or Redis Cluster.
//!
//! Every call stays in the host's shared memory; only state changes travel.
//! A host that trips votes; the fleet opens when `quorum` distinct hosts
//! voted within the vote window; the store grants one probe lease for the
//! whole fleet; isolate, reset and disable act on every host. The protocol
//! (keys, scripts, versions, outage behaviour) is described in README.md.
//!
//! One [`Agent`] per process serves every breaker: one thread, one tokio
//! runtime, one command connection and one subscription connection.

mod agent;
mod connection;
mod event;
mod options;
mod store;

pub use agent::{Agent, BreakerHandle, Sink};
pub use event::{CloseReason, FleetEvent, Lease, OpenReason, Version};
pub use options::{AgentOptions, BreakerSpec, FleetError};
pub use store::Keys;
