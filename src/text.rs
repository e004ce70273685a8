//! Float text without `core::fmt`'s float machinery: `{}` or `{:.2}` of a float links core's
//! float formatting (Grisu and Dragon4 with their tables, ≈ 16 KB of firmware flash) only for a few
//! log texts and error messages, while every number on the wire goes through serde_json's shortest
//! form (zmij). [`Fixed`] writes `{:.N}`, [`Shortest`] writes `{}`, both byte for byte as `core::fmt`
//! does, so the texts stay what they were.

use alloc::string::String;
use core::fmt;

/// `value` as `format!("{value}")` writes it (`3`, `0.1`, `-0`, `100000000000000000000`, `NaN`,
/// `inf`): the shortest digits that read back to the same float, laid out without an exponent.
/// The digits are serde_json's (zmij): the shortest round-trip digits core prints too, except where
/// two shortest candidates are equally close (f32 `3065919.25`: zmij writes `3065919.2`, core
/// `3065919.3`, f64 `1149636667324797.25`: `…97.2` against `…97.3`): zmij writes the even digit,
/// core the upper one. Only values at the edge of their type's precision are such ties.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shortest<T>(pub(crate) T);

impl fmt::Display for Shortest<f32> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        match special(f64::from(v)) {
            Some(s) => f.write_str(s),
            None => layout(f, &serde_json::to_string(&v).unwrap_or_default()),
        }
    }
}

impl fmt::Display for Shortest<f64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        match special(v) {
            Some(s) => f.write_str(s),
            None => layout(f, &serde_json::to_string(&v).unwrap_or_default()),
        }
    }
}

/// The text of a value that is not finite.
fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v.is_infinite() {
        Some(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        None
    }
}

/// Writes a JSON number (`-1.5e-7`, `1e+20`, `3.0`) in `core::fmt`'s `Display` layout: its digits
/// without leading or trailing zeros, placed around the point with zeros as needed, no exponent.
fn layout(f: &mut fmt::Formatter<'_>, json: &str) -> fmt::Result {
    let (neg, rest) = match json.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, json),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(p) => (rest.get(..p).unwrap_or(""), rest.get(p + 1..).unwrap_or("")),
        None => (rest, ""),
    };
    let exp: i32 = exp.trim_start_matches('+').parse().unwrap_or(0);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = String::with_capacity(int.len() + frac.len());
    digits.push_str(int);
    digits.push_str(frac);
    // the point sits `point` digits into `digits`
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let point = i32::try_from(int.len()).unwrap_or(0) + exp - i32::try_from(lead).unwrap_or(0);
    let digits = digits.trim_start_matches('0').trim_end_matches('0');
    if neg {
        f.write_str("-")?;
    }
    if digits.is_empty() {
        return f.write_str("0");
    }
    let zeros = |f: &mut fmt::Formatter<'_>, n: i32| (0..n).try_for_each(|_| f.write_str("0"));
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if point <= 0 {
        f.write_str("0.")?;
        zeros(f, -point)?;
        f.write_str(digits)
    } else if point >= n {
        f.write_str(digits)?;
        zeros(f, point - n)
    } else {
        let (a, b) = digits.split_at(usize::try_from(point).unwrap_or(0));
        f.write_str(a)?;
        f.write_str(".")?;
        f.write_str(b)
    }
}

/// `value` with `decimals` (at most 9) digits after the point, exactly as
/// `format!("{:.decimals$}", value)` writes it: the exact binary value rounded to nearest with ties
/// to even, the sign kept for negative values and `-0.0`, and `NaN`, `inf`, `-inf`. Values whose
/// scaled magnitude `|value|·10^decimals` reaches 2^63 (never a log value) print in serde_json's
/// shortest form instead (the integer arithmetic stays in `u64`: no 128-bit division linked).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed(pub(crate) f64, pub(crate) u8);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Fixed(v, decimals) = *self;
        if v.is_nan() {
            return f.write_str("NaN");
        }
        let sign = if v.is_sign_negative() { "-" } else { "" };
        if v.is_infinite() {
            return write!(f, "{sign}inf");
        }
        const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
        let d = u32::from(decimals.min(9));
        let unit = 10u64.pow(d);
        if v.abs() * unit as f64 >= LIMIT {
            return f.write_str(&serde_json::to_string(&v).unwrap_or_default());
        }
        // |v| = m · 2^e exactly; n = round(m · unit · 2^e), ties to even, in integers
        let bits = v.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1 << 52) - 1);
        let (m, e) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1 << 52), biased - 1075)
        };
        let p = u128::from(m) * u128::from(unit);
        let n = if e >= 0 {
            p << e // |v|·unit < 2^63: e ≤ 10
        } else if e <= -128 {
            0 // p < 2^83: below half of 2^-e
        } else {
            let s = e.unsigned_abs();
            let (q, rem, half) = (p >> s, p & ((1 << s) - 1), 1u128 << (s - 1));
            q + u128::from(rem > half || (rem == half && q % 2 == 1))
        };
        // n ≤ 2^63 (the rounded scaled magnitude): u64 division, no 128-bit one linked
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        write!(f, "{sign}{}", n / unit)?;
        if d > 0 {
            write!(f, ".{:0width$}", n % unit, width = d as usize)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    /// `ours` is `core`, or the other of two equally close shortest candidates: same length,
    /// last digits one apart, ours even (the caller checks that both read back to the value).
    fn same_or_tie(ours: &str, core: &str) -> bool {
        if ours == core {
            return true;
        }
        let (oa, ol) = ours.split_at(ours.len() - 1);
        let (ca, cl) = core.split_at(core.len() - 1);
        let (o, c) = (ol.as_bytes()[0], cl.as_bytes()[0]);
        oa == ca && o.abs_diff(c) == 1 && (o - b'0').is_multiple_of(2)
    }

    /// `Shortest` writes what `format!("{}")` writes, for f32 and f64 over the whole range, but
    /// for a tie of two shortest candidates (rare) the even one.
    #[test]
    fn shortest_matches_core_fmt() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1du64);
        let mut ties = 0;
        for _ in 0..200_000 {
            let state = next();
            let d = f64::from_bits(state);
            let s = f32::from_bits(state as u32);
            let (ours, core) = (format!("{}", Shortest(d)), format!("{d}"));
            assert!(same_or_tie(&ours, &core), "{ours} vs {core}");
            if d.is_finite() {
                assert_eq!(ours.parse::<f64>().unwrap(), d);
            }
            ties += usize::from(ours != core);
            let (ours, core) = (format!("{}", Shortest(s)), format!("{s}"));
            assert!(same_or_tie(&ours, &core), "{ours} vs {core}");
            if s.is_finite() {
                assert_eq!(ours.parse::<f32>().unwrap(), s);
            }
            ties += usize::from(ours != core);
        }
        assert!(ties < 1_000, "{ties} ties in 400,000 values");
        for d in [
            0.0, -0.0, 3.0, 0.1, 1e20, 1e21, 1e-7, 123456.789, 2.5e12, -1e300, 5e-324,
        ] {
            assert_eq!(format!("{}", Shortest(d)), format!("{d}"));
            let s = d as f32;
            assert_eq!(format!("{}", Shortest(s)), format!("{s}"));
        }
        for d in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(format!("{}", Shortest(d)), format!("{d}"));
            let s = d as f32;
            assert_eq!(format!("{}", Shortest(s)), format!("{s}"));
        }
    }

    /// The text equals `format!("{:.N}")`, ties and special values included, up to its limit.
    #[test]
    fn matches_core_fmt() {
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..50_000 {
            let bits = next();
            let magnitude = 10f64.powi((bits % 24) as i32 - 12);
            let v = (next() as f64 / u64::MAX as f64 - 0.5) * magnitude;
            for d in 0..10u8 {
                let want = if v.is_nan()
                    || v.abs() * (10u64.pow(u32::from(d)) as f64) < 9_223_372_036_854_775_808.0
                {
                    format!("{:.*}", usize::from(d), v)
                } else {
                    serde_json::to_string(&v).unwrap()
                };
                assert_eq!(format!("{}", Fixed(v, d)), want, "{v:e} to {d} decimals");
            }
        }
        for v in [
            0.0,
            -0.0,
            0.25,
            0.35,
            2.5,
            3.5,
            -2.5,
            0.125,
            1e-300,
            5e-324,
            9.2e9,
            -1e8,
            f64::NAN,
        ] {
            for d in 0..10u8 {
                let want = if v.is_nan()
                    || v.abs() * (10u64.pow(u32::from(d)) as f64) < 9_223_372_036_854_775_808.0
                {
                    format!("{:.*}", usize::from(d), v)
                } else {
                    serde_json::to_string(&v).unwrap()
                };
                assert_eq!(format!("{}", Fixed(v, d)), want, "{v:e} to {d} decimals");
            }
        }
        for (v, want) in [(f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf")] {
            assert_eq!(format!("{}", Fixed(v, 1)), want);
        }
        assert_eq!(format!("{}", Fixed(7999.87, 2)), "7999.87");
        assert_eq!(format!("{}", Fixed(138.2f32.into(), 1)), "138.2");
    }
}
