//! The retry loop of the AWS keyring: the SDK's own retry is off, so that no attempt and no
//! sleep runs past `[aws] sign_deadline_ms`. What is retried: throttling (`ThrottlingException`
//! and the SDK's other throttling codes, HTTP 429), HTTP 5xx and the KMS errors the API reference
//! says may be retried, timeouts and connection (I/O) failures. Anything else fails at once.

use std::future::Future;
use std::time::Duration;

use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::AwsError;
use crate::keyring::retry::Attempt;

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

/// Run `call` until it succeeds, fails for good, or `budget` has passed ([`crate::keyring::retry`]).
pub(super) async fn retrying<T, E, F, Fut>(budget: Duration, mut call: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    crate::keyring::retry::retrying("AWS KMS", budget, |_| {
        let answer = call();
        async move {
            let error = match answer.await {
                Ok(v) => return Attempt::Done(v),
                Err(e) => e,
            };
            match classify(&error) {
                (Class::Fatal, what) => Attempt::Fatal(AwsError::Refused(what)),
                (class, what) => Attempt::Retry {
                    what,
                    throttled: class == Class::Throttled,
                    wait: None,
                },
            }
        }
    })
    .await
}

crate::keyring::retry::gave_up_into!(AwsError);
