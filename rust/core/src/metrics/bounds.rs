//! Lower bounds on the number of nodes a set of pods needs.
//!
//! Pods are items, nodes are bins of differing sizes. Every bound here relaxes the problem (ignores
//! some constraint), so it never exceeds the true optimum:
//! * **L1** — per resource, the fewest nodes whose combined allocatable covers the total request
//!   (largest nodes first); the maximum over resources.
//! * **L2** — per resource, the Martello–Toth bound (1990) for bins of the largest node's size,
//!   which counts pods that cannot share a node; for GPUs the same bound over devices (share pods are
//!   items in 1000-milli devices), turned into nodes by the largest device counts. The reported
//!   "strong" bound is the maximum of L1 and these.

/// The fewest of `capacities` (largest first) whose sum reaches `demand`; `None` if all of them
/// together do not.
pub fn fewest_covering(capacities: &mut [i64], demand: i128) -> Option<usize> {
    if demand <= 0 {
        return Some(0);
    }
    capacities.sort_unstable_by(|a, b| b.cmp(a));
    let mut sum: i128 = 0;
    for (k, &c) in capacities.iter().enumerate() {
        sum += i128::from(c);
        if sum >= demand {
            return Some(k + 1);
        }
    }
    None
}

/// Martello–Toth L2 for items `sizes` in bins of `capacity` (items larger than a bin are counted as
/// one bin each, which keeps the bound valid and shows up as infeasible elsewhere).
pub fn martello_toth_l2(sizes: &[i64], capacity: i64) -> u64 {
    if capacity <= 0 {
        return 0;
    }
    let mut w: Vec<i64> = sizes.iter().copied().filter(|&s| s > 0).collect();
    if w.is_empty() {
        return 0;
    }
    w.sort_unstable();
    let n = w.len();
    // prefix[i] = sum of w[..i]
    let mut prefix = vec![0i128; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + i128::from(w[i]);
    }
    let c = i128::from(capacity);
    let count_le = |x: i64| w.partition_point(|&v| v <= x); // items with size <= x
    let count_lt = |x: i64| w.partition_point(|&v| v < x); // items with size < x
    let half = capacity / 2;
    let mut ks: Vec<i64> = w.iter().copied().filter(|&v| v <= half).collect();
    ks.dedup();
    ks.push(0);
    let mut best: u64 = 0;
    for k in ks {
        // J1: w > C - K;  J2: C/2 < w <= C - K;  J3: K <= w <= C/2.
        let j1_start = count_le(capacity - k);
        let j2_start = count_le(half);
        let j3_start = count_lt(k.max(1));
        let j1 = (n - j1_start) as i128;
        let j2 = (j1_start - j2_start) as i128;
        let sum_j2 = prefix[j1_start] - prefix[j2_start];
        let sum_j3 = prefix[j2_start] - prefix[j3_start];
        let room_in_j2 = j2 * c - sum_j2;
        let extra = sum_j3 - room_in_j2;
        let extra_bins = if extra > 0 { (extra + c - 1) / c } else { 0 };
        best = best.max((j1 + j2 + extra_bins) as u64);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_uses_largest_first() {
        assert_eq!(fewest_covering(&mut [4, 8, 2], 9), Some(2));
        assert_eq!(fewest_covering(&mut [4, 8, 2], 14), Some(3));
        assert_eq!(fewest_covering(&mut [4, 8, 2], 15), None);
        assert_eq!(fewest_covering(&mut [], 0), Some(0));
    }

    #[test]
    fn l2_counts_big_items_that_cannot_pair() {
        // Six items of 60 in bins of 100: L1 = ceil(360/100) = 4, but no two share a bin: 6.
        assert_eq!(martello_toth_l2(&[60; 6], 100), 6);
        // Items of 50 pair up exactly.
        assert_eq!(martello_toth_l2(&[50; 6], 100), 3);
        // Big items leave room that small items must fill: 3 x 70 + 4 x 40 -> the 40s cannot go
        // with a 70 (110 > 100); they need 2 more bins.
        assert_eq!(martello_toth_l2(&[70, 70, 70, 40, 40, 40, 40], 100), 5);
        assert_eq!(martello_toth_l2(&[], 100), 0);
    }

    #[test]
    fn l2_never_exceeds_a_brute_force_optimum() {
        // Exhaustive first-fit over all orders is an upper bound; L2 must not exceed the optimum.
        fn optimum(items: &[i64], cap: i64) -> u64 {
            fn go(i: usize, items: &[i64], bins: &mut Vec<i64>, cap: i64, best: &mut usize) {
                if bins.len() >= *best {
                    return;
                }
                if i == items.len() {
                    *best = bins.len();
                    return;
                }
                for b in 0..bins.len() {
                    if bins[b] + items[i] <= cap {
                        bins[b] += items[i];
                        go(i + 1, items, bins, cap, best);
                        bins[b] -= items[i];
                    }
                }
                bins.push(items[i]);
                go(i + 1, items, bins, cap, best);
                bins.pop();
            }
            let mut best = items.len() + 1;
            go(0, items, &mut Vec::new(), cap, &mut best);
            best as u64
        }
        let mut seed = 12345u64;
        for _ in 0..300 {
            let n = (seed % 8) as usize + 1;
            let items: Vec<i64> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as i64 % 100 + 1
                })
                .collect();
            let l2 = martello_toth_l2(&items, 100);
            let opt = optimum(&items, 100);
            let l1 = (items.iter().sum::<i64>() as u64).div_ceil(100);
            assert!(l2 <= opt, "{items:?}: L2 {l2} > optimum {opt}");
            assert!(l2 >= l1, "{items:?}: L2 {l2} < L1 {l1}");
        }
    }
}
