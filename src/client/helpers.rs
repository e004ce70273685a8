//! Typed helpers: one method per everyday command, returning values with units in their names.

use std::string::{String, ToString};
use std::vec::Vec;

use super::conn::Client;
use super::connection::{Request, Response};
use super::error::ClientError;
use crate::wire::command::{
    CalibrationArgs, Command, DailyRestart, EnergyReset, MqttServerSettings, ServerAddr,
    WifiCredentials,
};
use crate::wire::log::LogLevel;
use crate::wire::pq::{PqAggregate, PqEvent, PqInterval};
use crate::wire::reply::{Phases, Reply};

/// `getPower`.
#[derive(Debug, Clone, PartialEq)]
pub struct Power {
    /// Active power P per phase, W.
    pub active_w: Phases,
    /// Reactive power Q₁ per phase, var.
    pub reactive_var: Phases,
    /// Apparent power S per phase, VA.
    pub apparent_va: Phases,
}

/// `getEnergy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Energy {
    /// Net active energy per phase since the reset, Wh.
    pub energy_wh: [f64; 3],
    /// When the count started, whole Unix seconds.
    pub start_unix_s: i64,
    /// The same, as the meter's text `MM/DD/YYYY HH:MM:SS.mmm`.
    pub start: String,
    /// Whole days since then.
    pub days: u32,
}

/// A reply of another shape than the command's.
fn unexpected(cmd: &str, r: &Response) -> ClientError {
    ClientError::Protocol(std::format!("unexpected reply to `{cmd}`: {}", r.json()))
}

impl Client {
    /// `info`, asked now (the connect-time one is [`Client::connect_info`]).
    pub async fn info(&self) -> Result<Response, ClientError> {
        self.request(&Command::Info).await
    }

    /// `getPower`.
    pub async fn power(&self) -> Result<Power, ClientError> {
        let r = self.request(&Command::GetPower).await?;
        match r.reply() {
            Reply::Power {
                active_w,
                reactive_var,
                apparent_va,
            } => Ok(Power {
                active_w: *active_w,
                reactive_var: *reactive_var,
                apparent_va: *apparent_va,
            }),
            _ => Err(unexpected("getPower", &r)),
        }
    }

    /// `getVoltage`: RMS voltage per phase, V.
    pub async fn voltage_v(&self) -> Result<Phases, ClientError> {
        let r = self.request(&Command::GetVoltage).await?;
        match r.reply() {
            Reply::Voltage { voltage_v } => Ok(*voltage_v),
            _ => Err(unexpected("getVoltage", &r)),
        }
    }

    /// `getCurrent`: RMS current per phase, mA.
    pub async fn current_ma(&self) -> Result<Phases, ClientError> {
        let r = self.request(&Command::GetCurrent).await?;
        match r.reply() {
            Reply::Current { current_ma } => Ok(*current_ma),
            _ => Err(unexpected("getCurrent", &r)),
        }
    }

    /// `getEnergy`.
    pub async fn energy(&self) -> Result<Energy, ClientError> {
        let r = self.request(&Command::GetEnergy).await?;
        match r.into_reply() {
            Reply::Energy {
                energy_wh,
                start_ts_s,
                start,
                days,
            } => Ok(Energy {
                energy_wh,
                start_unix_s: start_ts_s,
                start,
                days,
            }),
            other => Err(ClientError::Protocol(std::format!(
                "unexpected reply to `getEnergy`: {other}"
            ))),
        }
    }

    /// `getPeriod`: line frequency per phase, Hz (despite the command's name).
    pub async fn frequency_hz(&self) -> Result<Phases, ClientError> {
        let r = self.request(&Command::GetPeriod).await?;
        match r.reply() {
            Reply::Period { frequency_hz } => Ok(*frequency_hz),
            _ => Err(unexpected("getPeriod", &r)),
        }
    }

    /// `getPhaseAngle`: φ per phase, degrees, positive when the current lags.
    pub async fn phase_angle_deg(&self) -> Result<Phases, ClientError> {
        let r = self.request(&Command::GetPhaseAngle).await?;
        match r.reply() {
            Reply::PhaseAngle { phase_deg } => Ok(*phase_deg),
            _ => Err(unexpected("getPhaseAngle", &r)),
        }
    }

    /// `getPQ` (docs/protocol.md §11.5): the last complete aggregate of `interval`. Before one
    /// has completed the meter refuses with `No complete <interval> interval yet`
    /// ([`ClientError::Refused`]).
    pub async fn pq(&self, interval: PqInterval) -> Result<PqAggregate, ClientError> {
        let r = self.request(&Command::GetPq { interval }).await?;
        match r.into_reply() {
            Reply::Pq(a) => Ok(*a),
            other => Err(ClientError::Protocol(std::format!(
                "unexpected reply to `getPQ`: {other}"
            ))),
        }
    }

    /// `getEvents` (docs/protocol.md §11.6): one page of ended power-quality events with an id
    /// above `since` (oldest first, at most 16) and the `since` to ask with next. An empty page
    /// means there is nothing newer; the meter never answers a `next` beyond its last id, so a
    /// caller that remembered a higher one (the meter's events were lost) catches up.
    pub async fn events_page(&self, since: u32) -> Result<(Vec<PqEvent>, u32), ClientError> {
        let r = self.request(&Command::GetEvents { since }).await?;
        match r.into_reply() {
            Reply::Events { events, next } => Ok((events, next)),
            other => Err(ClientError::Protocol(std::format!(
                "unexpected reply to `getEvents`: {other}"
            ))),
        }
    }

    /// `mdns`: renames the meter (1-24 of `[A-Za-z0-9-]`).
    pub async fn set_name(&self, name: &str) -> Result<Response, ClientError> {
        if !crate::wire::command::is_valid_mdns_name(name) {
            return Err(ClientError::InvalidCommand(
                "MDNS name must be 1-24 characters [A-Za-z0-9-]".into(),
            ));
        }
        self.request(&Command::Mdns {
            name: name.to_string(),
        })
        .await
    }

    /// `addWifi`.
    pub async fn add_wifi(&self, ssid: &str, pwd: &str) -> Result<Response, ClientError> {
        self.request(&Command::AddWifi(WifiCredentials {
            ssid: ssid.to_string(),
            pwd: pwd.to_string(),
        }))
        .await
    }

    /// `delWifi`.
    pub async fn del_wifi(&self, ssid: &str) -> Result<Response, ClientError> {
        self.request(&Command::DelWifi {
            ssid: ssid.to_string(),
        })
        .await
    }

    /// `mqttServer`.
    pub async fn set_mqtt_server(
        &self,
        settings: MqttServerSettings,
    ) -> Result<Response, ClientError> {
        self.request(&Command::MqttServer(settings)).await
    }

    /// `streamServer`.
    pub async fn set_stream_server(&self, server: ServerAddr) -> Result<Response, ClientError> {
        self.request(&Command::StreamServer { server }).await
    }

    /// `timeServer`.
    pub async fn set_time_server(&self, server: ServerAddr) -> Result<Response, ClientError> {
        self.request(&Command::TimeServer { server }).await
    }

    /// `calibration`.
    pub async fn set_calibration(&self, cal: CalibrationArgs) -> Result<Response, ClientError> {
        self.request(&Command::Calibration(cal)).await
    }

    /// `dailyRestart`.
    pub async fn set_daily_restart(&self, at: DailyRestart) -> Result<Response, ClientError> {
        self.request(&Command::DailyRestart(at)).await
    }

    /// `log`: this connection's log level.
    pub async fn set_log_level(&self, level: LogLevel) -> Result<Response, ClientError> {
        self.request(&Command::Log { level }).await
    }

    /// `resetEnergy`.
    pub async fn reset_energy(&self, reset: EnergyReset) -> Result<Response, ClientError> {
        self.request(&Command::ResetEnergy(reset)).await
    }

    /// `ntp`.
    pub async fn ntp(&self) -> Result<Response, ClientError> {
        self.request(&Command::Ntp).await
    }

    /// `clearLog`.
    pub async fn clear_log(&self) -> Result<Response, ClientError> {
        self.request(&Command::ClearLog).await
    }

    /// `getLog`: the persistent log's rows, oldest first (the `*** LOGFile ***` markers removed,
    /// `//n` separators split).
    pub async fn get_log(&self) -> Result<Vec<String>, ClientError> {
        let d = self
            .send(Request::Command(Command::GetLog), "getLog")
            .await?;
        let mut replies = d.answer.replies;
        replies
            .pop()
            .ok_or_else(|| ClientError::Protocol("no reply to `getLog`".into()))?
            .check("getLog")?;
        let mut rows = Vec::new();
        for r in replies {
            if let Reply::GetLogDump { rows: dump } = r.into_reply() {
                rows.extend(dump);
            }
        }
        Ok(rows)
    }

    /// `?`: answers `Setup done` and stops this connection's sampling session.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.send(Request::Command(Command::Availability), "?")
            .await
            .map(|_| ())
    }
}
