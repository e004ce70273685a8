//! Typed helpers: one method per everyday command, returning values with units in their names.

use std::string::{String, ToString};
use std::vec::Vec;

use super::conn::{Client, Expect};
use super::{ClientError, Response};
use crate::wire::command::{
    Calibration, Command, DailyRestart, EnergyReset, MqttServerSettings, ServerAddr,
    WifiCredentials,
};
use crate::wire::log::LogLevel;

/// A value per phase `[L1, L2, L3]`; `None` where the meter reports `null` (undefined).
pub type Phases = [Option<f64>; 3];

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
    pub energy_wh: Phases,
    /// When the count started, Unix seconds.
    pub start_unix_s: Option<f64>,
    /// The same, as the meter's text `MM/DD/YYYY HH:MM:SS.mmm`.
    pub start: Option<String>,
    /// Whole days since then.
    pub days: Option<f64>,
}

fn phases(r: &Response, key: &str) -> Result<Phases, ClientError> {
    r.phases(key).ok_or_else(|| {
        ClientError::Protocol(std::format!(
            "reply to `{}` lacks `{key}`",
            r.cmd().unwrap_or("?")
        ))
    })
}

impl Client {
    /// `info`, asked now (the connect-time one is [`Client::connect_info`]).
    pub async fn info(&self) -> Result<Response, ClientError> {
        self.request(&Command::Info).await
    }

    /// `getPower`.
    pub async fn power(&self) -> Result<Power, ClientError> {
        let r = self.request(&Command::GetPower).await?;
        Ok(Power {
            active_w: phases(&r, "activePower")?,
            reactive_var: phases(&r, "reactivePower")?,
            apparent_va: phases(&r, "apparentPower")?,
        })
    }

    /// `getVoltage`: RMS voltage per phase, V.
    pub async fn voltage_v(&self) -> Result<Phases, ClientError> {
        phases(&self.request(&Command::GetVoltage).await?, "voltage")
    }

    /// `getCurrent`: RMS current per phase, mA.
    pub async fn current_ma(&self) -> Result<Phases, ClientError> {
        phases(&self.request(&Command::GetCurrent).await?, "current")
    }

    /// `getEnergy`.
    pub async fn energy(&self) -> Result<Energy, ClientError> {
        let r = self.request(&Command::GetEnergy).await?;
        Ok(Energy {
            energy_wh: phases(&r, "energy")?,
            start_unix_s: r.f64("startTs"),
            start: r.str("start").map(str::to_string),
            days: r.f64("days"),
        })
    }

    /// `getPeriod`: line frequency per phase, Hz (despite the command's name).
    pub async fn frequency_hz(&self) -> Result<Phases, ClientError> {
        phases(&self.request(&Command::GetPeriod).await?, "period")
    }

    /// `getPhaseAngle`: φ per phase, degrees, positive when the current lags.
    pub async fn phase_angle_deg(&self) -> Result<Phases, ClientError> {
        phases(&self.request(&Command::GetPhaseAngle).await?, "phase")
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
    pub async fn set_calibration(&self, cal: Calibration) -> Result<Response, ClientError> {
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
        let answer = self
            .send(Command::GetLog.encode(), "getLog".into(), Expect::GetLog)
            .await?;
        answer.response.check("getLog")?;
        let mut rows = Vec::new();
        for dump in &answer.preludes {
            rows.extend(log_rows(dump.msg().unwrap_or_default()));
        }
        Ok(rows)
    }

    /// `?`: answers `Setup done` and stops this connection's sampling session.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.send("?".into(), "?".into(), Expect::SetupDone)
            .await
            .map(|_| ())
    }
}

/// Splits a getLog dump (`*** LOGFile *** row//nrow//n*** LOGFile *** `) into rows.
pub fn log_rows(dump: &str) -> Vec<String> {
    dump.split("//n")
        .flat_map(|s| s.split('\n'))
        .map(|s| s.replace("*** LOGFile ***", ""))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_dump_rows() {
        assert_eq!(
            log_rows(
                "*** LOGFile *** [E]03/02 11:26:20: Cannot connect to MQTT Server -//n*** LOGFile *** "
            ),
            ["[E]03/02 11:26:20: Cannot connect to MQTT Server -"]
        );
        assert_eq!(
            log_rows(
                "*** LOGFile *** //n[W]01/01 00:00:01: a//n[E]01/01 00:00:02: b//n*** LOGFile *** "
            ),
            ["[W]01/01 00:00:01: a", "[E]01/01 00:00:02: b"]
        );
        assert!(log_rows("*** LOGFile *** *** LOGFile *** ").is_empty());
    }
}
