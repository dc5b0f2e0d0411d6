//! The one retry loop of the host-held keyrings that call a key service over the network
//! (Azure Key Vault, AWS KMS, Google Cloud KMS). Each keyring says what one failed attempt
//! means ([`Attempt`]); the loop owns the rest, the same for every service:
//!
//! * no attempt and no sleep runs past the sign deadline: each attempt gets what is left of it,
//!   and a wait that would end past it gives up at once;
//! * waits double from 50 ms up to 1 s, unless the service said how long (`Retry-After`);
//! * giving up says how many attempts were made, the deadline, and the last failure —
//!   [`GaveUp::Throttled`] when the service was still throttling, else [`GaveUp::Timeout`].
//!
//! The keyrings' own error types take a [`GaveUp`] (`From<GaveUp>`), so every service reports
//! a spent deadline in the same shape and the sign handler maps it the same way.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What one attempt came to.
pub enum Attempt<T, E> {
    /// The service answered: done.
    Done(T),
    /// The service refused for good (permissions, unknown key, a bad request): no retry.
    Fatal(E),
    /// Worth another attempt.
    Retry {
        /// What failed, for the log and the final error (never a secret or a token).
        what: String,
        /// The service said "slow down" (HTTP 429, a throttling error code).
        throttled: bool,
        /// How long the service asked us to wait (`Retry-After`), instead of the backoff.
        wait: Option<Duration>,
    },
}

/// The deadline passed without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// Still throttled when the deadline came.
    Throttled {
        /// Attempts made.
        attempts: u32,
        /// The deadline, ms.
        deadline_ms: u128,
    },
    /// No answer in time (timeouts, 5xx, connection failures until the deadline).
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// The deadline, ms.
        deadline_ms: u128,
        /// The last failure.
        last: String,
    },
}

/// `From<GaveUp>` for a keyring error with `Throttled { attempts, deadline_ms }` and
/// `Timeout { attempts, deadline_ms, last }` variants (each service words its own message).
macro_rules! gave_up_into {
    ($error:ty) => {
        impl From<$crate::keyring::retry::GaveUp> for $error {
            fn from(g: $crate::keyring::retry::GaveUp) -> Self {
                use $crate::keyring::retry::GaveUp;
                match g {
                    GaveUp::Throttled {
                        attempts,
                        deadline_ms,
                    } => Self::Throttled {
                        attempts,
                        deadline_ms,
                    },
                    GaveUp::Timeout {
                        attempts,
                        deadline_ms,
                        last,
                    } => Self::Timeout {
                        attempts,
                        deadline_ms,
                        last,
                    },
                }
            }
        }
    };
}
pub(crate) use gave_up_into;

/// First wait between attempts; doubled after each, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between attempts unless the service asks for longer.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Run `attempt` (given what is left of the deadline) until it is done, fails for good, or
/// `budget` has passed. `service` names the key service in the log.
pub async fn retrying<T, E, F, Fut>(service: &str, budget: Duration, mut attempt: F) -> Result<T, E>
where
    E: From<GaveUp>,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let deadline = Instant::now() + budget;
    let deadline_ms = budget.as_millis();
    let mut attempts = 0u32;
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::from("none");
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (what, throttled, asked) =
            match tokio::time::timeout(remaining, attempt(remaining)).await {
                Err(_) => {
                    return Err(GaveUp::Timeout {
                        attempts,
                        deadline_ms,
                        last: format!("no answer before the deadline (previous failure: {last})"),
                    }
                    .into());
                }
                Ok(Attempt::Done(value)) => return Ok(value),
                Ok(Attempt::Fatal(e)) => return Err(e),
                Ok(Attempt::Retry {
                    what,
                    throttled,
                    wait,
                }) => (what, throttled, wait),
            };
        let wait = asked.unwrap_or(backoff);
        last = what;
        tracing::warn!(attempt = attempts, wait_ms = wait.as_millis() as u64, last = %last, "{service}: retrying");
        if Instant::now() + wait >= deadline {
            return Err(if throttled {
                GaveUp::Throttled {
                    attempts,
                    deadline_ms,
                }
            } else {
                GaveUp::Timeout {
                    attempts,
                    deadline_ms,
                    last,
                }
            }
            .into());
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Error {
        Refused,
        GaveUp(GaveUp),
    }

    impl From<GaveUp> for Error {
        fn from(g: GaveUp) -> Error {
            Error::GaveUp(g)
        }
    }

    fn retry(throttled: bool, wait: Option<Duration>) -> Attempt<u8, Error> {
        Attempt::Retry {
            what: "HTTP 503".into(),
            throttled,
            wait,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_done_with_doubling_waits() {
        let started = tokio::time::Instant::now();
        let mut n = 0;
        let got: Result<u8, Error> = retrying("test", Duration::from_secs(3), |_| {
            n += 1;
            let a = if n < 4 {
                retry(false, None)
            } else {
                Attempt::Done(7)
            };
            async move { a }
        })
        .await;
        assert_eq!(got, Ok(7));
        assert_eq!(n, 4);
        // 50 + 100 + 200 ms of waiting before the fourth attempt.
        assert_eq!(started.elapsed(), Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_answer_is_not_retried() {
        let mut n = 0;
        let got: Result<u8, Error> = retrying("test", Duration::from_secs(3), |_| {
            n += 1;
            async { Attempt::Fatal(Error::Refused) }
        })
        .await;
        assert_eq!((got, n), (Err(Error::Refused), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_past_the_deadline_says_throttled() {
        let got: Result<u8, Error> = retrying("test", Duration::from_millis(1000), |_| async {
            retry(true, Some(Duration::from_millis(400)))
        })
        .await;
        // Attempts at 0 and 400 ms; the wait after the third (800 ms) would end past 1000.
        assert_eq!(
            got,
            Err(Error::GaveUp(GaveUp::Throttled {
                attempts: 3,
                deadline_ms: 1000
            }))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cut_at_the_deadline() {
        let mut n = 0;
        let got: Result<u8, Error> = retrying("test", Duration::from_millis(500), |left| {
            n += 1;
            let first = n == 1;
            async move {
                if first {
                    retry(false, None)
                } else {
                    tokio::time::sleep(left * 2).await;
                    Attempt::Done(1)
                }
            }
        })
        .await;
        assert_eq!(
            got,
            Err(Error::GaveUp(GaveUp::Timeout {
                attempts: 2,
                deadline_ms: 500,
                last: "no answer before the deadline (previous failure: HTTP 503)".into()
            }))
        );
    }
}
