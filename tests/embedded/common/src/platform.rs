//! What the wire layer relies on from the target itself: heap allocation and the shortest
//! round-trip float formatting serde_json prints numbers with (soft-float on RV32IMC).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{Platform, Runner};

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("platform");
    let v: Vec<u32> = (0..1000).collect();
    r.eq("heap_vec_sum", v.iter().sum::<u32>(), 499_500);
    let s: String = ["Info:", "{\"cmd\":\"info\"}"].concat();
    r.eq("heap_string", s.as_str(), "Info:{\"cmd\":\"info\"}");
    r.eq(
        "f32_display_shortest",
        format!("{}", 0.1f32).as_str(),
        "0.1",
    );
    r.eq(
        "f32_display_integral",
        format!("{:?}", 230.0f32).as_str(),
        "230.0",
    );
    r.eq(
        "f64_display_energy",
        format!("{}", 1234.5678f64).as_str(),
        "1234.5678",
    );
    let x = core::hint::black_box(2.0f32);
    r.eq("f32_mul_add", x * 3.5 + 0.25, 7.25);
    r.eq(
        "f32_le_bytes",
        1.0f32.to_le_bytes(),
        [0x00, 0x00, 0x80, 0x3f],
    );
}
