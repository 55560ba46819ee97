//! Vector bin packing: items with a size in each of `d` dimensions go into identical bins with a
//! capacity per dimension; use as few bins as possible. It is the pack objective of the
//! rebalancer stripped to its core (pods are items, identical nodes are bins), and the
//! Caprara–Toth instances measure how close a packer gets to the optimum.
//!
//! Here: lower bounds and the greedy packings from the literature, and the feasibility check every
//! reported packing goes through. The exact model (CP-SAT) lives in Python and starts from these.

pub mod local_search;

use crate::error::{ArgumentError, Error};
use crate::metrics::bounds::martello_toth_l2;
use crate::snapshot::MAX_TOTAL;

/// Items as rows of `dims` sizes, and the bin capacity per dimension.
#[derive(Clone, Debug)]
pub struct Instance {
    dims: usize,
    sizes: Vec<i64>,
    capacity: Vec<i64>,
}

impl Instance {
    /// `sizes` holds one row of `capacity.len()` sizes per item. Every item must fit an empty bin,
    /// or no packing exists.
    pub fn new(sizes: Vec<i64>, capacity: Vec<i64>) -> Result<Self, Error> {
        let dims = capacity.len();
        if dims == 0 {
            return Err(ArgumentError::invalid("capacity", "capacity: no dimensions").into());
        }
        if let Some((d, &c)) = capacity.iter().enumerate().find(|(_, &c)| c <= 0) {
            return Err(ArgumentError::invalid(
                "capacity",
                format!("capacity[{d}]: {c} is not positive"),
            )
            .into());
        }
        if sizes.len() % dims != 0 {
            return Err(ArgumentError::invalid(
                "sizes",
                format!(
                    "sizes: {} values are not whole rows of {dims} dimensions",
                    sizes.len()
                ),
            )
            .into());
        }
        if let Some((d, &c)) = capacity.iter().enumerate().find(|(_, &c)| c > MAX_TOTAL) {
            return Err(ArgumentError::invalid(
                "capacity",
                format!("capacity[{d}]: {c} is more than 2^62, the most kube-engine adds up"),
            )
            .into());
        }
        // As in a snapshot, sums stay within 2^62, so that loads never overflow.
        let mut total = vec![0i64; dims];
        for (k, &w) in sizes.iter().enumerate() {
            let (i, d) = (k / dims, k % dims);
            if w < 0 || w > capacity[d] {
                return Err(ArgumentError::invalid(
                    "sizes",
                    format!(
                        "item {i} dimension {d}: size {w} is outside 0..={}",
                        capacity[d]
                    ),
                )
                .into());
            }
            total[d] += w;
            if total[d] > MAX_TOTAL {
                return Err(ArgumentError::invalid(
                    "sizes",
                    format!(
                        "item {i} dimension {d}: the sizes up to this item add up to more than \
                         2^62, the most kube-engine adds up"
                    ),
                )
                .into());
            }
        }
        Ok(Instance {
            dims,
            sizes,
            capacity,
        })
    }

    pub fn len(&self) -> usize {
        self.sizes.len() / self.dims
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    fn item(&self, i: usize) -> &[i64] {
        &self.sizes[i * self.dims..(i + 1) * self.dims]
    }

    /// The item's sizes as shares of the capacity, so that dimensions in different units compare.
    fn normalised(&self, i: usize) -> impl Iterator<Item = f64> + '_ {
        self.item(i)
            .iter()
            .zip(&self.capacity)
            .map(|(&w, &c)| w as f64 / c as f64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowerBounds {
    /// Max over dimensions of ceil(total size / capacity).
    pub l1: u64,
    /// Max over dimensions of Martello–Toth L2 (never below `l1`).
    pub l2: u64,
}

/// Each bound relaxes the problem to one dimension, so the maximum over dimensions stays valid.
pub fn lower_bounds(inst: &Instance) -> LowerBounds {
    let mut l1 = 0;
    let mut l2 = 0;
    for d in 0..inst.dims {
        let column: Vec<i64> = (0..inst.len()).map(|i| inst.item(i)[d]).collect();
        let total: i128 = column.iter().map(|&w| i128::from(w)).sum();
        let c = i128::from(inst.capacity[d]);
        l1 = l1.max(((total + c - 1) / c) as u64);
        l2 = l2.max(martello_toth_l2(&column, inst.capacity[d]));
    }
    LowerBounds { l1, l2: l2.max(l1) }
}

/// Bin index per item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packing {
    pub bin: Vec<u32>,
    pub bins: usize,
    /// Which heuristic produced it, e.g. `ffd_sum`.
    pub heuristic: String,
}

impl Packing {
    /// A packing given as a bin per item, checked; bins must be numbered from 0 without gaps,
    /// as the local search drops bins by index.
    pub fn from_bins(inst: &Instance, bin: Vec<u32>) -> Result<Packing, Error> {
        let wide: Vec<i64> = bin.iter().map(|&b| i64::from(b)).collect();
        let bins = check(inst, &wide)?;
        let top = bin.iter().max().map_or(0, |&b| b as usize + 1);
        if bins != top {
            return Err(ArgumentError::invalid(
                "bins",
                format!("packing uses {bins} of the bins 0..{top}: number them without gaps"),
            )
            .into());
        }
        Ok(Packing {
            bin,
            bins,
            heuristic: "given".into(),
        })
    }
}

/// Item orders for the decreasing heuristics: each turns a vector into the scalar "size" that
/// decides which items go first.
#[derive(Clone, Copy, Debug)]
enum Order {
    Sum,
    L2,
    Max,
}

impl Order {
    const ALL: [Order; 3] = [Order::Sum, Order::L2, Order::Max];

    fn name(self) -> &'static str {
        match self {
            Order::Sum => "sum",
            Order::L2 => "l2",
            Order::Max => "max",
        }
    }

    fn key(self, inst: &Instance, i: usize) -> f64 {
        let v = inst.normalised(i);
        match self {
            Order::Sum => v.sum(),
            Order::L2 => v.map(|x| x * x).sum::<f64>().sqrt(),
            Order::Max => v.fold(0.0, f64::max),
        }
    }

    /// Largest first; ties by item index so the result does not depend on the sort.
    fn sorted(self, inst: &Instance) -> Vec<usize> {
        let keys: Vec<f64> = (0..inst.len()).map(|i| self.key(inst, i)).collect();
        let mut items: Vec<usize> = (0..inst.len()).collect();
        items.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]).then(a.cmp(&b)));
        items
    }
}

/// Open bins' loads, one row of `dims` per bin.
struct Bins<'a> {
    inst: &'a Instance,
    load: Vec<i64>,
    bin: Vec<u32>,
}

impl<'a> Bins<'a> {
    fn new(inst: &'a Instance) -> Self {
        Bins {
            inst,
            load: Vec::new(),
            bin: vec![u32::MAX; inst.len()],
        }
    }

    fn count(&self) -> usize {
        self.load.len() / self.inst.dims
    }

    fn fits(&self, b: usize, i: usize) -> bool {
        let d = self.inst.dims;
        self.load[b * d..(b + 1) * d]
            .iter()
            .zip(self.inst.item(i))
            .zip(&self.inst.capacity)
            .all(|((&l, &w), &c)| l + w <= c)
    }

    /// Normalised room left in bin `b` if item `i` joined it: best fit packs where this is least.
    fn slack_after(&self, b: usize, i: usize) -> f64 {
        let d = self.inst.dims;
        (0..d)
            .map(|k| {
                let room = self.inst.capacity[k] - self.load[b * d + k] - self.inst.item(i)[k];
                room as f64 / self.inst.capacity[k] as f64
            })
            .sum()
    }

    fn open(&mut self) -> usize {
        self.load.extend(std::iter::repeat_n(0, self.inst.dims));
        self.count() - 1
    }

    fn put(&mut self, b: usize, i: usize) {
        let d = self.inst.dims;
        for (l, &w) in self.load[b * d..(b + 1) * d]
            .iter_mut()
            .zip(self.inst.item(i))
        {
            *l += w;
        }
        self.bin[i] = b as u32;
    }

    fn into_packing(self, heuristic: String) -> Packing {
        Packing {
            bins: self.count(),
            bin: self.bin,
            heuristic,
        }
    }
}

fn first_fit_decreasing(inst: &Instance, order: Order) -> Packing {
    let mut bins = Bins::new(inst);
    for i in order.sorted(inst) {
        let b = (0..bins.count())
            .find(|&b| bins.fits(b, i))
            .unwrap_or_else(|| bins.open());
        bins.put(b, i);
    }
    bins.into_packing(format!("ffd_{}", order.name()))
}

fn best_fit_decreasing(inst: &Instance, order: Order) -> Packing {
    let mut bins = Bins::new(inst);
    for i in order.sorted(inst) {
        let mut best: Option<(f64, usize)> = None;
        for b in 0..bins.count() {
            if bins.fits(b, i) {
                let slack = bins.slack_after(b, i);
                if best.is_none_or(|(s, _)| slack < s) {
                    best = Some((slack, b));
                }
            }
        }
        let b = best.map(|(_, b)| b).unwrap_or_else(|| bins.open());
        bins.put(b, i);
    }
    bins.into_packing(format!("bfd_{}", order.name()))
}

/// Bin-centric dot product (Panigrahy, Talwar, Uyeda & Wieder, "Heuristics for vector bin
/// packing", 2011): fill one bin at a time, each time adding the item whose normalised size
/// points most along the bin's remaining room, so bins fill evenly in every dimension.
fn dot_product(inst: &Instance) -> Packing {
    let mut bins = Bins::new(inst);
    let mut left: Vec<usize> = (0..inst.len()).collect();
    while !left.is_empty() {
        let b = bins.open();
        loop {
            let d = inst.dims;
            let room: Vec<f64> = (0..d)
                .map(|k| (inst.capacity[k] - bins.load[b * d + k]) as f64 / inst.capacity[k] as f64)
                .collect();
            let mut best: Option<(f64, usize)> = None;
            for (pos, &i) in left.iter().enumerate() {
                if bins.fits(b, i) {
                    let dot: f64 = inst.normalised(i).zip(&room).map(|(w, r)| w * r).sum();
                    if best.is_none_or(|(s, _)| dot > s) {
                        best = Some((dot, pos));
                    }
                }
            }
            let Some((_, pos)) = best else { break };
            bins.put(b, left.remove(pos));
        }
    }
    bins.into_packing("dot_product".into())
}

/// The best of first fit and best fit decreasing under each item order and the dot-product
/// heuristic: no single one wins on every instance, and together they cost microseconds.
pub fn best_heuristic(inst: &Instance) -> Packing {
    let mut candidates = Vec::new();
    for order in Order::ALL {
        candidates.push(first_fit_decreasing(inst, order));
        candidates.push(best_fit_decreasing(inst, order));
    }
    candidates.push(dot_product(inst));
    // min_by_key keeps the first of equals: the listed order decides ties.
    candidates
        .into_iter()
        .min_by_key(|p| p.bins)
        .expect("at least one heuristic ran")
}

/// Why `bin` is not a packing of `inst`: an item without a valid bin, or a bin over capacity. The
/// number of bins used is the number of distinct bin indices.
pub fn check(inst: &Instance, bin: &[i64]) -> Result<usize, Error> {
    if bin.len() != inst.len() {
        return Err(ArgumentError::invalid(
            "bins",
            format!(
                "packing has {} bin indices for {} items",
                bin.len(),
                inst.len()
            ),
        )
        .into());
    }
    if let Some((i, &b)) = bin.iter().enumerate().find(|(_, &b)| b < 0) {
        return Err(
            ArgumentError::invalid("bins", format!("item {i}: bin index {b} is negative")).into(),
        );
    }
    // Bins by first use, not by index: an index may be as large as it likes without costing
    // memory.
    let mut dense: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let d = inst.dims;
    let mut load: Vec<i64> = Vec::new();
    for (i, &b) in bin.iter().enumerate() {
        let next = dense.len();
        let slot = *dense.entry(b).or_insert(next);
        if slot == next {
            load.resize(load.len() + d, 0);
        }
        // The instance's sizes add up to at most 2^62 per dimension: no overflow.
        for (k, &w) in inst.item(i).iter().enumerate() {
            load[slot * d + k] += w;
        }
    }
    let mut bins: Vec<(i64, usize)> = dense.into_iter().collect();
    bins.sort_unstable();
    for (b, slot) in &bins {
        for k in 0..d {
            if load[slot * d + k] > inst.capacity[k] {
                return Err(ArgumentError::invalid(
                    "bins",
                    format!(
                        "bin {b} dimension {k}: load {} exceeds capacity {}",
                        load[slot * d + k],
                        inst.capacity[k]
                    ),
                )
                .into());
            }
        }
    }
    Ok(bins.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(items: &[[i64; 2]], cap: [i64; 2]) -> Instance {
        Instance::new(items.iter().flatten().copied().collect(), cap.to_vec()).unwrap()
    }

    #[test]
    fn bounds_take_the_worst_dimension() {
        // Dimension 0 sums to 180 (L1 = 2) but no two of its items share a bin (L2 = 3).
        let i = inst(&[[60, 60], [60, 60], [60, 60]], [100, 200]);
        assert_eq!(lower_bounds(&i), LowerBounds { l1: 2, l2: 3 });
        let i = inst(&[[10, 90], [10, 90], [10, 10]], [100, 100]);
        assert_eq!(lower_bounds(&i), LowerBounds { l1: 2, l2: 2 });
    }

    #[test]
    fn dot_product_pairs_complementary_items() {
        // Two tall and two wide items: any tall fits with a wide one, two talls never share.
        let i = inst(&[[90, 10], [90, 10], [10, 90], [10, 90]], [100, 100]);
        let p = dot_product(&i);
        assert_eq!(p.bins, 2);
        assert_ne!(p.bin[0], p.bin[1]);
        assert_eq!(
            check(&i, &p.bin.iter().map(|&b| b as i64).collect::<Vec<_>>()).unwrap(),
            2
        );
    }

    #[test]
    fn first_fit_and_best_fit_by_hand() {
        // Sum order: 70+0, 50+40, 40+50, 30+30 (keys 0.7, 0.9, 0.9, 0.6) -> items 1, 2, 0, 3.
        let i = inst(&[[70, 0], [50, 40], [40, 50], [30, 30]], [100, 100]);
        let ff = first_fit_decreasing(&i, Order::Sum);
        // 1 -> bin 0; 2 -> bin 0 (90, 90); 0 -> bin 1; 3 -> bin 1 (100, 30).
        assert_eq!(ff.bin, vec![1, 0, 0, 1]);
        let bf = best_fit_decreasing(&i, Order::Sum);
        assert_eq!(bf.bins, 2);
        assert_eq!(best_heuristic(&i).bins, 2);
    }

    #[test]
    fn check_rejects_overfull_bins_and_wrong_lengths() {
        let i = inst(&[[60, 10], [60, 10]], [100, 100]);
        let err = check(&i, &[0, 0]).unwrap_err().to_string();
        assert!(err.contains("bin 0 dimension 0: load 120"), "{err}");
        assert!(check(&i, &[0]).is_err());
        assert!(check(&i, &[0, -1]).is_err());
        assert_eq!(check(&i, &[0, 3]).unwrap(), 2);
        // Far-off indices cost no memory.
        assert_eq!(check(&i, &[i64::MAX, 0]).unwrap(), 2);
    }

    #[test]
    fn sizes_at_the_limit_pack_and_beyond_it_are_refused() {
        let quarter = MAX_TOTAL / 4;
        let i = Instance::new(vec![quarter; 4], vec![MAX_TOTAL]).unwrap();
        assert_eq!(lower_bounds(&i), LowerBounds { l1: 1, l2: 1 });
        assert_eq!(best_heuristic(&i).bins, 1);
        assert_eq!(check(&i, &[0, 0, 0, 0]).unwrap(), 1);
        let i = Instance::new(vec![quarter; 4], vec![quarter]).unwrap();
        assert_eq!(best_heuristic(&i).bins, 4);
        let searched = local_search::local_search(&i, &best_heuristic(&i), 1, 10_000, 0);
        assert_eq!(searched.bins, 4);
        let err = Instance::new(vec![quarter; 5], vec![MAX_TOTAL]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("item 4 dimension 0: the sizes up to this item"));
        let err = Instance::new(vec![1], vec![i64::MAX]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("capacity[0]: 9223372036854775807 is more than 2^62"));
    }

    #[test]
    fn new_rejects_items_larger_than_a_bin() {
        let err = Instance::new(vec![5, 120], vec![100, 100]).unwrap_err();
        assert!(
            err.to_string().contains("item 0 dimension 1: size 120"),
            "{err}"
        );
        assert!(Instance::new(vec![1, 2, 3], vec![10, 10]).is_err());
        assert!(Instance::new(vec![], vec![0]).is_err());
    }

    #[test]
    fn every_heuristic_packs_feasibly_and_never_beats_the_bound() {
        let mut seed = 7u64;
        let mut next = |m: i64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64 % m
        };
        for _ in 0..300 {
            let dims = 1 + next(3) as usize;
            let capacity: Vec<i64> = (0..dims).map(|_| 50 + next(100)).collect();
            let n = next(40) as usize;
            let sizes: Vec<i64> = (0..n * dims)
                .map(|k| next(capacity[k % dims] + 1))
                .collect();
            let i = Instance::new(sizes, capacity).unwrap();
            let lb = lower_bounds(&i);
            let mut all = vec![dot_product(&i)];
            for order in Order::ALL {
                all.push(first_fit_decreasing(&i, order));
                all.push(best_fit_decreasing(&i, order));
            }
            for p in all {
                let bins: Vec<i64> = p.bin.iter().map(|&b| i64::from(b)).collect();
                let used = check(&i, &bins).unwrap_or_else(|e| panic!("{}: {e}", p.heuristic));
                assert_eq!(used, p.bins, "{}", p.heuristic);
                assert!(
                    p.bins as u64 >= lb.l2,
                    "{}: below the lower bound",
                    p.heuristic
                );
            }
        }
    }
}
