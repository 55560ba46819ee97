//! The node search when a demand's cached totals are all there is to look at: every filter left
//! is node-local, every score final, and every node passes the static filters. The walk then
//! reads blocks of totals through summaries (how many are feasible, the highest), made in one
//! vectorised pass, and looks at single nodes only where it ends and where the best ones are.

use super::framework::{Rng, TieBreak};
use crate::snapshot::NodeId;

/// A node-local filter rejected the node.
pub(crate) const REJECTED: i32 = i32::MIN;

/// Positions per summarised block.
const BLOCK: usize = 64;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Summary {
    feasible: u32,
    /// The highest total, [`REJECTED`] when none is feasible.
    max: i32,
    /// How many positions hold `max`.
    ties: u32,
}

impl Summary {
    fn of(totals: &[i32]) -> Summary {
        // Baseline x86-64 has no packed 32-bit maximum; AVX2 has, eight lanes wide.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { summary_avx2(totals) };
        }
        summary(totals)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn summary_avx2(totals: &[i32]) -> Summary {
    summary(totals)
}

#[inline(always)]
fn summary(totals: &[i32]) -> Summary {
    // Separate passes without branches or overflow checks, so each is vectorised.
    let max = totals.iter().fold(REJECTED, |m, &t| m.max(t));
    Summary {
        feasible: totals.len() as u32 - count_equal(totals, REJECTED),
        max,
        ties: count_equal(totals, max),
    }
}

/// A demand's totals per node position, with block summaries made on first read after a change.
pub(crate) struct Totals {
    totals: Vec<i32>,
    summaries: Vec<Option<Summary>>,
    /// A bit per position, set where the total is not [`REJECTED`]: on a full cluster most are,
    /// and a walk reads 64 positions a word.
    open: Vec<u64>,
}

impl Totals {
    pub fn new(n: usize) -> Self {
        Totals {
            totals: vec![REJECTED; n],
            summaries: vec![None; n.div_ceil(BLOCK)],
            open: vec![0; n.div_ceil(64)],
        }
    }

    pub fn as_slice(&self) -> &[i32] {
        &self.totals
    }

    /// The positions whose total is not [`REJECTED`], as a bitset (see [`walk_bits`]).
    pub fn open(&self) -> &[u64] {
        &self.open
    }

    #[cfg(test)]
    fn set(&mut self, pos: usize, total: i32) {
        self.totals[pos] = total;
        self.summaries[pos / BLOCK] = None;
        set_bit(&mut self.open, pos, total != REJECTED);
    }

    /// Sets the totals at `positions`: the next of `passed` in turn where `fits`, else
    /// [`REJECTED`]. Node-local totals are sums of a few final scores times their weights, far
    /// below `i32::MAX`.
    pub fn set_all(&mut self, positions: &[u32], fits: &[bool], passed: &[i64]) {
        let (totals, summaries, open) = (
            &mut self.totals[..],
            &mut self.summaries[..],
            &mut self.open[..],
        );
        let mut next = passed.iter();
        for (&pos, &ok) in positions.iter().zip(fits) {
            let total = if ok {
                let total = *next.next().expect("a total per node that passed");
                i32::try_from(total).expect("node-local totals fit in 32 bits")
            } else {
                REJECTED
            };
            totals[pos as usize] = total;
            summaries[pos as usize / BLOCK] = None;
            set_bit(open, pos as usize, ok);
        }
    }

    fn summary(&mut self, block: usize) -> Summary {
        let totals = &self.totals;
        *self.summaries[block].get_or_insert_with(|| {
            let lo = block * BLOCK;
            Summary::of(&totals[lo..(lo + BLOCK).min(totals.len())])
        })
    }
}

/// Sets bit `pos` of `bits` to `on` (without a branch: which nodes fit is a coin toss).
#[inline(always)]
fn set_bit(bits: &mut [u64], pos: usize, on: bool) {
    let (word, bit) = (&mut bits[pos / 64], 1u64 << (pos % 64));
    *word = (*word & !bit) | (bit * u64::from(on));
}

/// The bitset of `positions` among `n`.
pub(crate) fn bits_of(positions: &[u32], n: usize) -> Vec<u64> {
    let mut bits = vec![0; n.div_ceil(64)];
    for &pos in positions {
        set_bit(&mut bits, pos as usize, true);
    }
    bits
}

/// Visits the positions set in both bitsets `a` and `b`, in the order of a node search from
/// `start`: `start..`, then `..start`, until `visit` returns true (found enough).
pub(crate) fn walk_bits(a: &[u64], b: &[u64], start: usize, mut visit: impl FnMut(usize) -> bool) {
    let words = a.len().min(b.len());
    let (first, bit) = (start / 64, start % 64);
    // The first word's positions from `start` on; its others come last.
    let from_start = !0u64 << bit;
    let mut scan = |w: usize, mask: u64| {
        let mut set = a[w] & b[w] & mask;
        while set != 0 {
            if visit(w * 64 + set.trailing_zeros() as usize) {
                return true;
            }
            set &= set - 1;
        }
        false
    };
    if first >= words {
        return; // no nodes (a search starts at a node)
    }
    let _ = scan(first, from_start)
        || (first + 1..words).chain(0..first).any(|w| scan(w, !0))
        || (bit != 0 && scan(first, !from_start));
}

/// A stretch of positions the walk covered: a whole block read from its summary, or positions
/// looked at one by one.
#[derive(Clone, Copy)]
pub(crate) enum Stretch {
    Block(usize),
    Range(usize, usize),
}

impl Stretch {
    fn range(self) -> (usize, usize) {
        match self {
            Stretch::Block(b) => (b * BLOCK, (b + 1) * BLOCK),
            Stretch::Range(lo, hi) => (lo, hi),
        }
    }
}

/// How many of `totals` equal `x`, counted without branches or overflow checks (vectorised): a
/// stretch never holds more than `u32::MAX` positions.
#[inline(always)]
fn count_equal(totals: &[i32], x: i32) -> u32 {
    totals
        .iter()
        .fold(0u32, |n, &t| n.wrapping_add(u32::from(t == x)))
}

/// Where a walk went and what it found.
pub(crate) struct Walk {
    pub found: usize,
    /// The position of the `want`-th feasible node, if the walk found that many.
    pub last: Option<usize>,
    best: i32,
    stretches: Vec<Stretch>,
}

/// Walks positions `start..`, then `..start`, until `want` feasible nodes are found. `stretches`
/// is memory to reuse.
pub(crate) fn walk(
    totals: &mut Totals,
    start: usize,
    want: usize,
    mut stretches: Vec<Stretch>,
) -> Walk {
    let n = totals.totals.len();
    stretches.clear();
    let mut w = Walk {
        found: 0,
        last: None,
        best: REJECTED,
        stretches,
    };
    for (lo, hi) in [(start, n), (0, start)] {
        let mut p = lo;
        while p < hi {
            let end = ((p / BLOCK + 1) * BLOCK).min(hi);
            if p % BLOCK == 0 && end - p == BLOCK {
                let s = totals.summary(p / BLOCK);
                if w.found + (s.feasible as usize) < want {
                    w.found += s.feasible as usize;
                    w.best = w.best.max(s.max);
                    w.stretches.push(Stretch::Block(p / BLOCK));
                    p = end;
                    continue;
                }
            }
            // A part of a block, or the block where the walk ends: node by node.
            for (k, &t) in totals.totals[p..end].iter().enumerate() {
                if t == REJECTED {
                    continue;
                }
                w.found += 1;
                w.best = w.best.max(t);
                if w.found == want {
                    w.last = Some(p + k);
                    w.stretches.push(Stretch::Range(p, p + k + 1));
                    return w;
                }
            }
            w.stretches.push(Stretch::Range(p, end));
            p = end;
        }
    }
    w
}

impl Walk {
    /// selectHost: the position of a node with the highest total; among several, the `k`-th in
    /// walk order for one uniform draw `k` (upstream samples a reservoir, one draw per tie: the
    /// same odds), or the one of lowest rank. At least one node must have been found.
    pub fn choose(
        &self,
        totals: &Totals,
        order: &[NodeId],
        rng: &mut Rng,
        tie_break: &TieBreak,
    ) -> usize {
        assert!(self.found > 0, "selectHost needs a feasible node");
        let best = self.best;
        match tie_break {
            TieBreak::Random => {
                // Whole blocks are counted by their summaries; only the k-th's stretch is read.
                let ties = |s: Stretch| match s {
                    Stretch::Block(b) => {
                        let summary = totals.summaries[b].expect("the walk summarised the block");
                        if summary.max == best {
                            summary.ties
                        } else {
                            0
                        }
                    }
                    Stretch::Range(lo, hi) => count_equal(&totals.totals[lo..hi], best),
                };
                let all: u32 = self.stretches.iter().map(|&s| ties(s)).sum();
                let mut k = rng.pick_tie(u64::from(all)) as u32;
                for &s in &self.stretches {
                    let here = ties(s);
                    if k < here {
                        let (lo, hi) = s.range();
                        return (lo..hi)
                            .filter(|&p| totals.totals[p] == best)
                            .nth(k as usize)
                            .expect("k counts this stretch's ties");
                    }
                    k -= here;
                }
                unreachable!("k is below the number of ties")
            }
            TieBreak::Rank(rank) => self
                .stretches
                .iter()
                .filter(|&&s| match s {
                    Stretch::Block(b) => totals.summaries[b].is_some_and(|m| m.max == best),
                    Stretch::Range(..) => true,
                })
                .flat_map(|s| {
                    let (lo, hi) = s.range();
                    (lo..hi).filter(|&p| totals.totals[p] == best)
                })
                .min_by_key(|&pos| rank[order[pos] as usize])
                .expect("the best was found"),
        }
    }

    /// The walk's memory, for the next walk.
    pub fn into_stretches(self) -> Vec<Stretch> {
        self.stretches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk, by brute force: the first `want` feasible positions from `start`, and those
    /// among them with the highest total.
    fn naive(totals: &[i32], start: usize, want: usize) -> (usize, Option<usize>, Vec<usize>) {
        let n = totals.len();
        let walked: Vec<usize> = (0..n)
            .map(|i| (start + i) % n)
            .filter(|&p| totals[p] != REJECTED)
            .take(want)
            .collect();
        let best = walked.iter().map(|&p| totals[p]).max();
        let tied = walked
            .iter()
            .copied()
            .filter(|&p| Some(totals[p]) == best)
            .collect();
        let last = (walked.len() == want).then(|| *walked.last().unwrap());
        (walked.len(), last, tied)
    }

    #[test]
    fn summaries_agree_with_a_node_by_node_walk() {
        let mut rng = Rng::new(7);
        for case in 0..400 {
            let n = 1 + rng.below(300) as usize;
            let mut totals = Totals::new(n);
            for p in 0..n {
                let t = match rng.below(4) {
                    0 => REJECTED,
                    _ => rng.below(1 + case % 5) as i32,
                };
                totals.set(p, t);
            }
            let start = rng.below(n as u64) as usize;
            let want = 1 + rng.below(n as u64 + 5) as usize;
            let w = walk(&mut totals, start, want, Vec::new());
            let (found, last, tied) = naive(totals.as_slice(), start, want);
            assert_eq!((w.found, w.last), (found, last), "case {case}");
            if found == 0 {
                continue;
            }
            let order: Vec<NodeId> = (0..n as NodeId).collect();
            // Every draw picks the tie of its index, in walk order.
            let mut a = Rng::new(case);
            let mut b = Rng::new(case);
            let chosen = w.choose(&totals, &order, &mut a, &TieBreak::Random);
            let k = if tied.len() > 1 {
                b.below(tied.len() as u64) as usize
            } else {
                0
            };
            assert_eq!(chosen, tied[k], "case {case}");
            let rank: Vec<u32> = (0..n as u32).rev().collect();
            let by_rank = w.choose(&totals, &order, &mut a, &TieBreak::Rank(rank));
            assert_eq!(by_rank, *tied.iter().max().unwrap(), "case {case}");
        }
    }

    #[test]
    fn summaries_are_the_same_with_and_without_avx2() {
        let mut rng = Rng::new(11);
        for case in 0..500 {
            let len = 1 + rng.below(BLOCK as u64) as usize;
            let spread = 1 + case % 7;
            let totals: Vec<i32> = (0..len)
                .map(|_| match rng.below(5) {
                    0 => REJECTED,
                    _ => rng.below(spread) as i32 - 2,
                })
                .collect();
            let plain = summary(&totals);
            let naive_max = totals.iter().copied().max().unwrap();
            let naive = Summary {
                feasible: totals.iter().filter(|&&t| t != REJECTED).count() as u32,
                max: naive_max,
                ties: totals.iter().filter(|&&t| t == naive_max).count() as u32,
            };
            assert_eq!(plain, naive, "case {case}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                assert_eq!(unsafe { summary_avx2(&totals) }, plain, "case {case}");
            }
        }
    }

    #[test]
    fn walk_bits_visits_both_sets_in_search_order() {
        let mut rng = Rng::new(3);
        for case in 0..300 {
            let n = 1 + rng.below(400) as usize;
            let pick = |rng: &mut Rng| -> Vec<u32> {
                (0..n as u32).filter(|_| rng.below(3) > 0).collect()
            };
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            let start = rng.below(n as u64) as usize;
            let stop_after = 1 + rng.below(n as u64 + 2) as usize;
            let expected: Vec<usize> = (0..n)
                .map(|i| (start + i) % n)
                .filter(|&p| a.contains(&(p as u32)) && b.contains(&(p as u32)))
                .take(stop_after)
                .collect();
            let mut seen = Vec::new();
            walk_bits(&bits_of(&a, n), &bits_of(&b, n), start, |p| {
                seen.push(p);
                seen.len() == stop_after
            });
            assert_eq!(seen, expected, "case {case}");
        }
    }

    #[test]
    fn open_bits_follow_the_totals() {
        let mut totals = Totals::new(130);
        totals.set_all(&[3, 70, 129, 5], &[true, true, false, true], &[1, 2, 3]);
        let open: Vec<u32> = (0..130)
            .filter(|&p| totals.open()[p / 64] >> (p % 64) & 1 == 1)
            .map(|p| p as u32)
            .collect();
        assert_eq!(open, [3, 5, 70]);
        totals.set_all(&[70], &[false], &[]);
        assert_eq!(totals.open()[1], 0);
    }

    #[test]
    fn a_change_refreshes_its_block_summary() {
        let mut totals = Totals::new(200);
        for p in 0..200 {
            totals.set(p, 5);
        }
        assert_eq!(walk(&mut totals, 0, 1000, Vec::new()).best, 5);
        totals.set(130, 9);
        let w = walk(&mut totals, 0, 1000, Vec::new());
        assert_eq!((w.found, w.best), (200, 9));
        let order: Vec<NodeId> = (0..200).collect();
        assert_eq!(
            w.choose(&totals, &order, &mut Rng::new(1), &TieBreak::Random),
            130
        );
        totals.set(130, REJECTED);
        assert_eq!(walk(&mut totals, 0, 1000, Vec::new()).found, 199);
    }
}
