//! Floats as Python computes and orders them, so that the greedy starts take the decisions the
//! Python search would.

use std::cmp::Ordering;

/// A float ordered as Python orders floats (IEEE comparison, so -0.0 equals 0.0); NaN, which
/// no utilisation is, sorts by `total_cmp` so that the order stays total.
#[derive(Clone, Copy, Debug)]
pub(super) struct Key(pub f64);

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .partial_cmp(&other.0)
            .unwrap_or_else(|| self.0.total_cmp(&other.0))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

/// `x ** 2` as Python computes it: the C library's `pow`, which for about one value in a
/// thousand rounds differently from `x * x`. The exponent is hidden from the optimiser, which
/// would otherwise turn the call into that product.
pub(super) fn py_square(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}
