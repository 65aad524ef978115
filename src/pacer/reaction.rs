//! The one table of what the pacer does about each class of provider error.
//!
//! Contract: [`reaction`] maps every [`ErrorClass`] to the [`Reaction`] the pacer takes; the
//! three places that act on a failure (what an answer teaches the run in `send.rs`, the retry
//! loop and the lookup's handling of a batch that got no answer in `mod.rs`) match on the
//! reaction, never on the class, so the table here is the whole policy and every description
//! of it points here.

use super::Stop;
use crate::provider::ErrorClass;

/// What the pacer does after a request failed with an error of some class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reaction {
    /// Send the batch again after an exponential back-off (with jitter), `max_retries` times at
    /// most; then give its numbers up (`failed`).
    RetryAfter,
    /// Pause the login that got it for a window, lower its rate and concurrency (shared by every
    /// run under that login on the machine), and send the batch again with whichever login is
    /// free.
    PauseLogin,
    /// Pause every login (the provider blocked our IP), doubling the pause on each repeat; stop
    /// the job past `max_blocked_wait`, or when it answered a login's two first requests.
    PauseAll,
    /// Drop the login (the provider refused its credentials) and send the batch with another;
    /// stop the job when no login is left.
    DropLogin,
    /// Split the batch in two to find the number at fault; a batch of one number gives it up.
    Split,
    /// Give the batch's numbers up (`failed`); the next run asks again.
    GiveUp,
    /// Stop the job: its settings are wrong, as the cause says.
    Stop(StopCause),
}

/// Which setting a [`Reaction::Stop`] says is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopCause {
    /// The provider's address redirects (`provider.base_url`).
    Redirected,
    /// The provider's certificate cannot be verified (`provider.ca_file`, `SSL_CERT_FILE`).
    Untrusted,
}

impl StopCause {
    /// The run's stop for this cause, with the error's text.
    pub(super) fn stop(self, why: String) -> Stop {
        match self {
            StopCause::Redirected => Stop::Redirected(why),
            StopCause::Untrusted => Stop::Untrusted(why),
        }
    }
}

/// What the pacer does about an error of `class`: the table (see the module's contract).
pub(super) const fn reaction(class: ErrorClass) -> Reaction {
    match class {
        ErrorClass::Transient => Reaction::RetryAfter,
        ErrorClass::RateLimited => Reaction::PauseLogin,
        ErrorClass::Blocked => Reaction::PauseAll,
        ErrorClass::Auth => Reaction::DropLogin,
        ErrorClass::BadRequest => Reaction::Split,
        ErrorClass::Fatal => Reaction::GiveUp,
        ErrorClass::Settings => Reaction::Stop(StopCause::Redirected),
        ErrorClass::Untrusted => Reaction::Stop(StopCause::Untrusted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ApiCode, ProviderError};
    use std::time::Duration;

    fn api(code: i64) -> ProviderError {
        ProviderError::Api {
            code: ApiCode::from_number(code),
            message: String::new(),
        }
    }

    /// Every error the provider or the wire can give, its class and the pacer's reaction.
    #[test]
    fn every_error_has_one_reaction() {
        let table = [
            (api(1), ErrorClass::BadRequest, Reaction::Split),
            (api(2), ErrorClass::Auth, Reaction::DropLogin),
            (api(3), ErrorClass::BadRequest, Reaction::Split),
            (api(4), ErrorClass::Blocked, Reaction::PauseAll),
            (api(9), ErrorClass::RateLimited, Reaction::PauseLogin),
            (api(7), ErrorClass::Fatal, Reaction::GiveUp),
            (
                ProviderError::Http { status: 503 },
                ErrorClass::Transient,
                Reaction::RetryAfter,
            ),
            (
                ProviderError::Http { status: 429 },
                ErrorClass::Transient,
                Reaction::RetryAfter,
            ),
            (
                ProviderError::Http { status: 401 },
                ErrorClass::Auth,
                Reaction::DropLogin,
            ),
            (
                ProviderError::Http { status: 404 },
                ErrorClass::Fatal,
                Reaction::GiveUp,
            ),
            (
                ProviderError::Redirected {
                    status: 301,
                    location: "https://elsewhere".into(),
                },
                ErrorClass::Settings,
                Reaction::Stop(StopCause::Redirected),
            ),
            (
                ProviderError::Untrusted {
                    host: "127.0.0.1".into(),
                    reason: "self-signed".into(),
                    remedy: "set provider.ca_file".into(),
                },
                ErrorClass::Untrusted,
                Reaction::Stop(StopCause::Untrusted),
            ),
            (
                ProviderError::Timeout(Duration::from_secs(1)),
                ErrorClass::Transient,
                Reaction::RetryAfter,
            ),
            (
                ProviderError::Transport {
                    message: "reset".into(),
                    source: None,
                },
                ErrorClass::Transient,
                Reaction::RetryAfter,
            ),
            (
                ProviderError::Malformed("<html>".into()),
                ErrorClass::Transient,
                Reaction::RetryAfter,
            ),
        ];
        for (error, class, expected) in table {
            assert_eq!(error.class(), class, "{error}");
            assert_eq!(reaction(error.class()), expected, "{error}");
        }
    }
}
