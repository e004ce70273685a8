//! Mapping the command line and host results onto the engine's types.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::net::SocketAddr;

use crate::device::store::record::Pick;
use crate::device::{Config, DeviceOptions, NtpResult, Record, RecordKind};
use crate::hal::Store as _;
use crate::sim::cli::Args;
use crate::sim::grid::SOURCE_RATE_HZ;
use crate::sim::ntp::{NtpError, SntpSample};
use crate::sim::store::FileStore;

/// The engine options of this simulator run.
pub fn from_args(args: &Args, local: SocketAddr) -> DeviceOptions {
    let defaults = DeviceOptions::default();
    DeviceOptions {
        version: defaults.version.clone(),
        compiled: concat!("smartmeter-sim ", env!("CARGO_PKG_VERSION")).into(),
        ip: local.ip().to_string(),
        has_serial: args.serial,
        max_clients: args.max_clients,
        idle_timeout: args.idle_timeout,
        status_interval: args.status_interval,
        persist_interval: args.persist_interval,
        reconnect_interval: args.reconnect_interval,
        // `--token ''` removes the stored token (see `apply_overrides`): no token to impose.
        token: args.token.clone().filter(|t| !t.is_empty()),
        source_rate_hz: SOURCE_RATE_HZ,
        // A host has memory to spare: 1/8 s of a full-rate stream per connection, 1/2 s of samples.
        out_queue_bytes: 96 * 1024,
        sample_ring_bytes: 384 * 1024,
        buffer_size: 384 * 1024,
        ..defaults
    }
}

/// The firmware version the simulated meter reports (`info`'s `version`) and announces in its mDNS
/// TXT record: the device's, not this crate's.
pub fn firmware_version() -> String {
    DeviceOptions::default().version.to_string()
}

/// Writes `--name` / `--mqtt` / `--token` into the stored settings (a new record, as the engine
/// would), so they override what was stored and persist like a command would.
///
/// The token is persisted at start, not only when a later command happens to save the settings, so
/// that what a restart without `--token` does is the same every time: it keeps the token. `--token ''`
/// removes it from the store.
pub fn apply_overrides(args: &Args, store: &mut FileStore) -> Result<(), String> {
    if args.name.is_none() && args.mqtt.is_none() && args.token.is_none() {
        return Ok(());
    }
    let restored = crate::device::driver::restore(store);
    let (mut config, seq) = match restored.pick(RecordKind::Settings) {
        Pick::Found(r) => (
            serde_json::from_slice::<Config>(r.payload()).unwrap_or_default(),
            r.seq().wrapping_add(1),
        ),
        _ => (Config::default(), 0),
    };
    if let Some(name) = &args.name {
        config.name.clone_from(name);
    }
    if let Some(m) = &args.mqtt {
        config.mqtt_server = m.to_string();
        config.mqtt_port = None;
    }
    if let Some(t) = &args.token {
        config.token = (!t.is_empty()).then(|| t.clone());
    }
    let payload = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
    let rec = Record::new(RecordKind::Settings, seq, payload).map_err(|e| e.to_string())?;
    store
        .save(rec.slot(), rec.bytes())
        .map_err(|e| format!("cannot write settings: {e}"))
}

/// An SNTP outcome as the engine's NTP result.
pub fn ntp_result(r: Result<SntpSample, NtpError>) -> NtpResult {
    match r {
        Ok(s) => NtpResult::Synced {
            offset_us: s.offset_us,
            round_trip_us: s.round_trip_us,
        },
        Err(e) => {
            tracing::info!("ntp: {e}");
            NtpResult::Failed
        }
    }
}
