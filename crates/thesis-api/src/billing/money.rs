//! Money inside the server is integer nano-cents (10^-9 cent): token prices of a fraction of a
//! cent per million tokens stay exact, and every sum is an integer sum. Cents appear only at the
//! edges (JSON numbers, Stripe).

/// Nano-cents in one cent.
pub const NANOS_PER_CENT: i64 = 1_000_000_000;

pub fn cents_to_nanos(cents: i64) -> i64 {
    cents.saturating_mul(NANOS_PER_CENT)
}

/// Cents as a JSON number (may have a fraction).
pub fn nanos_to_cents(nanos: i64) -> f64 {
    // whole cents and the fraction apart, so large amounts keep their fraction
    let magnitude = nanos.unsigned_abs();
    let whole = (magnitude / NANOS_PER_CENT as u64) as f64;
    let frac = (magnitude % NANOS_PER_CENT as u64) as f64 / NANOS_PER_CENT as f64;
    let cents = whole + frac;
    if nanos < 0 { -cents } else { cents }
}

/// Whole cents, rounded down.
pub fn nanos_to_whole_cents(nanos: i64) -> i64 {
    nanos.div_euclid(NANOS_PER_CENT)
}

/// A price in cents per million tokens as nano-cents per token (= milli-cents per million
/// tokens). Prices are kept to 1/1000 cent per million tokens; finer digits are rounded.
pub fn price_per_mtok_to_nanos_per_token(cents_per_mtok: f64) -> i64 {
    (cents_per_mtok * 1000.0).round() as i64
}

/// Cost of `tokens` at `nanos_per_token`.
pub fn token_cost(tokens: i64, nanos_per_token: i64) -> i64 {
    tokens.saturating_mul(nanos_per_token)
}

/// Cost of `seconds` at `cents_per_hour`, to the nearest nano-cent.
pub fn compute_cost(seconds: f64, cents_per_hour: f64) -> i64 {
    (seconds * cents_per_hour * NANOS_PER_CENT as f64 / 3600.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_exact() {
        assert_eq!(price_per_mtok_to_nanos_per_token(2.5), 2500);
        assert_eq!(price_per_mtok_to_nanos_per_token(200.0), 200_000);
        // one million tokens at 2.5 cents per million is 2.5 cents exactly
        assert_eq!(token_cost(1_000_000, 2500), 2_500_000_000);
        assert_eq!(nanos_to_cents(2_500_000_000), 2.5);
        assert_eq!(nanos_to_cents(-1), -0.000000001);
        assert_eq!(nanos_to_whole_cents(2_999_999_999), 2);
        assert_eq!(compute_cost(3600.0, 95.0), 95 * NANOS_PER_CENT);
        // a sum of many tiny costs stays exact
        let sum: i64 = (0..1_000_000).map(|_| token_cost(1, 2500)).sum();
        assert_eq!(sum, 2_500_000_000);
    }
}
