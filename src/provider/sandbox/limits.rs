//! The provider's limits as the sandbox keeps them, per login: requests, identical requests and
//! numbers per sliding window, and simultaneous requests.
//!
//! Contract: [`Logins::admit`] counts a request against its login's windows, or names the error 9
//! the provider would answer instead (a refused request counts nothing); [`Logins::enter`] and
//! [`Logins::leave`] track the requests in progress.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::SandboxConfig;

/// Why the sandbox refuses a request: the provider's error code and message.
pub type Refusal = (i64, &'static str);

/// Every login's windows and requests in progress.
#[derive(Default)]
pub struct Logins {
    logins: HashMap<String, Login>,
}

#[derive(Default)]
struct Login {
    /// Arrival times of the requests counted against the rate limit, within the last window.
    recent: VecDeque<Instant>,
    /// Arrival times of each distinct request, within the identical-request window.
    identical: HashMap<String, VecDeque<Instant>>,
    /// Arrival times and list lengths, for the numbers-per-window limit.
    numbers: VecDeque<(Instant, u32)>,
    in_flight: u64,
}

/// Drops the instants at the front of `times` that are a whole `window` before `now`.
fn expire<T>(times: &mut VecDeque<T>, now: Instant, window: Duration, at: impl Fn(&T) -> Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(at(t)) >= window)
    {
        times.pop_front();
    }
}

impl Logins {
    /// A request of `login` begins; returns how many of its requests are now in progress.
    pub fn enter(&mut self, login: &str) -> u64 {
        let state = self.logins.entry(login.to_string()).or_default();
        state.in_flight += 1;
        state.in_flight
    }

    /// A request of `login` ended (answered, dropped or abandoned).
    pub fn leave(&mut self, login: &str) {
        if let Some(state) = self.logins.get_mut(login) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }

    /// Counts a request for `phone` (the list as sent) arriving at `arrived` against the login's
    /// windows. On success, returns how many identical requests the window now holds.
    pub fn admit(
        &mut self,
        cfg: &SandboxConfig,
        login: &str,
        phone: &str,
        arrived: Instant,
    ) -> Result<u64, Refusal> {
        let state = self.logins.entry(login.to_string()).or_default();
        if state.in_flight >= cfg.max_concurrent as u64 {
            return Err((9, "too many concurrent requests"));
        }
        expire(&mut state.recent, arrived, cfg.request_limit.window, |t| *t);
        let same = state.identical.entry(phone.to_string()).or_default();
        expire(same, arrived, cfg.identical_limit.window, |t| *t);
        let listed = phone.split(',').count() as u32;
        let numbers_over = cfg.number_limit.is_some_and(|limit| {
            expire(&mut state.numbers, arrived, limit.window, |(t, _)| *t);
            state.numbers.iter().map(|(_, n)| n).sum::<u32>() + listed > limit.count.get()
        });
        if state.recent.len() as u32 >= cfg.request_limit.count.get() {
            return Err((9, "too many requests, wait a minute"));
        }
        if same.len() as u32 >= cfg.identical_limit.count.get() {
            return Err((9, "duplicate request, wait a minute"));
        }
        if numbers_over {
            return Err((9, "too many numbers, wait a minute"));
        }
        state.recent.push_back(arrived);
        if cfg.number_limit.is_some() {
            state.numbers.push_back((arrived, listed));
        }
        same.push_back(arrived);
        Ok(same.len() as u64)
    }
}

/// The largest number of instants (sorted) within any half-open window of length `window`.
pub fn max_in_window(times: &[Instant], window: Duration) -> u64 {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_in_window_counts_half_open_windows() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [at(0), at(100), at(999), at(1000), at(1050), at(2050)];
        assert_eq!(max_in_window(&times, Duration::from_millis(1000)), 4);
        assert_eq!(max_in_window(&[], Duration::from_millis(1000)), 0);
    }

    #[test]
    fn each_limit_refuses_with_its_own_message() {
        let cfg = |extra: &str| {
            SandboxConfig::from_toml(&format!(
                "request_limit = \"3/1s\"\nidentical_limit = \"2/1s\"\n{extra}"
            ))
            .unwrap()
        };
        let t0 = Instant::now();
        let mut logins = Logins::default();
        let c = cfg("");
        assert_eq!(logins.admit(&c, "a", "1", t0), Ok(1));
        assert_eq!(logins.admit(&c, "a", "1", t0), Ok(2));
        assert_eq!(
            logins.admit(&c, "a", "1", t0).unwrap_err().1,
            "duplicate request, wait a minute"
        );
        assert_eq!(logins.admit(&c, "a", "2", t0), Ok(1));
        assert_eq!(
            logins.admit(&c, "a", "3", t0).unwrap_err().1,
            "too many requests, wait a minute"
        );
        // Another login has its own windows; a window later the first has room again.
        assert_eq!(logins.admit(&c, "b", "3", t0), Ok(1));
        assert_eq!(
            logins.admit(&c, "a", "3", t0 + Duration::from_secs(1)),
            Ok(1)
        );
        let c = cfg("number_limit = \"4/1s\"\n");
        let mut logins = Logins::default();
        assert_eq!(logins.admit(&c, "a", "1,2,3", t0), Ok(1));
        assert_eq!(
            logins.admit(&c, "a", "4,5", t0).unwrap_err().1,
            "too many numbers, wait a minute"
        );
        let c = cfg("max_concurrent = 2\n");
        let mut logins = Logins::default();
        assert_eq!(logins.enter("a"), 1);
        assert_eq!(logins.admit(&c, "a", "1", t0), Ok(1));
        logins.enter("a");
        assert_eq!(
            logins.admit(&c, "a", "2", t0).unwrap_err().1,
            "too many concurrent requests"
        );
        logins.leave("a");
        assert_eq!(logins.admit(&c, "a", "2", t0), Ok(1));
    }
}
