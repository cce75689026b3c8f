//! Time spans as people and systemd write them: "30", "0.5", "100ms", "10s", "5min",
//! "1min 30s", "2h". A bare number is seconds.

use std::time::{Duration, Instant};

/// The longest span accepted, about 136 years: every deadline and sum gwshim makes from a
/// span stays far from overflowing `Instant` and `Duration`.
pub const MAX_SECS: u64 = u32::MAX as u64;

/// None when the span is not one, or longer than `MAX_SECS`.
pub fn parse(text: &str) -> Option<Duration> {
    parse_checked(text).ok()
}

/// Why a span was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    NotASpan,
    /// A span, but longer than `MAX_SECS`.
    TooLarge,
}

/// Like `parse`, telling a span that is too long from one that is no span at all.
pub fn parse_checked(text: &str) -> Result<Duration, Refused> {
    let total = seconds(text).ok_or(Refused::NotASpan)?;
    // Whole seconds up to MAX_SECS, with any fraction of the last one.
    if total >= (MAX_SECS + 1) as f64 {
        return Err(Refused::TooLarge);
    }
    Duration::try_from_secs_f64(total).map_err(|_| Refused::NotASpan)
}

/// The span in seconds, however large.
fn seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "us" | "usec" | "µs" => 1e-6,
            "ms" | "msec" => 1e-3,
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            _ => return None,
        };
        total += value * scale;
        rest = rest[unit_len..].trim_start();
    }
    total.is_finite().then_some(total)
}

/// `after` from now; None (no deadline) if that cannot be represented.
pub fn deadline(after: Duration) -> Option<Instant> {
    Instant::now().checked_add(after)
}

/// "0.3 s", "5 s", "11 s", "10 min" for log lines.
pub fn show(d: Duration) -> String {
    let s = d.as_secs_f64();
    match s {
        s if s >= 120.0 && s % 60.0 == 0.0 => format!("{} min", s / 60.0),
        s if s >= 10.0 => format!("{s:.0} s"),
        s => format!("{} s", format!("{s:.1}").trim_end_matches(".0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spans() {
        let ms = Duration::from_millis;
        let table: &[(&str, Option<Duration>)] = &[
            ("30", Some(ms(30_000))),
            ("0.5", Some(ms(500))),
            ("100ms", Some(ms(100))),
            ("10s", Some(ms(10_000))),
            ("5min", Some(ms(300_000))),
            ("1min 30s", Some(ms(90_000))),
            ("2h", Some(ms(7_200_000))),
            ("0", Some(ms(0))),
            ("", None),
            ("-1", None),
            ("infinity", None),
            ("10 parsecs", None),
            ("s", None),
            ("1..2", None),
            ("4294967295", Some(Duration::from_secs(u32::MAX.into()))),
            ("4294967296", None),
            ("1000000000000000000000", None),
        ];
        for &(text, want) in table {
            assert_eq!(parse(text), want, "{text:?}");
        }
        assert_eq!(parse_checked("99999999999999"), Err(Refused::TooLarge));
        assert_eq!(parse_checked("4294967296"), Err(Refused::TooLarge));
        assert_eq!(parse_checked("1e3"), Err(Refused::NotASpan));
        assert_eq!(parse_checked("soon"), Err(Refused::NotASpan));
        assert_eq!(show(ms(300)), "0.3 s");
        assert_eq!(show(ms(5000)), "5 s");
        assert_eq!(show(ms(0)), "0 s");
        assert_eq!(show(ms(600_000)), "10 min");
    }
}
