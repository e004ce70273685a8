//! The binding's clock: the RTC timer, µs since the Unix epoch as far as the RTC knows. It keeps
//! counting across software restarts; the engine corrects it with the SNTP offset it learns.

use core::cell::RefCell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use esp_hal::rtc_cntl::Rtc;

static RTC: Mutex<CriticalSectionRawMutex, RefCell<Option<Rtc<'static>>>> =
    Mutex::new(RefCell::new(None));

/// Hands the RTC to the clock (once, at boot).
pub fn init(rtc: Rtc<'static>) {
    RTC.lock(|r| *r.borrow_mut() = Some(rtc));
}

/// Microseconds on the RTC; falls back to the time since boot if [`init`] was not called.
pub fn now_us() -> u64 {
    RTC.lock(|r| r.borrow().as_ref().map(Rtc::current_time_us))
        .unwrap_or_else(|| embassy_time::Instant::now().as_micros())
}
