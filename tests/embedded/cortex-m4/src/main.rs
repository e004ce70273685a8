//! The core's test vectors on QEMU `mps2-an386` (Cortex-M4F): semihosting output, exit code 0 when
//! every check passed, 1 otherwise.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use embedded_alloc::LlffHeap as Heap;

#[global_allocator]
static HEAP: Heap = Heap::empty();

struct Qemu(Option<hio::HostStream>);

impl embedded_vectors::Platform for Qemu {
    fn print(&mut self, s: &str) {
        if let Some(out) = self.0.as_mut() {
            let _ = out.write_all(s.as_bytes());
        }
    }
    fn instret(&mut self) -> Option<u64> {
        None // QEMU does not model DWT cycle counts; instruction counts come from the RV32 runner.
    }
}

#[entry]
fn main() -> ! {
    const HEAP_SIZE: usize = 2 * 1024 * 1024;
    static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    // SAFETY: runs once before any allocation; the static is only handed to the allocator.
    unsafe { HEAP.init(&raw mut HEAP_MEM as usize, HEAP_SIZE) }
    let mut qemu = Qemu(hio::hstdout().ok());
    let ok = embedded_vectors::run_all(&mut qemu);
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let _ = core::fmt::Write::write_fmt(&mut out, format_args!("PANIC {info}\n"));
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
