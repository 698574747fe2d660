//! Usage leases: admission without a database round trip on the request's critical path.
//!
//! An instance takes a *lease* for an organization: one reservation row of about two seconds'
//! worth of the organization's recent estimated usage on this instance, granted only when it fits
//! entirely within the room left under the organization's limit (or its trial). Requests are then
//! admitted from the lease in memory; each keeps its estimate of the lease's row until its usage
//! is recorded, which takes that estimate off the row. Since a lease is an ordinary reservation,
//! every instance's admissions see it, and the limits hold across instances exactly as with one
//! reservation per request.
//!
//! A lease running low (half of it spent, or half its age gone) is renewed in the background
//! while requests go on being admitted from it: the new lease replaces it, and what is left of
//! the old one is given back. Under a steady load no request waits for the database; one waits
//! only when its lease ran out before the renewal landed (a burst), or when there was none.
//!
//! A lease is given back (its unused part taken off the row) when it cannot cover the next
//! request, when it has been idle for [`IDLE`], after [`MAX_AGE`], when the auth generation moves
//! (a change to the organization, its limits or its trials: see `auth::cache`), and at shutdown.
//! A lease is never larger than a tenth of the limit (or of the trial's allowance), and near a
//! limit, where no lease fits, each request takes a reservation of its own
//! ([`ledger::admit`]): the last requests before a limit are admitted exactly as without leases.
//! An instance that dies holds its lease until the row expires (30 minutes), like any reservation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thesis_db::entities::organization;
use uuid::Uuid;

use super::ledger::{self, Admission};
use crate::error::ApiError;
use crate::state::AppState;

/// A lease unused this long is given back, so that other instances can have its room.
pub const IDLE: Duration = Duration::from_secs(2);
/// A lease is replaced after this long (its row's expiry is far later).
const MAX_AGE: Duration = Duration::from_secs(60);
/// Seconds of the recent usage rate a lease covers.
const LEASE_SECONDS: i64 = 2;
/// A lease covers at least this many requests like the current one.
const MIN_REQUESTS: i64 = 16;
/// A lease is at most this fraction of the limit (or the trial's allowance).
const MAX_SHARE: i64 = 10;
/// After a renewal was refused (no room for a lease near a limit) or failed, the next one is
/// tried no sooner than this.
const RENEW_BACKOFF: Duration = Duration::from_secs(1);
/// A request whose lease is spent waits this long at most for the renewal under way.
const RENEW_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Leases {
    by_org: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<OrgLease>>>>,
    /// Rows of leases given back, deleted once their requests have all been recorded.
    closed: Mutex<Vec<Uuid>>,
    /// Admissions from a lease in memory, leases granted on a request's path, requests that took
    /// a reservation of their own, and leases renewed in the background, since start.
    counts: [std::sync::atomic::AtomicU64; 4],
}

/// Indexes of [`Leases::counts`] and their metrics.
const FROM_LEASE: usize = 0;
const GRANTED: usize = 1;
const OWN: usize = 2;
const RENEWED: usize = 3;
const COUNT_METRICS: [&str; 4] = [
    "usage_admissions_from_lease_total",
    "usage_leases_granted_total",
    "usage_admissions_own_reservation_total",
    "usage_leases_renewed_total",
];

#[derive(Default)]
struct OrgLease {
    lease: Option<Lease>,
    meter: Meter,
    /// The size of the last lease, and whether it was used up sooner than [`LEASE_SECONDS`]:
    /// then the next one is twice as large.
    last_size: i64,
    last_spent_fast: bool,
    /// A renewal is under way in the background; `landed` is told when it is over.
    renewing: bool,
    landed: Arc<tokio::sync::Notify>,
    /// When the last renewal was refused or failed.
    renew_refused_at: Option<Instant>,
}

struct Lease {
    id: Uuid,
    /// What it was granted with.
    size: i64,
    /// What is left to admit from.
    free: i64,
    trial: bool,
    /// The auth generation the lease was granted under.
    generation: i64,
    granted_at: Instant,
    last_used: Instant,
}

/// Estimated usage admitted per second, over the last whole second.
struct Meter {
    since: Instant,
    sum: i64,
    per_second: i64,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            since: Instant::now(),
            sum: 0,
            per_second: 0,
        }
    }
}

impl Meter {
    fn add(&mut self, amount: i64) {
        let elapsed = self.since.elapsed();
        if elapsed >= Duration::from_secs(1) {
            self.per_second = (self.sum as f64 / elapsed.as_secs_f64()) as i64;
            self.sum = 0;
            self.since = Instant::now();
        }
        self.sum = self.sum.saturating_add(amount);
    }
}

impl Lease {
    fn usable(&self, generation: Option<i64>, estimate: i64) -> bool {
        generation == Some(self.generation)
            && self.granted_at.elapsed() < MAX_AGE
            && self.free >= estimate
    }

    /// Half of it spent, or half its age gone: time to renew it.
    fn running_low(&self) -> bool {
        self.free.saturating_mul(2) < self.size || self.granted_at.elapsed() >= MAX_AGE / 2
    }
}

impl OrgLease {
    /// Whether a renewal may start now.
    fn may_renew(&self) -> bool {
        !self.renewing
            && self
                .renew_refused_at
                .is_none_or(|at| at.elapsed() >= RENEW_BACKOFF)
    }
}

impl Leases {
    fn slot(&self, org_id: Uuid) -> Arc<tokio::sync::Mutex<OrgLease>> {
        self.by_org
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(org_id)
            .or_default()
            .clone()
    }

    /// Admits a request of estimated cost `estimate` for `org`: from this instance's lease when
    /// it covers it, else from a new lease, else (near a limit) with a reservation of its own, or
    /// refused (429 / 402) as [`ledger::admit`] refuses.
    pub async fn admit(
        &self,
        state: &AppState,
        org: &organization::Model,
        estimate: i64,
    ) -> Result<Admission, ApiError> {
        let estimate = estimate.max(0);
        let generation = state.auth_cache.trusted_generation();
        let slot = self.slot(org.id);
        let mut s = slot.lock().await;
        s.meter.add(estimate);
        let admitted = |lease: &Lease| Admission {
            id: lease.id,
            organization_id: org.id,
            amount_nanos: estimate,
            trial: lease.trial,
            leased: true,
        };
        loop {
            if let Some(lease) = s.lease.as_mut().filter(|l| l.usable(generation, estimate)) {
                lease.free -= estimate;
                lease.last_used = Instant::now();
                self.count(FROM_LEASE);
                let admission = admitted(lease);
                let (low, size, spent_fast) = (
                    lease.running_low(),
                    lease.size,
                    lease.granted_at.elapsed() < Duration::from_secs(LEASE_SECONDS as u64) / 2,
                );
                if low
                    && let Some(generation) = generation
                    && s.may_renew()
                {
                    // half of it gone within half its time: the next one is twice as large
                    let previous = if spent_fast { size } else { 0 };
                    let size =
                        self.lease_size(state, org, estimate, s.meter.per_second.max(previous));
                    s.renewing = true;
                    let (state, org) = (state.clone(), org.clone());
                    state.background.clone().spawn(async move {
                        state.leases.renew(&state, &org, generation, size).await;
                    });
                }
                return Ok(admission);
            }
            // a renewal under way takes the spent lease's place: wait for it rather than take a
            // second lease beside it (near a limit there is room for one of them only)
            if !s.renewing {
                break;
            }
            let landed = s.landed.clone();
            let notified = landed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            drop(s);
            let waited = tokio::time::timeout(RENEW_WAIT, notified).await;
            s = slot.lock().await;
            if waited.is_err() {
                // not landed in time (its task may be gone): requests take leases themselves again
                s.renewing = false;
            }
        }
        // spent, stale or none: give back what is left, then try a new lease
        if let Some(old) = s.lease.take() {
            s.last_spent_fast = old.free < estimate
                && old.granted_at.elapsed() < Duration::from_secs(LEASE_SECONDS as u64);
            self.close(state, &old).await;
        }
        // leases are kept only while changes to the organization are noticed (the generation)
        if let Some(generation) = generation {
            // the last one spent within its time: this one is twice as large
            let previous = if s.last_spent_fast { s.last_size } else { 0 };
            let size = self.lease_size(state, org, estimate, s.meter.per_second.max(previous));
            s.last_size = size;
            if let Some((id, trial)) =
                ledger::grant_lease(&state.db, state.free_daily_limit_cents(), org, size).await?
            {
                let now = Instant::now();
                let lease = Lease {
                    id,
                    size,
                    free: size - estimate,
                    trial,
                    generation,
                    granted_at: now,
                    last_used: now,
                };
                let admission = admitted(&lease);
                s.lease = Some(lease);
                self.count(GRANTED);
                return Ok(admission);
            }
        }
        self.count(OWN);
        ledger::admit(&state.db, state.free_daily_limit_cents(), org, estimate).await
    }

    /// Grants a lease of `size` in the background and puts it in place of the current one,
    /// whose unused part is given back (see [`Leases::admit`]).
    async fn renew(&self, state: &AppState, org: &organization::Model, generation: i64, size: i64) {
        let granted =
            ledger::grant_lease(&state.db, state.free_daily_limit_cents(), org, size).await;
        let slot = self.slot(org.id);
        let mut s = slot.lock().await;
        s.renewing = false;
        // those waiting take the lock next, and find what this leaves
        s.landed.notify_waiters();
        let (id, trial) = match granted {
            Ok(Some(granted)) => granted,
            Ok(None) => {
                // near a limit: the current lease is used up, then requests reserve their own
                s.renew_refused_at = Some(Instant::now());
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewing a usage lease failed; admission goes on");
                s.renew_refused_at = Some(Instant::now());
                return;
            }
        };
        let now = Instant::now();
        let new = Lease {
            id,
            size,
            free: size,
            trial,
            generation,
            granted_at: now,
            last_used: s.lease.as_ref().map_or(now, |l| l.last_used),
        };
        // checked under the slot's lock, which the keeper's final give-back also takes
        let unwanted = state.shutdown.is_cancelled()
            || state.auth_cache.trusted_generation() != Some(generation);
        let old = if unwanted {
            Some(new)
        } else {
            s.last_size = size;
            s.last_spent_fast = false;
            self.count(RENEWED);
            s.lease.replace(new)
        };
        drop(s);
        if let Some(old) = old {
            self.close(state, &old).await;
        }
    }

    fn count(&self, which: usize) {
        self.counts[which].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!(COUNT_METRICS[which]).increment(1);
    }

    /// (admissions from a lease in memory, leases granted, own reservations) since start.
    pub fn counts(&self) -> (u64, u64, u64) {
        let get = |i: usize| self.counts[i].load(std::sync::atomic::Ordering::Relaxed);
        (get(FROM_LEASE), get(GRANTED), get(OWN))
    }

    /// Leases renewed in the background since start.
    pub fn renewals(&self) -> u64 {
        self.counts[RENEWED].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// About [`LEASE_SECONDS`] of this instance's recent usage of the organization, at least
    /// [`MIN_REQUESTS`] requests like this one, at most a [`MAX_SHARE`]th of its limit.
    fn lease_size(
        &self,
        state: &AppState,
        org: &organization::Model,
        estimate: i64,
        per_second: i64,
    ) -> i64 {
        let wanted = per_second
            .saturating_mul(LEASE_SECONDS)
            .max(estimate.saturating_mul(MIN_REQUESTS));
        let limit = ledger::limit_of(org, state.free_daily_limit_cents(), thesis_db::now());
        let size = match limit {
            Some(limit) => wanted.min(limit / MAX_SHARE),
            None => wanted,
        };
        // at least one nano-cent, so that a lease is granted only where a request alone would
        // be (room left at all), even for requests that cost nothing
        size.max(estimate).max(1)
    }

    /// Gives a lease's unused part back; its row goes once its requests are recorded.
    async fn close(&self, state: &AppState, lease: &Lease) {
        if let Err(e) = ledger::shrink_lease(&state.db, lease.id, lease.free).await {
            // the row keeps it until it expires; admission goes on
            tracing::warn!(error = %e, "giving a usage lease back failed");
        }
        self.closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(lease.id);
    }

    /// Deletes the rows of leases given back whose requests have all been recorded.
    async fn delete_drained(&self, state: &AppState) {
        let ids = std::mem::take(&mut *self.closed.lock().unwrap_or_else(|e| e.into_inner()));
        if ids.is_empty() {
            return;
        }
        match ledger::delete_drained_leases(&state.db, &ids).await {
            Ok(left) => self
                .closed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(left),
            Err(e) => {
                tracing::warn!(error = %e, "deleting drained usage leases failed");
                self.closed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(ids);
            }
        }
    }

    /// Gives an admission back without usage (the request failed before any): to its lease
    /// when that is still this instance's current one, else to the database.
    pub async fn release(&self, state: &AppState, admission: &Admission) -> Result<(), ApiError> {
        if admission.leased {
            let slot = self.slot(admission.organization_id);
            let mut s = slot.lock().await;
            if let Some(lease) = s.lease.as_mut().filter(|l| l.id == admission.id) {
                lease.free += admission.amount_nanos;
                return Ok(());
            }
        }
        ledger::release(&state.db, admission).await
    }

    /// Gives back the leases that are idle, too old or granted under an older generation
    /// (`all`: every lease, at shutdown).
    pub async fn give_back(&self, state: &AppState, all: bool) {
        let slots: Vec<(Uuid, Arc<tokio::sync::Mutex<OrgLease>>)> = self
            .by_org
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let generation = state.auth_cache.trusted_generation();
        for (org_id, slot) in slots {
            let mut s = slot.lock().await;
            let stale = s.lease.as_ref().is_some_and(|l| {
                all || l.last_used.elapsed() >= IDLE
                    || l.granted_at.elapsed() >= MAX_AGE
                    || generation != Some(l.generation)
            });
            if stale && let Some(lease) = s.lease.take() {
                self.close(state, &lease).await;
            }
            let idle = s.lease.is_none() && s.meter.since.elapsed() > IDLE * 10;
            drop(s);
            if idle {
                // forget organizations not seen for a while (a new slot starts from scratch)
                let mut by_org = self.by_org.lock().unwrap_or_else(|e| e.into_inner());
                if by_org
                    .get(&org_id)
                    .is_some_and(|v| Arc::strong_count(v) == 2)
                {
                    by_org.remove(&org_id);
                }
            }
        }
    }
}

/// Gives idle and stale leases back every second, and every lease at shutdown.
pub fn spawn_keeper(state: &AppState) {
    let state = state.clone();
    state.background.clone().spawn(async move {
        let mut ticks = state.ticks(Duration::from_secs(1));
        while ticks.next().await {
            state.leases.give_back(&state, false).await;
            state.leases.delete_drained(&state).await;
        }
        state.leases.give_back(&state, true).await;
    });
}
