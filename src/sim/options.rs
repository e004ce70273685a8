//! Mapping the command line and host results onto the engine's types.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::net::SocketAddr;

use crate::device::{DeviceOptions, MqttSettings, NtpResult};
use crate::sim::cli::{Args, HostPort};
use crate::sim::mqtt::BrokerConfig;
use crate::sim::ntp::{NtpError, SntpSample};

/// Default MQTT port.
pub const MQTT_PORT: u16 = 1883;

/// The engine options of this simulator run.
pub fn from_args(args: &Args, local: SocketAddr) -> DeviceOptions {
    let mut o = DeviceOptions::default();
    o.ip = local.ip().to_string();
    o.has_serial = args.serial;
    o.max_clients = args.max_clients;
    o.status_interval = args.status_interval;
    o.persist_interval = args.persist_interval;
    o.reconnect_interval = args.reconnect_interval;
    o.token = args.token.clone();
    o.name = args.name.clone();
    o.mqtt_server = args.mqtt.as_ref().map(HostPort::to_string);
    o
}

/// The broker the bridge connects to.
pub fn broker(s: &MqttSettings, _override: Option<&HostPort>) -> BrokerConfig {
    BrokerConfig {
        host: s.host.clone(),
        port: s.port,
        user: s.user.clone(),
        pwd: s.pwd.clone(),
        name: s.client_id.clone(),
    }
}

/// An SNTP outcome as the engine's NTP result.
pub fn ntp_result(r: Result<SntpSample, NtpError>) -> NtpResult {
    match r {
        Ok(s) => NtpResult::Synced {
            offset_us: s.offset_us,
            round_trip_us: s.round_trip_us,
        },
        Err(_) => NtpResult::Failed,
    }
}
