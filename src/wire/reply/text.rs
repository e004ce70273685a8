//! Texts inside replies, written and read back: the SSID list `"[a, b]"` and the zone offset
//! `+HH:MM`.

use alloc::string::String;
use alloc::vec::Vec;

pub(super) fn ssid_list(ssids: &[String]) -> String {
    let mut s = String::from("[");
    for (i, x) in ssids.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(x);
    }
    s.push(']');
    s
}

pub(super) fn parse_ssid_list(text: &str) -> Vec<String> {
    let t = text.trim();
    let t = t.strip_prefix('[').unwrap_or(t);
    let t = t.strip_suffix(']').unwrap_or(t);
    t.split(", ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `+HH:MM` / `-HH:MM`.
pub(super) fn format_offset(offset_min: i16) -> String {
    let sign = if offset_min < 0 { '-' } else { '+' };
    let a = offset_min.unsigned_abs();
    alloc::format!("{sign}{:02}:{:02}", a / 60, a % 60)
}

pub(super) fn parse_offset(text: &str) -> Option<i16> {
    let (neg, rest) = match text.trim().split_at_checked(1)? {
        ("+", r) => (false, r),
        ("-", r) => (true, r),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let h: i16 = h.parse().ok()?;
    let m: i16 = m.parse().ok()?;
    if !(0..60).contains(&m) || !(0..=14).contains(&h) {
        return None;
    }
    let v = h * 60 + m;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(format_offset(-330), "-05:30");
        assert_eq!(format_offset(60), "+01:00");
        assert_eq!(parse_offset("-05:30"), Some(-330));
        assert_eq!(parse_offset("+14:00"), Some(840));
        assert_eq!(parse_offset("05:30"), None);
    }

    #[test]
    fn ssid_lists() {
        let l = alloc::vec![String::from("energywifi"), String::from("Test")];
        assert_eq!(ssid_list(&l), "[energywifi, Test]");
        assert_eq!(parse_ssid_list("[energywifi, Test]"), l);
        assert!(parse_ssid_list("[]").is_empty());
    }
}
