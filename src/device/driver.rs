//! The one loop that wires a [`Device`] to HAL implementations: every binding (the ESP32-C3 firmware,
//! the host simulator, the tests) goes through it, so a binding only supplies its traits and its
//! sockets.
//!
//! [`Driver::pump`] is one round: samples in ([`Driver::feed_source`]), due timeouts
//! ([`Driver::run_timers`]), and the engine's actions out ([`Driver::serve_actions`]): `Persist` is
//! written to the [`Store`], `Restart` calls [`System::restart`], and everything that needs the network
//! is handed back to the binding in order. A binding that wakes up for other reasons (a message, a
//! socket) calls the parts it needs.

use alloc::vec::Vec;

use super::{Action, ConnId, Device, DeviceOptions, Instant, Record, Restored};
use crate::hal::{
    Block, Clock, MAX_RECORD_BYTES, RawBlock, SampleSource, SlotId, SourceSample, Store, System,
};

/// Source frames (six values) the driver reads per [`SampleSource::read`].
pub const READ_FRAMES: usize = 512;

/// Loads every record slot from a store into a [`Restored`] for [`Device::new`]. Slots that fail to
/// read are treated as empty.
pub fn restore<S: Store>(store: &mut S) -> Restored {
    let mut restored = Restored::default();
    let mut buf = alloc::vec![0u8; MAX_RECORD_BYTES];
    for slot in SlotId::ALL {
        if let Ok(n) = store.load(slot, &mut buf)
            && let Some(bytes) = buf.get(..n)
            && !bytes.is_empty()
        {
            restored.insert(slot, bytes.to_vec());
        }
    }
    restored
}

/// What [`Driver::serve_actions`] (or [`Driver::pump`]) left for the binding.
#[derive(Debug, Default)]
pub struct Pumped {
    /// Actions the driver cannot serve with its HAL (publish, datagrams, connects, closes, NTP, …), in
    /// order.
    pub network: Vec<Action>,
    /// The engine asked for a restart and [`System::restart`] was called.
    pub restarted: bool,
}

impl Pumped {
    /// Nothing for the binding to do.
    pub fn is_empty(&self) -> bool {
        self.network.is_empty() && !self.restarted
    }
}

/// A [`Device`] and the HAL it runs on.
pub struct Driver<Src: SampleSource, Clk, St, Sys> {
    /// The engine.
    pub device: Device,
    /// Sample source.
    pub source: Src,
    /// Wall clock.
    pub clock: Clk,
    /// Persistent store.
    pub store: St,
    /// System handle.
    pub system: Sys,
    buf: Vec<Src::Sample>,
    /// Store, clock or source errors seen so far (the driver never stops on them).
    pub hal_errors: u32,
}

impl<Src, Clk, St, Sys> Driver<Src, Clk, St, Sys>
where
    Src: SampleSource,
    Clk: Clock,
    St: Store,
    Sys: System,
{
    /// Builds the engine from what the store holds and wraps it with the HAL.
    pub fn new(
        options: DeviceOptions,
        source: Src,
        mut clock: Clk,
        mut store: St,
        system: Sys,
    ) -> Self {
        let restored = restore(&mut store);
        let now = clock.now().unwrap_or(Instant::EPOCH);
        Self {
            device: Device::new(options, restored, now),
            source,
            clock,
            store,
            system,
            buf: alloc::vec![Src::Sample::default(); 6 * READ_FRAMES],
            hal_errors: 0,
        }
    }

    /// Rebuilds the engine from the store in place (a binding whose [`System::restart`] cannot reset
    /// the machine, like the host simulator). Connections of the old engine are gone: the binding
    /// drops its sockets first.
    pub fn reboot(&mut self, options: DeviceOptions) {
        let restored = restore(&mut self.store);
        let now = self.now();
        self.device = Device::new(options, restored, now);
    }

    /// The current time of the clock (the epoch when the clock fails).
    pub fn now(&mut self) -> Instant {
        match self.clock.now() {
            Ok(t) => t,
            Err(_) => {
                self.hal_errors = self.hal_errors.saturating_add(1);
                Instant::EPOCH
            }
        }
    }

    /// Bytes read from a connection, stamped with the clock: [`Device::handle_input`] with its
    /// back-pressure contract. Returns how many bytes the engine took; the binding keeps the rest,
    /// does not read that socket meanwhile, and offers the rest again after its next
    /// [`Driver::pump`] (or any other engine call). No complete line is ever dropped.
    #[must_use = "bytes the engine did not take must be offered again (back-pressure)"]
    pub fn handle_input(&mut self, conn: ConnId, bytes: &[u8]) -> usize {
        let now = self.now();
        self.device.handle_input(conn, now, bytes)
    }

    /// One round: samples in, due timeouts, actions out. Returns what the binding must move.
    pub fn pump(&mut self) -> Pumped {
        self.feed_source();
        self.run_timers();
        self.serve_actions()
    }

    /// Reads every block the source has ready into the engine.
    pub fn feed_source(&mut self) {
        let now = self.now();
        loop {
            match self.source.read(&mut self.buf) {
                Ok(Some(raw)) => {
                    let raw = RawBlock {
                        len: raw.len.min(self.buf.len()),
                        ..raw
                    };
                    match Src::Sample::block(raw, &mut self.buf) {
                        Some(Block::Physical(b)) => self.device.handle_samples(now, &b),
                        Some(Block::Codes(b)) => self.device.handle_codes(now, &b),
                        None => {}
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    self.hal_errors = self.hal_errors.saturating_add(1);
                    break;
                }
            }
        }
    }

    /// Calls [`Device::handle_timeout`] if a deadline has passed.
    pub fn run_timers(&mut self) {
        let now = self.now();
        if self.device.poll_timeout().is_some_and(|t| t <= now) {
            self.device.handle_timeout(now);
        }
    }

    /// Drains the engine's actions: records go to the store, a restart to the system, the rest is
    /// returned in order.
    pub fn serve_actions(&mut self) -> Pumped {
        let mut out = Pumped::default();
        while let Some(action) = self.device.poll_event() {
            match action {
                Action::Persist(record) => self.persist(&record),
                Action::Restart(_) => {
                    if self.system.restart().is_err() {
                        self.hal_errors = self.hal_errors.saturating_add(1);
                    }
                    out.restarted = true;
                }
                other => out.network.push(other),
            }
        }
        out
    }

    /// Clean shutdown (SIGTERM, power-fail warning, before a reset): [`Device::handle_shutdown`], its
    /// records written now; returns what the binding still has to deliver (the retained `offline`
    /// publish, before it disconnects from the broker).
    pub fn shutdown(&mut self) -> Pumped {
        let now = self.now();
        self.device.handle_shutdown(now);
        self.serve_actions()
    }

    fn persist(&mut self, record: &Record) {
        if self.store.save(record.slot(), record.bytes()).is_err() {
            self.hal_errors = self.hal_errors.saturating_add(1);
        }
    }
}
