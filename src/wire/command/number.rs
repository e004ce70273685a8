//! JSON number tokens for the command scanner: one-pass fast paths for the common short forms and
//! the general, correctly rounded conversion (the values serde_json hands to a visitor).

use super::raw::{Loose, Num};

/// A plain decimal (`-?digits.digits`, no exponent) with at most 15 significant digits and at most
/// 22 fraction digits, converted exactly: the digits form an integer below 2^53 and `10^k` is exact,
/// so one IEEE division is correctly rounded: the same value `str::parse::<f64>` gives. `None`
/// for every other form (the caller then takes the general path).
pub(super) fn fast_decimal(tok: &[u8]) -> Option<f64> {
    let (neg, digits) = match tok.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, tok),
    };
    let mut mantissa = 0u64;
    let mut n_digits = 0u32;
    let mut frac_digits: Option<usize> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                n_digits += 1;
                if n_digits > 15 {
                    return None;
                }
                if let Some(k) = frac_digits.as_mut() {
                    *k += 1;
                }
            }
            b'.' if frac_digits.is_none() => frac_digits = Some(0),
            _ => return None,
        }
    }
    let scale = POW10.get(frac_digits?)?;
    let v = mantissa as f64 / scale;
    Some(if neg { -v } else { v })
}

/// One pass over the common number forms: `-?int(.frac)?` with at most 15 digits in all and no
/// exponent, grammar checked and converted together, with the bytes it spans. The value is what
/// [`number_value`] gives for the same token: an integer below 10^15 fits `i64` (`-0` is a float),
/// and the decimal is [`fast_decimal`]'s exact division. `None` for every other form and for
/// every grammar error, so the general path decides those.
#[inline]
pub(super) fn short_number(s: &[u8]) -> Option<(Num, usize)> {
    let neg = s.first() == Some(&b'-');
    let mut mantissa = 0u64;
    let mut n_digits = 0u32;
    let mut i = digits(s, usize::from(neg), &mut mantissa, &mut n_digits)?;
    // No digit, or a leading zero followed by more digits (`01`, an error).
    if n_digits == 0 || (n_digits > 1 && s.get(usize::from(neg)) == Some(&b'0')) {
        return None;
    }
    let mut frac = 0usize;
    if s.get(i) == Some(&b'.') {
        let end = digits(s, i + 1, &mut mantissa, &mut n_digits)?;
        frac = end - (i + 1);
        i = end;
        if frac == 0 {
            return None;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        return None;
    }
    let v = if frac == 0 && !(neg && mantissa == 0) {
        // Below 10^15: fits i64 either way.
        let m = mantissa as i64;
        Num::Int(if neg { -m } else { m })
    } else {
        let v = mantissa as f64 / POW10.get(frac)?;
        Num::Float(if neg { -v } else { v })
    };
    Some((v, i))
}

/// Appends the decimal digits of `s` from `i` on to `mantissa`, counting them in `n_digits`; returns
/// the index after the last digit, or `None` past 15 digits in all.
#[inline(always)]
pub(super) fn digits(
    s: &[u8],
    mut i: usize,
    mantissa: &mut u64,
    n_digits: &mut u32,
) -> Option<usize> {
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        *mantissa = *mantissa * 10 + u64::from(d);
        *n_digits += 1;
        i += 1;
        if *n_digits > 15 {
            return None;
        }
    }
    Some(i)
}

/// The value of a number token (the scanner's general path); `None` for a token that is not a
/// finite JSON number.
pub(super) fn number_value(tok: &[u8], integer: bool) -> Option<Loose<'static>> {
    if integer {
        let (neg, digits) = match tok.split_first() {
            Some((b'-', d)) => (true, d),
            _ => (false, tok),
        };
        let mut sig = 0u64;
        let mut fits = true;
        for &d in digits {
            match sig
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
            {
                Some(v) => sig = v,
                None => {
                    fits = false;
                    break;
                }
            }
        }
        if fits {
            return Some(if !neg {
                i64::try_from(sig).map_or(Loose::Float(sig as f64), Loose::Int)
            } else {
                let n = (sig as i64).wrapping_neg();
                if n >= 0 {
                    Loose::Float(-(sig as f64))
                } else {
                    Loose::Int(n)
                }
            });
        }
    }
    if let Some(f) = fast_decimal(tok) {
        return Some(Loose::Float(f));
    }
    let f = parse_f64(tok).filter(|f| f.is_finite())?;
    Some(Loose::Float(f))
}

/// A decimal number as `str::parse::<f64>` reads it (`[+-]digits[.digits][(e|E)[+-]digits]`, either
/// side of the point may be empty but not both), correctly rounded, through serde_json's conversion:
/// the core links one decimal-to-binary conversion instead of two (core's `dec2flt` tables are
/// ≈ 17 KB of firmware flash). The token is rewritten into JSON's number grammar first (no `+`, no
/// leading zeros, a digit either side of the point). `None` for every other form, including
/// `inf`/`NaN` (which callers reject anyway) and an exponent outside f64's range.
pub(crate) fn parse_f64(s: &[u8]) -> Option<f64> {
    let (neg, rest) = match s.split_first() {
        Some((b'-', r)) => (true, r),
        Some((b'+', r)) => (false, r),
        _ => (false, s),
    };
    let exp_at = rest
        .iter()
        .position(|c| matches!(c, b'e' | b'E'))
        .unwrap_or(rest.len());
    let (mantissa, exp) = rest.split_at(exp_at);
    let (int, frac) = match mantissa.iter().position(|&c| c == b'.') {
        Some(p) => {
            let (i, f) = mantissa.split_at(p);
            (i, f.get(1..).unwrap_or_default())
        }
        None => (mantissa, &[][..]),
    };
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let exp_digits = match exp.get(1..) {
        None => &[][..],
        Some([b'+' | b'-', d @ ..]) | Some(d) => d,
    };
    if !exp.is_empty() && (exp_digits.is_empty() || !all_digits(exp_digits)) {
        return None;
    }
    let int = match int.iter().position(|&c| c != b'0') {
        Some(p) => int.get(p..).unwrap_or_default(),
        None => b"0",
    };
    let mut json = alloc::vec::Vec::with_capacity(s.len() + 2);
    json.extend_from_slice(int);
    if !frac.is_empty() {
        json.push(b'.');
        json.extend_from_slice(frac);
    }
    json.extend_from_slice(exp);
    // the magnitude, then the sign: rounding is symmetric, and `-0` keeps its sign (serde_json
    // reads `-0` as the integer 0)
    let v = serde_json::from_slice::<f64>(&json).ok()?;
    Some(if neg { -v } else { v })
}

/// `10^k` for the exact decimal fast path: every entry is exactly representable.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact decimal fast path gives the correctly rounded value `str::parse` gives, and
    /// declines every form it does not handle.
    #[test]
    fn fast_decimal_matches_str_parse() {
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut taken = 0;
        for _ in 0..200_000 {
            let int_digits = (next() % 12) as usize;
            let frac_digits = (next() % 24) as usize;
            let mut t = alloc::string::String::new();
            if next().is_multiple_of(3) {
                t.push('-');
            }
            for i in 0..int_digits.max(1) {
                let d = if i == 0 && int_digits > 1 {
                    next() % 9 + 1
                } else {
                    next() % 10
                };
                t.push(char::from(b'0' + d as u8));
            }
            if int_digits == 0 || !next().is_multiple_of(4) {
                t.push('.');
                for _ in 0..frac_digits.max(1) {
                    t.push(char::from(b'0' + (next() % 10) as u8));
                }
            }
            let want: f64 = t.parse().unwrap();
            if let Some(got) = fast_decimal(t.as_bytes()) {
                taken += 1;
                assert_eq!(got.to_bits(), want.to_bits(), "{t}");
            }
        }
        assert!(taken > 50_000, "fast path taken only {taken} times");
        for declined in [
            &b"1e5"[..],
            b"1.5E-3",
            b"1234567890123456.5",
            b"0.12345678901234567",
        ] {
            assert_eq!(fast_decimal(declined), None);
        }
        assert_eq!(
            fast_decimal(b"-0.0").map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
    }

    /// `parse_f64` reads every finite decimal form `str::parse::<f64>` reads, to the same bits, and
    /// rejects what it rejects.
    #[test]
    fn parse_f64_matches_str_parse() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1du64);
        const PARTS: [&str; 12] = [
            "",
            "0",
            "00",
            "7",
            "012",
            "123456789",
            "9007199254740993",
            "5",
            "4999999999999999999999",
            "1",
            "30",
            "000000000000000000001",
        ];
        const SIGNS: [&str; 3] = ["", "-", "+"];
        const EXPS: [&str; 9] = ["", "e5", "E-3", "e+17", "e-320", "e308", "e309", "e", "e+"];
        for _ in 0..20_000 {
            let pick = |n: u64, len: usize| (n % len as u64) as usize;
            let mut t = alloc::string::String::new();
            t.push_str(SIGNS[pick(next(), SIGNS.len())]);
            t.push_str(PARTS[pick(next(), PARTS.len())]);
            if !next().is_multiple_of(3) {
                t.push('.');
                t.push_str(PARTS[pick(next(), PARTS.len())]);
            }
            t.push_str(EXPS[pick(next(), EXPS.len())]);
            let want = t.parse::<f64>().ok().filter(|f| f.is_finite());
            let got = parse_f64(t.as_bytes()).filter(|f| f.is_finite());
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{t:?}");
        }
        for rejected in [
            "", ".", "-", "+-1", "1..2", "1e5.0", "0x10", " 1", "1 ", "inf", "NaN", "1_0",
        ] {
            assert_eq!(parse_f64(rejected.as_bytes()), None, "{rejected:?}");
        }
    }
}
