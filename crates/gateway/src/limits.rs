//! Plans enforced: a rate with burst (GCRA, per consumer and API) and daily
//! and monthly quotas. Exact on one node: the rate's state and the quota's
//! counters are checked and updated under one lock per decision. Quotas
//! count the calls let through; at start they are read back from the call
//! log, so a restart does not hand out a fresh quota.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use lgsp_registry::PlanLimits;
use lgsp_registry::workdays::{VIETNAM, day_start_us, month_start_us};
use time::OffsetDateTime;

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Seconds the `RateLimit-Policy` header gives as a month's window.
const MONTH_WINDOW: u64 = 30 * 86_400;

/// (consumer id, API name as in the call log).
type UsageKey = (Box<str>, Box<str>);

#[derive(Debug, Default)]
struct Usage {
    day_start: i64,
    day: u64,
    month_start: i64,
    month: u64,
}

/// A plan's limiter and the revision of the plan it was made for.
type Revised = (Arc<str>, Arc<Keyed>);

/// Every plan's limiter and every consumer's quota usage.
#[derive(Default)]
pub struct Limits {
    /// By plan id, with the revision the limiter was made for: a changed
    /// plan starts a fresh limiter, once.
    rates: Mutex<HashMap<Arc<str>, Revised>>,
    /// By (consumer id, API name as in the call log).
    usage: Mutex<HashMap<UsageKey, Usage>>,
    clock: DefaultClock,
}

/// The outcome of one check, with what the `RateLimit` headers say.
pub struct Verdict {
    /// `None`: allowed. Otherwise the refusal's reason and how long to wait.
    pub refused: Option<(Refusal, Duration)>,
    pub policy: String,
    pub state: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Rate,
    Day,
    Month,
}

impl Limits {
    /// Reads back the calls let through this month and today.
    pub async fn seed(&self, store: &lgsp_store::Store) -> Result<(), lgsp_store::StoreError> {
        let now = OffsetDateTime::now_utc();
        let (day_start, month_start) = (day_start_us(now), month_start_us(now));
        let rows = store.admitted_calls(month_start, day_start).await?;
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        for (consumer, api, day, month) in rows {
            usage.insert(
                (consumer.into(), api.into()),
                Usage {
                    day_start,
                    day: day.max(0) as u64,
                    month_start,
                    month: month.max(0) as u64,
                },
            );
        }
        Ok(())
    }

    /// Checks and counts one call of `consumer` to `api` under `plan`.
    pub fn check(&self, plan: &PlanLimits, consumer: &str, api: &str) -> Verdict {
        let limiter = self.limiter(plan);
        let key = format!("{consumer}|{api}");
        let mut policy = format!("\"rate\";q={};w=1;burst={}", plan.rate, plan.burst);
        if let Some(q) = plan.per_day {
            policy.push_str(&format!(", \"day\";q={q};w=86400"));
        }
        if let Some(q) = plan.per_month {
            policy.push_str(&format!(", \"month\";q={q};w={MONTH_WINDOW}"));
        }

        let remaining_rate = match limiter.check_key(&key) {
            Ok(snapshot) => snapshot.remaining_burst_capacity(),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                return Verdict {
                    refused: Some((Refusal::Rate, wait)),
                    state: format!("\"rate\";r=0;t={}", ceil_secs(wait)),
                    policy,
                };
            }
        };
        let mut state = format!("\"rate\";r={remaining_rate};t=1");
        if plan.per_day.is_none() && plan.per_month.is_none() {
            return Verdict {
                refused: None,
                policy,
                state,
            };
        }

        let now = OffsetDateTime::now_utc();
        let now_us = (now.unix_timestamp_nanos() / 1000) as i64;
        let (day_start, month_start) = (day_start_us(now), month_start_us(now));
        let next_day = next_day_us(now);
        let next_month = next_month_us(now);
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let u = usage.entry((consumer.into(), api.into())).or_default();
        if u.day_start != day_start {
            u.day_start = day_start;
            u.day = 0;
        }
        if u.month_start != month_start {
            u.month_start = month_start;
            u.month = 0;
        }
        let wait = |until: i64| Duration::from_micros((until - now_us).max(0) as u64);
        if let Some(q) = plan.per_day
            && u.day >= q
        {
            let w = wait(next_day);
            return Verdict {
                refused: Some((Refusal::Day, w)),
                state: format!("\"day\";r=0;t={}", ceil_secs(w)),
                policy,
            };
        }
        if let Some(q) = plan.per_month
            && u.month >= q
        {
            let w = wait(next_month);
            return Verdict {
                refused: Some((Refusal::Month, w)),
                state: format!("\"month\";r=0;t={}", ceil_secs(w)),
                policy,
            };
        }
        u.day += 1;
        u.month += 1;
        if let Some(q) = plan.per_day {
            state.push_str(&format!(
                ", \"day\";r={};t={}",
                q - u.day,
                ceil_secs(wait(next_day))
            ));
        }
        if let Some(q) = plan.per_month {
            state.push_str(&format!(
                ", \"month\";r={};t={}",
                q - u.month,
                ceil_secs(wait(next_month))
            ));
        }
        Verdict {
            refused: None,
            policy,
            state,
        }
    }

    fn limiter(&self, plan: &PlanLimits) -> Arc<Keyed> {
        let mut rates = self.rates.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((revision, l)) = rates.get(&plan.id) {
            // A call still holding the snapshot from before a change uses
            // the new limiter rather than bring the old one back.
            let changed_at = |r: &str| r.rsplit_once('@').map(|(_, t)| t.to_owned());
            if **revision == *plan.revision || changed_at(revision) > changed_at(&plan.revision) {
                return l.clone();
            }
        }
        let rate = NonZeroU32::new(plan.rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(plan.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
                .with_middleware::<StateInformationMiddleware>(),
        );
        rates.insert(plan.id.clone(), (plan.revision.clone(), limiter.clone()));
        limiter
    }

    /// Forgets limiter state of keys idle long enough to be full again.
    pub fn tidy(&self) {
        let rates: Vec<Arc<Keyed>> = self
            .rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|(_, l)| l.clone())
            .collect();
        for l in rates {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn next_day_us(now: OffsetDateTime) -> i64 {
    day_start_us(now) + 86_400_000_000
}

fn next_month_us(now: OffsetDateTime) -> i64 {
    let local = now.to_offset(VIETNAM);
    let (year, month) = match local.month() {
        time::Month::December => (local.year() + 1, time::Month::January),
        m => (local.year(), m.next()),
    };
    time::Date::from_calendar_date(year, month, 1)
        .map(|d| (d.midnight().assume_offset(VIETNAM).unix_timestamp_nanos() / 1000) as i64)
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: u32, burst: u32, per_day: Option<u64>) -> PlanLimits {
        PlanLimits {
            id: "p".into(),
            revision: "p@1".into(),
            rate,
            burst,
            per_day,
            per_month: None,
        }
    }

    #[test]
    fn burst_then_refusal_with_wait() {
        let limits = Limits::default();
        let p = plan(1, 3, None);
        for _ in 0..3 {
            assert!(limits.check(&p, "c", "a/1").refused.is_none());
        }
        let v = limits.check(&p, "c", "a/1");
        let (why, wait) = v.refused.unwrap();
        assert_eq!(why, Refusal::Rate);
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert_eq!(v.state, "\"rate\";r=0;t=1");
        // Another consumer has its own bucket.
        assert!(limits.check(&p, "d", "a/1").refused.is_none());
    }

    #[test]
    fn a_changed_plan_starts_afresh_once() {
        let limits = Limits::default();
        let old = PlanLimits {
            revision: "p@2026-12-04T08:00:00Z".into(),
            ..plan(1, 2, None)
        };
        let new = PlanLimits {
            revision: "p@2026-12-04T09:00:00Z".into(),
            ..plan(1, 2, None)
        };
        for _ in 0..2 {
            assert!(limits.check(&old, "c", "a/1").refused.is_none());
        }
        assert!(limits.check(&old, "c", "a/1").refused.is_some());
        // The new revision gets a fresh bucket...
        for _ in 0..2 {
            assert!(limits.check(&new, "c", "a/1").refused.is_none());
        }
        // ...and calls still on the old one share it instead of making another.
        assert!(limits.check(&old, "c", "a/1").refused.is_some());
        assert!(limits.check(&new, "c", "a/1").refused.is_some());
    }

    #[test]
    fn daily_quota() {
        let limits = Limits::default();
        let p = plan(1000, 1000, Some(2));
        assert!(limits.check(&p, "c", "a/1").refused.is_none());
        let v = limits.check(&p, "c", "a/1");
        assert!(v.refused.is_none());
        assert!(v.state.contains("\"day\";r=0"), "{}", v.state);
        let (why, wait) = limits.check(&p, "c", "a/1").refused.unwrap();
        assert_eq!(why, Refusal::Day);
        assert!(wait <= Duration::from_secs(86_400));
    }
}
