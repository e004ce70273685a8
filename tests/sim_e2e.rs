//! End-to-end tests of the host simulator (`smartmeter-sim`) against real peers: plain TCP clients,
//! ffmpeg, mosquitto, a pseudo-terminal, an mDNS resolver, an SNTP responder and a stream server.
//!
//! Every test starts its own simulator on free ports (`--port 0 --stream-port 0`) with its own state
//! directory, so they run in parallel. Tests needing an outside program skip loudly when it is missing,
//! unless `SMARTMETER_REQUIRE_PEERS=1`.

mod common;

#[path = "sim/data.rs"]
mod data;
#[path = "sim/ffmpeg.rs"]
mod ffmpeg;
#[path = "sim/grid.rs"]
mod grid;
#[path = "sim/measure.rs"]
mod measure;
#[path = "sim/mqtt.rs"]
mod mqtt;
#[path = "sim/net.rs"]
mod net;
#[path = "sim/options.rs"]
mod options;
#[path = "sim/persist.rs"]
mod persist;
#[path = "sim/robust.rs"]
mod robust;
#[path = "sim/tcp.rs"]
mod tcp;
