//! What the connector tests against both emulators share.

use std::time::Duration;

use futures_util::StreamExt;
use tierd_connectors::connector::{AccountPage, Connector, CrmAccount, Watermark};
use tierd_connectors::http::RetryPolicy;

/// Retries quick enough for tests, jittered by `seed`.
pub fn fast_retries(seed: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        timeout: Duration::from_secs(10),
        jitter_seed: seed,
    }
}

/// Every page of a pull, which must succeed.
pub async fn pull(c: &dyn Connector, since: Option<Watermark>) -> Vec<AccountPage> {
    c.pull(since)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("pull succeeds")
}

/// The accounts of all pages.
pub fn accounts(pages: &[AccountPage]) -> Vec<&CrmAccount> {
    pages.iter().flat_map(|p| &p.accounts).collect()
}
