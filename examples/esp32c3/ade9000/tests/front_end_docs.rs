//! Issue item 19: the firmware README stated front-end constants (1001:1 divider, 2500:1 CTs on
//! 10.2 Ω) that the code does not use. The constants are documented once, on
//! [`FrontEnd::SMARTMETER`], and the README refers there. These tests fail when the doc comment stops
//! stating the values the constant has, or when the README states a ratio, resistance or gain the
//! code does not have.

use ade9000::FrontEnd;

const README: &str = include_str!("../../README.md");
const LIB: &str = include_str!("../src/lib.rs");

/// A front-end constant as a text states it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stated {
    /// `<n>:1` (divider or CT ratio).
    Ratio(f64),
    /// `<n> Ω` or `<n> ohm` (not kΩ / MΩ: those are parts of a divider, not a front-end constant).
    Ohms(f64),
    /// `×<n>` (PGA gain).
    Gain(f64),
}

/// Every ratio, resistance and gain `text` states, in order.
fn stated(text: &str) -> Vec<Stated> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit()
            || (i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let token = text[start..i].trim_end_matches('.');
        let Ok(value) = token.parse::<f64>() else {
            continue; // an address or a version, not a number
        };
        let before = &text[..start];
        let after = &text[start + token.len()..];
        let unit = after.trim_start_matches([' ', '\u{a0}']);
        if before.ends_with('×') {
            found.push(Stated::Gain(value));
        } else if after.starts_with(":1") && !after[2..].starts_with(|c: char| c.is_ascii_digit()) {
            found.push(Stated::Ratio(value));
        } else if unit.starts_with('Ω') || unit.starts_with("ohm") || unit.starts_with("Ohm") {
            found.push(Stated::Ohms(value));
        }
    }
    found
}

/// The constants of [`FrontEnd::SMARTMETER`], in the order its doc comment states them.
fn constants() -> [Stated; 5] {
    let f = FrontEnd::SMARTMETER;
    [
        Stated::Ratio(f64::from(f.divider_ratio)),
        Stated::Ratio(f64::from(f.ct_ratio)),
        Stated::Ohms(f64::from(f.burden_ohm)),
        Stated::Gain(f64::from(f.voltage_pga.factor())),
        Stated::Gain(f64::from(f.current_pga.factor())),
    ]
}

fn same(a: Stated, b: Stated) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-4 * y.abs().max(1.0);
    match (a, b) {
        (Stated::Ratio(x), Stated::Ratio(y))
        | (Stated::Ohms(x), Stated::Ohms(y))
        | (Stated::Gain(x), Stated::Gain(y)) => close(x, y),
        _ => false,
    }
}

/// What `text` states that no constant of the code has.
fn contradictions(text: &str) -> Vec<Stated> {
    stated(text)
        .into_iter()
        .filter(|s| !constants().iter().any(|c| same(*s, *c)))
        .collect()
}

/// The first paragraph of the doc comment on `FrontEnd::SMARTMETER`.
fn smartmeter_summary() -> String {
    let lines: Vec<&str> = LIB.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("pub const SMARTMETER"))
        .expect("FrontEnd::SMARTMETER in lib.rs");
    let doc: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .take_while(|l| l.trim_start().starts_with("///"))
        .map(|l| l.trim_start().trim_start_matches("///").trim())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    doc.split(|l| l.is_empty())
        .next()
        .expect("a summary paragraph")
        .join(" ")
}

#[test]
fn the_doc_comment_on_smartmeter_states_every_constant_it_has() {
    let summary = smartmeter_summary();
    let said = stated(&summary);
    assert_eq!(said.len(), constants().len(), "{summary}\n{said:?}");
    for (s, c) in said.iter().zip(constants()) {
        assert!(
            same(*s, c),
            "the doc says {s:?}, the code has {c:?}: {summary}"
        );
    }
}

#[test]
fn the_readme_refers_to_the_code_and_states_no_other_constant() {
    assert!(
        README.contains("ade9000::FrontEnd::SMARTMETER"),
        "the README points at the documented constants"
    );
    assert_eq!(
        contradictions(README),
        [],
        "the README states constants the code does not have"
    );
}

#[test]
fn the_check_rejects_the_numbers_the_readme_used_to_state() {
    let old = "Front-end constants (`ade9000::FrontEnd::SMARTMETER`: 1001:1 divider, 2500:1 CTs on 10.2 Ω; \
               the ADC variant in `src/main.rs`)";
    assert_eq!(
        contradictions(old),
        [
            Stated::Ratio(1001.0),
            Stated::Ratio(2500.0),
            Stated::Ohms(10.2)
        ]
    );
    // What is not a front-end constant is not read as one.
    assert_eq!(
        stated("192.168.4.1, 1:11 divider, 330 kΩ, 10 MHz, v2.2, GPIO 6 / 7"),
        []
    );
    // The right numbers pass, however they are spaced.
    assert_eq!(
        contradictions("994.7:1, 2000:1 on 15.74\u{a0}Ω, PGA ×2 / ×4, 15.74 ohm"),
        []
    );
}
