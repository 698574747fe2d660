//! Usage recordings still in flight on this instance.
//!
//! The gateway answers a response as soon as the upstream has finished and commits its usage
//! record (and the stored response) right after, off the client's clock. Until that commit its
//! reservation still counts against the limits, so admission is never too generous. What must
//! see the commit — a usage or billing read, a stored response fetched or continued — first
//! waits here for the organization's recordings in flight on this instance, which on an idle
//! organization costs one map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::{Member, MinRole, OrgCtx};
use crate::error::ApiError;
use crate::state::AppState;

/// How long a read waits for recordings in flight before it goes ahead anyway (a recording that
/// retries a failing database must not hold reads for minutes).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Recordings {
    by_org: Mutex<HashMap<Uuid, watch::Sender<usize>>>,
}

/// One recording in flight; dropping it marks it done.
pub struct Recording {
    recordings: Arc<Recordings>,
    org_id: Uuid,
}

impl Recordings {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Sender<usize>>> {
        self.by_org.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a recording for `org_id` that is about to start.
    pub fn start(self: &Arc<Self>, org_id: Uuid) -> Recording {
        self.lock()
            .entry(org_id)
            .or_insert_with(|| watch::channel(0).0)
            .send_modify(|n| *n += 1);
        Recording {
            recordings: self.clone(),
            org_id,
        }
    }

    /// Waits until no recording of `org_id` is in flight on this instance.
    pub async fn settled(&self, org_id: Uuid) {
        let receiver = self.lock().get(&org_id).map(|s| s.subscribe());
        if let Some(mut rx) = receiver {
            let _ = tokio::time::timeout(SETTLE_TIMEOUT, rx.wait_for(|n| *n == 0)).await;
        }
    }

    /// Waits until no recording of any organization is in flight on this instance.
    pub async fn all_settled(&self) {
        let receivers: Vec<_> = self.lock().values().map(|s| s.subscribe()).collect();
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, async {
            for mut rx in receivers {
                let _ = rx.wait_for(|n| *n == 0).await;
            }
        })
        .await;
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let mut by_org = self.recordings.lock();
        if let Some(sender) = by_org.get(&self.org_id) {
            sender.send_modify(|n| *n = n.saturating_sub(1));
            if *sender.borrow() == 0 {
                // waiting readers see 0 (or the closed channel) and go ahead
                by_org.remove(&self.org_id);
            }
        }
    }
}

/// The caller's organization context (`OrgCtx<R>`) once its usage recordings in flight on this
/// instance have landed: the extractor of routes that read usage.
pub struct Settled<R: MinRole = Member>(pub OrgCtx<R>);

impl<R: MinRole> FromRequestParts<AppState> for Settled<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ctx = OrgCtx::<R>::from_request_parts(parts, state).await?;
        state.recordings.settled(ctx.org_id()).await;
        Ok(Settled(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_wait_for_the_recordings_of_their_organization_only() {
        let recordings = Arc::new(Recordings::default());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = recordings.start(a);
        let second = recordings.start(a);
        // another organization is not held up
        tokio::time::timeout(Duration::from_millis(100), recordings.settled(b))
            .await
            .expect("b has nothing in flight");
        let waiting = {
            let recordings = recordings.clone();
            tokio::spawn(async move { recordings.settled(a).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "two recordings of a are in flight");
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "one recording of a is still in flight"
        );
        drop(second);
        tokio::time::timeout(Duration::from_millis(100), waiting)
            .await
            .expect("settled once both are done")
            .unwrap();
        assert!(
            recordings.lock().is_empty(),
            "idle organizations leave no entry"
        );
    }
}
