//! `Patch<T>`: a request field that can be absent (leave as is), `null` (clear) or a value.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_present(&self) -> bool {
        !matches!(self, Patch::Absent)
    }

    /// `None` when absent, `Some(None)` for null, `Some(Some(v))` for a value.
    pub fn into_update(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        }
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(|o| o.map_or(Patch::Null, Patch::Value))
    }
}

/// Largest amount of cents accepted in limits and prices (ten billion dollars).
pub const MAX_CENTS: i64 = 1_000_000_000_000;

/// garde rule: a present cents value is within `0..=MAX_CENTS`.
pub fn cents(value: &Patch<i64>, _ctx: &()) -> garde::Result {
    match value.value() {
        Some(v) if !(0..=MAX_CENTS).contains(v) => Err(garde::Error::new(format!(
            "must be between 0 and {MAX_CENTS} cents, or null"
        ))),
        _ => Ok(()),
    }
}

/// garde rule: a present count is within `0..=100000`.
pub fn count(value: &Patch<i64>, _ctx: &()) -> garde::Result {
    match value.value() {
        Some(v) if !(0..=100_000).contains(v) => {
            Err(garde::Error::new("must be between 0 and 100000, or null"))
        }
        _ => Ok(()),
    }
}
