//! The state of every upstream the gateway forwards to: its health (from
//! active checks) and its circuit breaker (from the calls themselves).
//! Shared by the gateway, which picks and reports, and the admin API, which
//! shows it. State is kept by URL, so it survives registry changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Consecutive failures that open an upstream's breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker keeps the upstream out before one trial call.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Breaker {
    Closed,
    Open,
    /// The cooldown is over; one trial call is under way or allowed.
    HalfOpen,
}

#[derive(Debug)]
struct State {
    /// `None` until a health check has run (or when none is configured).
    healthy: Option<bool>,
    last_check: Option<String>,
    last_check_error: Option<String>,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    trial_running: bool,
    last_failure: Option<String>,
}

/// One upstream.
#[derive(Debug)]
pub struct Upstream {
    pub url: String,
    state: Mutex<State>,
    requests: AtomicU64,
    failures: AtomicU64,
}

/// What the admin API shows of an upstream.
#[derive(Debug, Serialize)]
pub struct UpstreamView {
    pub url: String,
    pub healthy: Option<bool>,
    pub last_check: Option<String>,
    pub last_check_error: Option<String>,
    pub breaker: Breaker,
    pub consecutive_failures: u32,
    pub requests: u64,
    pub failures: u64,
    pub last_failure: Option<String>,
}

/// A permission to call an upstream; report how it went.
pub struct Attempt {
    pub upstream: Arc<Upstream>,
    trial: bool,
}

impl Upstream {
    fn new(url: &str) -> Upstream {
        Upstream {
            url: url.to_owned(),
            state: Mutex::new(State {
                healthy: None,
                last_check: None,
                last_check_error: None,
                consecutive_failures: 0,
                opened_at: None,
                trial_running: false,
                last_failure: None,
            }),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn breaker(state: &State, now: Instant) -> Breaker {
        match state.opened_at {
            None => Breaker::Closed,
            Some(at) if now.duration_since(at) < BREAKER_COOLDOWN => Breaker::Open,
            Some(_) => Breaker::HalfOpen,
        }
    }

    /// Takes this upstream for a call if its health and breaker allow.
    fn try_take(self: &Arc<Self>, now: Instant) -> Option<Attempt> {
        let mut state = self.lock();
        if state.healthy == Some(false) {
            return None;
        }
        let trial = match Self::breaker(&state, now) {
            Breaker::Closed => false,
            Breaker::Open => return None,
            Breaker::HalfOpen if state.trial_running => return None,
            Breaker::HalfOpen => {
                state.trial_running = true;
                true
            }
        };
        drop(state);
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(Attempt {
            upstream: self.clone(),
            trial,
        })
    }

    pub fn set_health(&self, healthy: bool, checked_at: String, error: Option<String>) {
        let mut state = self.lock();
        state.healthy = Some(healthy);
        state.last_check = Some(checked_at);
        state.last_check_error = error;
    }

    pub fn view(&self) -> UpstreamView {
        let state = self.lock();
        UpstreamView {
            url: self.url.clone(),
            healthy: state.healthy,
            last_check: state.last_check.clone(),
            last_check_error: state.last_check_error.clone(),
            breaker: Self::breaker(&state, Instant::now()),
            consecutive_failures: state.consecutive_failures,
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_failure: state.last_failure.clone(),
        }
    }
}

impl Attempt {
    /// The upstream answered (with any status that is not a gateway failure).
    pub fn succeeded(self) {
        let mut state = self.upstream.lock();
        // Once the breaker is open, only its trial call may close it: a late
        // answer to a call sent before it opened says little of now.
        if self.trial || state.opened_at.is_none() {
            state.consecutive_failures = 0;
            state.opened_at = None;
        }
        if self.trial {
            state.trial_running = false;
        }
    }

    /// The upstream could not be reached, timed out, or answered 502/503/504.
    pub fn failed(self, what: &str) {
        self.upstream.failures.fetch_add(1, Ordering::Relaxed);
        let mut state = self.upstream.lock();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        state.last_failure = Some(what.to_owned());
        if self.trial {
            state.trial_running = false;
        }
        if self.trial
            || (state.opened_at.is_none() && state.consecutive_failures >= BREAKER_THRESHOLD)
        {
            state.opened_at = Some(Instant::now());
            tracing::warn!(upstream = %self.upstream.url, failures = state.consecutive_failures, "circuit breaker opened");
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        // An attempt dropped without a report (the call was cancelled) frees the trial.
        if self.trial {
            self.upstream.lock().trial_running = false;
        }
    }
}

/// Every upstream's state, and a round-robin counter per API.
#[derive(Debug, Default)]
pub struct UpstreamPool {
    upstreams: Mutex<HashMap<String, Arc<Upstream>>>,
    cursors: Mutex<HashMap<Box<str>, Arc<AtomicUsize>>>,
}

impl UpstreamPool {
    pub fn get(&self, url: &str) -> Arc<Upstream> {
        let mut map = self
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(u) = map.get(url) {
            return u.clone();
        }
        let u = Arc::new(Upstream::new(url));
        map.insert(url.to_owned(), u.clone());
        u
    }

    /// Forgets the health verdict of every upstream not in `checked`: one
    /// whose health check was removed is no longer held out of service.
    pub fn forget_health_except(&self, checked: &std::collections::HashSet<String>) {
        let map = self
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (url, upstream) in map.iter() {
            if !checked.contains(url) {
                let mut state = upstream.lock();
                state.healthy = None;
                state.last_check = None;
                state.last_check_error = None;
            }
        }
    }

    /// Picks the next usable upstream of an API, round robin, skipping
    /// `tried`; `None` if every one is unhealthy or its breaker is open.
    pub fn pick(&self, api_id: &str, urls: &[String], tried: &[String]) -> Option<Attempt> {
        let start = {
            let mut cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
            cursors
                .entry(api_id.into())
                .or_default()
                .fetch_add(1, Ordering::Relaxed)
        };
        let now = Instant::now();
        (0..urls.len())
            .map(|i| &urls[(start + i) % urls.len()])
            .filter(|u| !tried.contains(u))
            .find_map(|u| self.get(u).try_take(now))
    }

    pub fn views(&self, urls: &[String]) -> Vec<UpstreamView> {
        urls.iter().map(|u| self.get(u).view()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_skips_open_breakers_then_tries_once() {
        let pool = UpstreamPool::default();
        let urls = vec!["http://a".to_owned(), "http://b".to_owned()];
        let first = pool.pick("api", &urls, &[]).unwrap();
        let second = pool.pick("api", &urls, &[]).unwrap();
        assert_ne!(first.upstream.url, second.upstream.url);
        drop((first, second));
        for _ in 0..BREAKER_THRESHOLD {
            pool.get("http://a")
                .try_take(Instant::now())
                .unwrap()
                .failed("refused");
        }
        for _ in 0..4 {
            assert_eq!(
                pool.pick("api", &urls, &[]).unwrap().upstream.url,
                "http://b"
            );
        }
        assert!(pool.pick("api", &urls, &["http://b".to_owned()]).is_none());
        // After the cooldown, one trial call; its success closes the breaker.
        pool.get("http://a").lock().opened_at = Some(Instant::now() - BREAKER_COOLDOWN);
        let trial = pool.get("http://a").try_take(Instant::now()).unwrap();
        assert!(pool.get("http://a").try_take(Instant::now()).is_none());
        trial.succeeded();
        assert_eq!(pool.get("http://a").view().breaker, Breaker::Closed);
    }

    #[test]
    fn unhealthy_upstreams_are_skipped() {
        let pool = UpstreamPool::default();
        let urls = vec!["http://a".to_owned(), "http://b".to_owned()];
        pool.get("http://b")
            .set_health(false, "t".into(), Some("503".into()));
        for _ in 0..3 {
            assert_eq!(
                pool.pick("api", &urls, &[]).unwrap().upstream.url,
                "http://a"
            );
        }
    }
}
