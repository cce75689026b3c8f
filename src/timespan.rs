//! Time spans as people and systemd write them: "30", "0.5", "100ms", "10s", "5min",
//! "1min 30s", "2h", and every form `systemctl show` prints (systemd's format_timespan:
//! "1w 1d", "1month", "1y 2w", "1min 1.500000s", "1.500ms", "500us"). A bare number is
//! seconds. The unit names are systemd's (parse_time): "m" is a minute, "M" a month.

use std::time::{Duration, Instant};

/// The longest span accepted, about 136 years: every deadline and sum gwshim makes from a
/// span stays far from overflowing `Instant` and `Duration`.
pub const MAX_SECS: u64 = u32::MAX as u64;

const DAY: u128 = 86_400;
const MONTH: u128 = 2_629_800;
const YEAR: u128 = 31_557_600;

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
    let total = nanos(text)?;
    // Whole seconds up to MAX_SECS, with any fraction of the last one.
    if total >= u128::from(MAX_SECS + 1) * NANOS {
        return Err(Refused::TooLarge);
    }
    let secs = u64::try_from(total / NANOS).map_err(|_| Refused::TooLarge)?;
    Ok(Duration::new(secs, (total % NANOS) as u32))
}

const NANOS: u128 = 1_000_000_000;

/// The span in nanoseconds, exactly (no float rounding: "1.077s" is 1077 ms); TooLarge past
/// u128.
fn nanos(text: &str) -> Result<u128, Refused> {
    use Refused::{NotASpan, TooLarge};
    let text = text.trim();
    if text.is_empty() {
        return Err(NotASpan);
    }
    let mut total = 0u128;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (whole, fraction) = match rest[..num_len].split_once('.') {
            Some((w, f)) => (w, f),
            None => (&rest[..num_len], ""),
        };
        if (whole.is_empty() && fraction.is_empty())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(NotASpan);
        }
        rest = rest[num_len..].trim_start();
        // Alphabetic, not ASCII: systemd writes microseconds "µs" too.
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_len] {
            // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as systemd accepts both.
            "us" | "usec" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" | "msec" => 1_000_000,
            "" | "s" | "sec" | "second" | "seconds" => NANOS,
            "m" | "min" | "minute" | "minutes" => 60 * NANOS,
            "h" | "hr" | "hour" | "hours" => 3_600 * NANOS,
            "d" | "day" | "days" => DAY * NANOS,
            "w" | "week" | "weeks" => 7 * DAY * NANOS,
            // systemd's month and year (USEC_PER_MONTH, USEC_PER_YEAR in its time-util.h):
            // 30.44 and 365.25 days.
            "M" | "month" | "months" => MONTH * NANOS,
            "y" | "year" | "years" => YEAR * NANOS,
            _ => return Err(NotASpan),
        };
        // Only digits are left: a failed parse is an overflow.
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| TooLarge)?
        };
        let mut value = whole.checked_mul(scale).ok_or(TooLarge)?;
        // Each fraction digit a tenth of the one before; digits finer than 1 ns are dropped.
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            value = value
                .checked_add(u128::from(digit - b'0') * place)
                .ok_or(TooLarge)?;
        }
        total = total.checked_add(value).ok_or(TooLarge)?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
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

    /// Every form systemd's format_timespan prints (`systemctl show`, `systemd-analyze
    /// timespan`, the same on systemd 252 and 257), with the microseconds systemd-analyze gave
    /// for it, and unit names only systemd's parser knows.
    #[test]
    fn parses_what_systemctl_show_prints() {
        let us = Duration::from_micros;
        let table: &[(&str, Option<Duration>)] = &[
            ("1w 1d", Some(us(691_200_000_000))), // StartLimitIntervalSec=8d
            ("1month", Some(us(2_629_800_000_000))),
            ("1M", Some(us(2_629_800_000_000))),
            ("1y 2w", Some(us(32_767_200_000_000))),
            ("1y 1month 4d 7h 30min", Some(us(34_560_000_000_000))), // 400d
            ("2month 3w", Some(us(7_074_000_000_000))),
            ("100y", Some(us(3_155_760_000_000_000))),
            ("1min 1.500000s", Some(us(61_500_000))),
            ("1.500000s", Some(us(1_500_000))),
            ("1.077s", Some(us(1_077_000))),
            ("59.999999s", Some(us(59_999_999))),
            ("1h 500ms", Some(us(3_600_500_000))),
            ("1w 1d 1h 1min 1.001001s", Some(us(694_861_001_001))),
            ("1.500ms", Some(us(1_500))),
            ("500us", Some(us(500))),
            ("5\u{b5}s", Some(us(5))),
            ("5\u{3bc}s", Some(us(5))),
            ("2 weeks", Some(us(1_209_600_000_000))),
            ("3 years", Some(us(94_672_800_000_000))),
            ("10m", Some(us(600_000_000))), // "m" is a minute, "M" a month
            ("1mo", None),
            ("1 fortnight", None),
            ("1.2.3s", None),
            (".s", None),
            ("200y", None), // past MAX_SECS (136 years)
        ];
        for &(text, want) in table {
            assert_eq!(parse(text), want, "{text:?}");
        }
        assert_eq!(parse_checked("200y"), Err(Refused::TooLarge));
        assert_eq!(parse_checked(&"9".repeat(60)), Err(Refused::TooLarge));
        assert_eq!(parse_checked("infinity"), Err(Refused::NotASpan));
    }
}
