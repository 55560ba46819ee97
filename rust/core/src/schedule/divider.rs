//! Exact division of many numerators by one divisor, without an integer division per numerator.

/// Division of many non-negative numerators by one positive divisor, exact, through a
/// floating-point reciprocal and one correction step: NormalizeScore divides every node's score
/// by the same maximum, and a 64-bit integer division per node was most of its cost.
pub struct Divider {
    d: i64,
    inv: f64,
}

impl Divider {
    pub fn new(d: i64) -> Self {
        assert!(d > 0, "divisor {d} must be positive");
        Divider {
            d,
            inv: 1.0 / d as f64,
        }
    }

    /// `n / d`, rounded towards zero like `/`.
    #[inline]
    pub fn div(&self, n: i64) -> i64 {
        // Below 2^52 the numerator is exact as f64 and the estimate is off by at most one.
        if !(0..1 << 52).contains(&n) {
            return n / self.d;
        }
        let q = (n as f64 * self.inv) as i64;
        if q * self.d > n {
            q - 1
        } else if (q + 1) * self.d <= n {
            q + 1
        } else {
            q
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::framework::Rng;

    #[test]
    fn divider_is_exact() {
        let mut rng = Rng::new(3);
        let powers = (0..63).flat_map(|k| [(1i64 << k) - 1, 1 << k, (1 << k) + 1]);
        let wide = (0..200).map(|_| (rng.next_u64() >> (1 + rng.below(62))) as i64 | 1);
        let divisors: Vec<i64> = (1..2000)
            .chain([3, 7, 1 << 20, (1 << 40) + 7, i64::MAX, i64::MAX - 1])
            .chain(powers)
            .chain(wide)
            .filter(|&d| d > 0)
            .collect();
        for d in divisors {
            let div = Divider::new(d);
            let near = [d - 1, d, d.saturating_add(1), d.saturating_mul(100)];
            let multiples = [2, 3, 99, 100, 101, 1 << 20]
                .into_iter()
                .flat_map(|k: i64| {
                    d.checked_mul(k)
                        .map_or(vec![], |m| vec![m - 1, m, m + (m < i64::MAX) as i64])
                });
            for n in near.into_iter().chain(multiples).chain([
                0,
                1,
                (1 << 52) - 1,
                1 << 52,
                i64::MAX,
                i64::MAX - 1,
                -5,
            ]) {
                assert_eq!(div.div(n), n / d, "{n} / {d}");
            }
            for _ in 0..50 {
                let n = (rng.next_u64() >> (rng.below(60) + 4)) as i64;
                assert_eq!(div.div(n), n / d, "{n} / {d}");
            }
        }
    }
}
