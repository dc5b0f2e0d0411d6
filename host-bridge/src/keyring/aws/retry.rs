//! The retry loop of the AWS keyring: the SDK's own retry is off, so that no attempt and no
//! sleep runs past `[aws] sign_deadline_ms`. What is retried: throttling (`ThrottlingException`
//! and the SDK's other throttling codes, HTTP 429), HTTP 5xx and the KMS errors the API reference
//! says may be retried, timeouts and connection (I/O) failures. Anything else fails at once.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::AwsError;

/// What one failed call means for the retry loop.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// Throttled: wait and retry.
    Throttled,
    /// 5xx, timeout, connection failure: wait and retry.
    Transient,
    /// Anything else: give up now.
    Fatal,
}

/// KMS error codes that mean "slow down" (`ThrottlingException` is the documented one for
/// `Sign`/`GetPublicKey`; the others are the SDK's generic throttling codes).
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

/// KMS error codes the API reference says may be retried, whatever their HTTP status.
const TRANSIENT: &[&str] = &[
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
];

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, HttpResponse>,
) -> (Class, String) {
    match e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("no error code");
            let what = match ctx.err().message() {
                Some(m) => format!("HTTP {status} {code}: {m}"),
                None => format!("HTTP {status} {code}"),
            };
            let class = if status == 429 || THROTTLING.contains(&code) {
                Class::Throttled
            } else if status >= 500 || TRANSIENT.contains(&code) {
                Class::Transient
            } else {
                Class::Fatal
            };
            (class, what)
        }
        SdkError::TimeoutError(_) => (Class::Transient, "timed out".into()),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
            (Class::Transient, DisplayErrorContext(e).to_string())
        }
        SdkError::ResponseError(r) if r.raw().status().as_u16() >= 500 => (
            Class::Transient,
            format!("HTTP {}", r.raw().status().as_u16()),
        ),
        _ => (Class::Fatal, DisplayErrorContext(e).to_string()),
    }
}

/// Run `call` until it succeeds, fails for good, or `budget` has passed.
pub(super) async fn retrying<T, E, F, Fut>(budget: Duration, mut call: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let deadline = Instant::now() + budget;
    let deadline_ms = budget.as_millis();
    let mut attempts = 0u32;
    let mut backoff = Duration::from_millis(50);
    let mut last = String::from("none");
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let outcome = match tokio::time::timeout(remaining, call()).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let last = format!("no answer before the deadline (previous failure: {last})");
                return Err(AwsError::Timeout {
                    attempts,
                    deadline_ms,
                    last,
                });
            }
        };
        let error = match outcome {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let (class, what) = classify(&error);
        if class == Class::Fatal {
            return Err(AwsError::Refused(what));
        }
        last = what;
        tracing::warn!(attempt = attempts, wait_ms = backoff.as_millis() as u64, last = %last, "AWS KMS: retrying");
        if Instant::now() + backoff >= deadline {
            return Err(if class == Class::Throttled {
                AwsError::Throttled {
                    attempts,
                    deadline_ms,
                }
            } else {
                AwsError::Timeout {
                    attempts,
                    deadline_ms,
                    last,
                }
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
