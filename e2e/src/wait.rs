//! Polling with a deadline: the parts are real processes, so tests wait on observed state.

use std::future::Future;
use std::time::Duration;

use crate::{Error, Result};

/// Poll `check` every 250 ms until it yields `Some`, or fail with [`Error::Timeout`].
/// A `check` error ends the wait at once: a failing API call is not a state to wait out.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
