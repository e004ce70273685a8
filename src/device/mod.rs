//! The meter as a sans-IO state machine (quinn-proto's `handle_*` / `poll_*` shape).
//!
//! **API contract** (bindings — the host simulator, the ESP32-C3 firmware, the tests — are written
//! against exactly these names and signatures; the engine may add items, never rename or remove them):
//!
//! ```text
//! Device::new(options: DeviceOptions, restored: Restored, now: Instant) -> Device
//! Device::handle_connected(&mut self, now: Instant, kind: ConnKind) -> ConnId
//! Device::handle_input(&mut self, conn: ConnId, now: Instant, bytes: &[u8])
//! Device::handle_closed(&mut self, conn: ConnId, now: Instant)
//! Device::handle_samples(&mut self, now: Instant, block: &SampleBlock<'_>)
//! Device::handle_timeout(&mut self, now: Instant)
//! Device::handle_ntp(&mut self, now: Instant, result: NtpResult)
//! Device::handle_mqtt(&mut self, now: Instant, topic: &str, payload: &[u8])
//! Device::handle_mqtt_connected(&mut self, now: Instant, connected: bool)
//! Device::handle_shutdown(&mut self, now: Instant)          // persist everything (SIGTERM, power-fail)
//! Device::poll_output(&mut self, conn: ConnId, buf: &mut [u8]) -> usize   // bytes to write to `conn`, 0 = none
//! Device::poll_event(&mut self) -> Option<Event>
//! Device::poll_timeout(&self) -> Option<Instant>
//! Device::wall_time(&self, now: Instant) -> Instant     // `now` corrected by the last NTP sync
//! Device::config(&self) -> &Config                       // name, servers, ... (for mDNS, MQTT bridge)
//! ```
//!
//! `Instant` is the binding's clock in microseconds since the Unix epoch (host: `SystemTime`; firmware:
//! RTC/SNTP). The engine never reads a clock; it corrects `now` by the NTP offset it was given.
//!
//! `Event` (non-exhaustive) carries what the binding must do:
//! `Persist(Record)`, `NtpRequest { server: String }`, `Restart(RestartKind)` (after the output of every
//! connection has drained), `Publish { topic: String, payload: Vec<u8>, retain: bool }`,
//! `SendDatagram { addr: SocketAddr, bytes: Vec<u8> }`, `Connect { host: String, port: u16 }` (stream
//! server; the binding resolves the name and reports with `handle_connected(ConnKind::StreamServer ..)`),
//! `Close(ConnId)`, `MqttConfigure(Option<MqttSettings>)` (connect/reconnect the broker or disconnect),
//! `Announce { name: String }` (mDNS name changed).
//!
//! `ConnKind`: `Command { peer: SocketAddr }` (TCP 54321), `Serial`, `RawStream { peer: SocketAddr }`
//! (TCP 54322 reader: raw f32le, no commands), `StreamServer { peer: SocketAddr }` (outgoing to port 54322
//! of the configured server, treated like a command connection).
//!
//! `SampleBlock<'a>`: interleaved six-channel samples in volts and amps
//! (`v_l1,i_l1,v_l2,i_l2,v_l3,i_l3`), `rate_hz: u32`, `samples: &'a [f32]`, taken at `start: Instant`.
//!
//! `Restored`: what the binding loaded from its store at boot (`Restored::default()` = nothing stored);
//! `Record`: a versioned, checksummed record the binding hands to its store (`Record::encode`).
//!
//! `DeviceOptions`: build-time facts (version, compiled, ip, has_serial, psram/rtc flags, buffer size,
//! max_clients, intervals for status / persist / reconnect, an access token) the binding supplies.
