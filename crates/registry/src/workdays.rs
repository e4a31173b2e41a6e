//! Working days in Vietnam: Monday to Friday, less the public holidays the
//! operator registers. Days are counted in Vietnam's time (UTC+7).

use std::collections::HashSet;

use time::{Date, OffsetDateTime, Time, UtcOffset, Weekday};

/// Vietnam's offset from UTC (no daylight saving).
pub const VIETNAM: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

pub fn is_working_day(day: Date, holidays: &HashSet<Date>) -> bool {
    !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) && !holidays.contains(&day)
}

/// The end (23:59:59 Vietnam time) of the `days`-th working day after the
/// day of `from`: a request made on Friday with 2 days is due at the end of
/// Tuesday, or later if Monday or Tuesday is a holiday.
pub fn due_after(from: OffsetDateTime, days: u32, holidays: &HashSet<Date>) -> OffsetDateTime {
    let mut day = from.to_offset(VIETNAM).date();
    let mut counted = 0;
    // A year of holidays cannot stop the count; the bound keeps bad data from looping.
    for _ in 0..3660 {
        if counted >= days.max(1) {
            break;
        }
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
        if is_working_day(day, holidays) {
            counted += 1;
        }
    }
    day.with_time(Time::from_hms(23, 59, 59).unwrap_or(Time::MIDNIGHT))
        .assume_offset(VIETNAM)
        .to_offset(UtcOffset::UTC)
}

/// Start of the day of `at` in Vietnam, as microseconds since the epoch.
pub fn day_start_us(at: OffsetDateTime) -> i64 {
    let local = at.to_offset(VIETNAM);
    (local.replace_time(Time::MIDNIGHT).unix_timestamp_nanos() / 1000) as i64
}

/// Start of the month of `at` in Vietnam, as microseconds since the epoch.
pub fn month_start_us(at: OffsetDateTime) -> i64 {
    let local = at.to_offset(VIETNAM);
    let first = local
        .replace_day(1)
        .unwrap_or(local)
        .replace_time(Time::MIDNIGHT);
    (first.unix_timestamp_nanos() / 1000) as i64
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn weekends_and_holidays_are_skipped() {
        let none = HashSet::new();
        // Friday 2026-12-04 10:00 in Vietnam: due end of Tuesday 2026-12-08.
        let due = due_after(datetime!(2026-12-04 03:00 UTC), 2, &none);
        assert_eq!(due, datetime!(2026-12-08 16:59:59 UTC));
        // Monday: due end of Wednesday.
        let due = due_after(datetime!(2026-12-07 01:00 UTC), 2, &none);
        assert_eq!(due, datetime!(2026-12-09 16:59:59 UTC));
        // 23:30 UTC on Sunday is already Monday in Vietnam.
        let due = due_after(datetime!(2026-12-06 23:30 UTC), 2, &none);
        assert_eq!(due, datetime!(2026-12-09 16:59:59 UTC));
        // Tuesday 2026-04-28: 30/4 and 1/5 are holidays, then the weekend.
        let holidays = HashSet::from([date!(2026 - 04 - 30), date!(2026 - 05 - 01)]);
        let due = due_after(datetime!(2026-04-28 02:00 UTC), 2, &holidays);
        assert_eq!(due, datetime!(2026-05-04 16:59:59 UTC));
    }

    #[test]
    fn day_and_month_starts_are_in_vietnam_time() {
        let at = datetime!(2026-12-31 18:00 UTC); // 2027-01-01 01:00 in Vietnam
        assert_eq!(
            day_start_us(at),
            datetime!(2026-12-31 17:00 UTC).unix_timestamp() * 1_000_000
        );
        assert_eq!(
            month_start_us(at),
            datetime!(2026-12-31 17:00 UTC).unix_timestamp() * 1_000_000
        );
    }
}
