//! The core's test vectors on QEMU `virt` with an rv32imc hart (the ESP32-C3's instruction set: no
//! atomics, no FPU). Run with `-icount shift=0` so `minstret` counts retired instructions exactly.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use embedded_alloc::LlffHeap as Heap;
use riscv_rt::entry;
use riscv_semihosting::debug;

#[global_allocator]
static HEAP: Heap = Heap::empty();

struct Qemu(Option<riscv_semihosting::hio::HostStream>);

impl embedded_vectors::Platform for Qemu {
    fn print(&mut self, s: &str) {
        if let Some(out) = self.0.as_mut() {
            let _ = out.write_all(s.as_bytes());
        }
    }
    fn instret(&mut self) -> Option<u64> {
        Some(riscv::register::minstret::read64())
    }
}

#[entry]
fn main() -> ! {
    const HEAP_SIZE: usize = 4 * 1024 * 1024;
    static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    // SAFETY: runs once before any allocation; the static is only handed to the allocator.
    unsafe { HEAP.init(&raw mut HEAP_MEM as usize, HEAP_SIZE) }
    let mut qemu = Qemu(riscv_semihosting::hio::hstdout().ok());
    let ok = embedded_vectors::run_all(&mut qemu);
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        riscv::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Ok(mut out) = riscv_semihosting::hio::hstdout() {
        let _ = core::fmt::Write::write_fmt(&mut out, format_args!("PANIC {info}\n"));
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        riscv::asm::wfi();
    }
}
