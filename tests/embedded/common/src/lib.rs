//! The smartmeter core's test vectors as a `no_std` library, so the same checks run on emulated
//! Cortex-M4F (hardware f32) and RV32IMC (soft-float, the ESP32-C3's instruction set).
//!
//! A runner supplies a [`Platform`] (text output and, where the core has one, a retired-instruction
//! counter) and calls [`run_all`]; every check prints one line, the run ends with
//! `N passed, N failed`, and the runner exits non-zero when anything failed.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use core::fmt::{self, Write};

mod device;
mod dsp;
mod flicker;
mod frame;
mod platform;
mod pq;
pub mod pq_scenario;
mod wire;

/// What a runner provides.
pub trait Platform {
    /// Writes text to the host (semihosting).
    fn print(&mut self, s: &str);
    /// The retired-instruction counter, if the core has one the emulator counts exactly.
    fn instret(&mut self) -> Option<u64>;
}

/// Counts and reports checks.
pub struct Runner<'a, P: Platform> {
    platform: &'a mut P,
    group: &'static str,
    passed: u32,
    failed: u32,
}

struct Out<'b, P: Platform>(&'b mut P);

impl<P: Platform> Write for Out<'_, P> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.print(s);
        Ok(())
    }
}

impl<'a, P: Platform> Runner<'a, P> {
    /// A runner with no checks done.
    pub fn new(platform: &'a mut P) -> Self {
        Self {
            platform,
            group: "",
            passed: 0,
            failed: 0,
        }
    }

    /// Names the group the next checks belong to.
    pub fn group(&mut self, name: &'static str) {
        self.group = name;
        self.line(format_args!("# {name}"));
    }

    /// Prints one line.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        let mut out = Out(&mut *self.platform);
        let _ = out.write_fmt(args);
        let _ = out.write_str("\n");
    }

    /// Records one check; `detail` is printed on failure.
    pub fn check(&mut self, name: &str, ok: bool, detail: fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
            let group = self.group;
            self.line(format_args!("ok   {group}::{name}"));
        } else {
            self.failed += 1;
            let group = self.group;
            self.line(format_args!("FAIL {group}::{name}: {detail}"));
        }
    }

    /// Checks `got == want`, printing both on failure.
    pub fn eq<T: PartialEq + fmt::Debug>(&mut self, name: &str, got: T, want: T) {
        let ok = got == want;
        self.check(name, ok, format_args!("got {got:?}, want {want:?}"));
    }

    /// Retired instructions, if counted.
    pub fn instret(&mut self) -> Option<u64> {
        self.platform.instret()
    }

    /// Prints the summary line; true when nothing failed and something ran.
    pub fn finish(mut self) -> bool {
        let (p, f) = (self.passed, self.failed);
        self.line(format_args!("{p} passed, {f} failed"));
        f == 0 && p > 0
    }
}

/// Runs every vector group. Returns true when all checks passed.
pub fn run_all<P: Platform>(platform: &mut P) -> bool {
    let mut r = Runner::new(platform);
    platform::run(&mut r);
    wire::run(&mut r);
    frame::run(&mut r);
    dsp::run(&mut r);
    pq::run(&mut r);
    flicker::run(&mut r);
    device::run(&mut r);
    r.finish()
}
