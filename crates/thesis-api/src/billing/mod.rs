//! Billing domain: money, the usage ledger with limit enforcement, billing periods and trials.
//! Features that create usage (responses, machines, storage) call [`ledger`].

pub mod leases;
pub mod ledger;
pub mod money;
pub mod period;
pub mod recordings;
pub mod stripe_sync;
pub mod trials;
