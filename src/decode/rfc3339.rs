//! Fast path for the timestamp shape producers actually send, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
//! chrono's general RFC 3339 parser cost ~450 instructions per event; this is a fraction of that.
//! It accepts a strict subset of what chrono accepts and returns the same instant; anything else
//! (offsets, lower-case separators, leap seconds, invalid dates) returns `None`, and the caller
//! falls back to chrono, which also words the error. So accepted values and rejections are
//! exactly chrono's.

use super::Millis;

/// Epoch milliseconds of `s` if it has the common UTC shape and is a valid date and time.
pub(super) fn parse_utc_millis(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[b.len() - 1] == b'Z';
    if !shape {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    let millis = match &b[19..b.len() - 1] {
        [] => 0,
        // chrono reads up to nine digits (nanoseconds); milliseconds truncate them.
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            let ms = digits(&frac[..frac.len().min(3)])?;
            digits(frac)?; // all of them must be digits
            ms * 10i64.pow(3 - frac.len().min(3) as u32)
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    if !valid {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(secs * 1_000 + millis)
}

/// The decimal value of an all-digit slice (at most nine digits here), or `None`.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn chrono_millis(s: &str) -> Option<Millis> {
        chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
    }

    /// Whatever the fast path accepts, chrono accepts with the same value.
    fn agrees(s: &str) {
        if let Some(ms) = parse_utc_millis(s) {
            assert_eq!(Some(ms), chrono_millis(s), "{s}");
        }
    }

    #[test]
    fn common_shapes_take_the_fast_path_with_chronos_value() {
        for s in [
            "2026-01-05T00:00:00.322Z",
            "2026-01-05T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2024-02-29T12:30:45.1Z",
            "2000-02-29T00:00:00.12Z",
            "2026-11-22T04:39:18.123456Z",
        ] {
            assert!(parse_utc_millis(s).is_some(), "{s}");
            agrees(s);
        }
    }

    #[test]
    fn everything_else_is_left_to_chrono() {
        for s in [
            "2026-01-05T00:00:00+00:00",
            "2026-01-05t00:00:00Z",
            "2026-01-05 00:00:00Z",
            "2026-01-05T00:00:00z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-05T24:00:00Z",
            "2026-01-05T00:60:00Z",
            "2026-06-30T23:59:60Z",
            "2026-01-05T00:00:00.Z",
            "2026-01-05T00:00:00.1234567890Z",
            "2026-01-05T00:00:1U.148Z",
            "+2026-01-05T00:00:00Z",
            "2026-01-05T00:00:00.12a4Z",
            "٢٠٢٦-01-05T00:00:00Z",
        ] {
            assert_eq!(parse_utc_millis(s), None, "{s}");
        }
    }

    #[test]
    fn random_timestamps_and_mutations_agree_with_chrono() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..200_000 {
            let mut s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                rng.random_range(0..10_000),
                rng.random_range(0..14),
                rng.random_range(0..33),
                rng.random_range(0..25),
                rng.random_range(0..61),
                rng.random_range(0..61)
            );
            let frac_len = rng.random_range(0..11);
            if frac_len > 0 {
                s.push('.');
                for _ in 1..frac_len {
                    s.push(char::from(b'0' + rng.random_range(0..10u8)));
                }
            }
            s.push('Z');
            if rng.random_bool(0.2) {
                let mut bytes = s.into_bytes();
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random_range(b' '..=b'~');
                s = String::from_utf8(bytes).unwrap();
            }
            agrees(&s);
        }
    }
}
