//! End-to-end tests of the host simulator (`smartmeter-sim`) against real peers: plain TCP clients,
//! ffmpeg, mosquitto, a pseudo-terminal, an mDNS resolver, an SNTP responder and a stream server.
//!
//! Every test starts its own simulator on free ports (`--port 0 --stream-port 0`) with its own state
//! directory, so they run in parallel. Tests needing an outside program skip loudly when it is missing,
//! unless `SMARTMETER_REQUIRE_PEERS=1`.

// The support modules are shared with the flat test crates (`tests/cli_sim.rs`, `tests/collect.rs`,
// ...), which find them as `tests/<name>/mod.rs`; a crate rooted at `tests/sim_e2e/main.rs` looks
// for its modules next to `main.rs`, so these two name their file.
#[path = "../ha_support/mod.rs"]
mod ha_support;
#[path = "../peer_support/mod.rs"]
mod peer_support;
#[path = "../sim_support/mod.rs"]
mod sim_support;

mod data;
mod ffmpeg;
mod grid;
mod homeassistant;
mod measure;
mod mqtt;
mod net;
mod options;
mod persist;
mod robust;
mod tcp;
