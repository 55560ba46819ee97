//! A plain reference for InterPodAffinity and PodTopologySpread: the plugins read a per-snapshot
//! index and per-cycle memos; this reference, written from the same upstream rules, scans every
//! placed pod with the string-level model types. The plugin tests check that both agree on
//! random clusters.

use std::collections::{BTreeMap, BTreeSet};

use kube_engine_core::model::affinity::PodAffinityTerm;
use kube_engine_core::model::selector::{LabelSelector, LabelSet};
use kube_engine_core::model::spread::{
    InclusionPolicy, TopologySpreadConstraint, WhenUnsatisfiable,
};
use kube_engine_core::Snapshot;

use super::snap;
use super::topology::{owner, pod_meta, spread, weighted, HOST, ZONE};

pub const AFF: &str = "node(s) didn't match pod affinity rules";
pub const ANTI: &str = "node(s) didn't match pod anti-affinity rules";
pub const EXISTING: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
pub const SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub const LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

fn placed(s: &Snapshot, p: u32) -> Vec<(u32, u32)> {
    (0..s.pods.len() as u32)
        .filter(|&q| q != p && s.is_active(q))
        .filter_map(|q| s.current.node[q as usize].map(|n| (q, n)))
        .collect()
}

fn ns(s: &Snapshot, p: u32) -> &str {
    s.symbols.resolve(s.pods.namespace[p as usize])
}

fn node_value<'a>(s: &'a Snapshot, n: u32, key: &str) -> Option<&'a str> {
    s.node_labels(n).value(key)
}

/// `term` on pod `owner` selects `target` (with the API server's label-key merge).
fn selects(s: &Snapshot, term: &PodAffinityTerm, owner: u32, target: u32) -> bool {
    let (own, tl) = (s.pod_labels(owner), s.pod_labels(target));
    term.selects(ns(s, owner), ns(s, target), &tl, None)
        && term
            .match_label_keys
            .iter()
            .all(|k| own.value(k).is_none_or(|v| tl.value(k) == Some(v)))
        && term
            .mismatch_label_keys
            .iter()
            .all(|k| own.value(k).is_none_or(|v| tl.value(k) != Some(v)))
}

fn terms(s: &Snapshot, p: u32, anti: bool, required: bool) -> Vec<(PodAffinityTerm, i64)> {
    let Some(a) = s.pods.affinity[p as usize].as_deref() else {
        return Vec::new();
    };
    let Some(pa) = (if anti {
        &a.pod_anti_affinity
    } else {
        &a.pod_affinity
    }) else {
        return Vec::new();
    };
    if required {
        pa.required.iter().map(|t| (t.clone(), 0)).collect()
    } else {
        pa.preferred
            .iter()
            .map(|w| (w.pod_affinity_term.clone(), i64::from(w.weight)))
            .collect()
    }
}

pub fn ipa_filter(s: &Snapshot, p: u32) -> Vec<String> {
    let placed = placed(s, p);
    let aff = terms(s, p, false, true);
    let anti = terms(s, p, true, true);
    let matches_all = |q: u32| !aff.is_empty() && aff.iter().all(|(t, _)| selects(s, t, p, q));
    let nobody = !placed.iter().any(|&(q, n)| {
        matches_all(q)
            && aff
                .iter()
                .any(|(t, _)| node_value(s, n, &t.topology_key).is_some())
    });
    (0..s.nodes.len() as u32)
        .map(|m| {
            let mut exist = true;
            for (t, _) in &aff {
                let Some(v) = node_value(s, m, &t.topology_key) else {
                    return AFF.to_string();
                };
                let here = placed
                    .iter()
                    .any(|&(q, n)| matches_all(q) && node_value(s, n, &t.topology_key) == Some(v));
                exist &= here;
            }
            let first_of_group = nobody && matches_all(p);
            if !(exist || first_of_group) {
                return AFF.to_string();
            }
            for (t, _) in &anti {
                if let Some(v) = node_value(s, m, &t.topology_key) {
                    if placed.iter().any(|&(q, n)| {
                        node_value(s, n, &t.topology_key) == Some(v) && selects(s, t, p, q)
                    }) {
                        return ANTI.to_string();
                    }
                }
            }
            for &(q, n) in &placed {
                for (t, _) in terms(s, q, true, true) {
                    let there = node_value(s, n, &t.topology_key);
                    if there.is_some()
                        && node_value(s, m, &t.topology_key) == there
                        && selects(s, &t, q, p)
                    {
                        return EXISTING.to_string();
                    }
                }
            }
            "ok".to_string()
        })
        .collect()
}

/// Raw scores of every node (all feasible).
pub fn ipa_score(s: &Snapshot, p: u32, hard: i64) -> Vec<i64> {
    let mut credit: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut add = |n: u32, key: &str, w: i64| {
        if let Some(v) = node_value(s, n, key) {
            *credit.entry((key.to_string(), v.to_string())).or_insert(0) += w;
        }
    };
    for (q, n) in placed(s, p) {
        for (t, w) in terms(s, p, false, false) {
            if selects(s, &t, p, q) {
                add(n, &t.topology_key, w);
            }
        }
        for (t, w) in terms(s, p, true, false) {
            if selects(s, &t, p, q) {
                add(n, &t.topology_key, -w);
            }
        }
        for (t, _) in terms(s, q, false, true) {
            if hard > 0 && selects(s, &t, q, p) {
                add(n, &t.topology_key, hard);
            }
        }
        for (t, w) in terms(s, q, false, false) {
            if selects(s, &t, q, p) {
                add(n, &t.topology_key, w);
            }
        }
        for (t, w) in terms(s, q, true, false) {
            if selects(s, &t, q, p) {
                add(n, &t.topology_key, -w);
            }
        }
    }
    (0..s.nodes.len() as u32)
        .map(|m| {
            credit
                .iter()
                .filter(|((k, v), _)| node_value(s, m, k) == Some(v.as_str()))
                .map(|(_, w)| w)
                .sum()
        })
        .collect()
}

/// The constraints with `when`, or the defaults for controller-owned pods without any.
fn constraints(
    s: &Snapshot,
    p: u32,
    when: WhenUnsatisfiable,
    defaults: &[TopologySpreadConstraint],
) -> (Vec<TopologySpreadConstraint>, bool) {
    let own = &s.pods.spread[p as usize];
    if !own.is_empty() {
        let list = own
            .iter()
            .filter(|c| c.when_unsatisfiable == when)
            .cloned()
            .collect();
        return (list, false);
    }
    let controlled = s.pods.owner[p as usize].as_ref().is_some_and(|o| {
        matches!(
            s.symbols.resolve(o.kind),
            "ReplicaSet" | "StatefulSet" | "ReplicationController"
        )
    });
    let list = if controlled {
        defaults
            .iter()
            .filter(|c| c.when_unsatisfiable == when)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    (list, true)
}

/// (counts placed pod q, matches p itself) for constraint `c` of pod `p`.
fn spread_selects(
    s: &Snapshot,
    c: &TopologySpreadConstraint,
    defaulted: bool,
    p: u32,
    q: u32,
) -> (bool, bool) {
    if defaulted {
        let same = ns(s, q) == ns(s, p) && s.pods.owner[q as usize] == s.pods.owner[p as usize];
        return (same, true);
    }
    let Some(sel) = &c.label_selector else {
        return (false, false);
    };
    let own = s.pod_labels(p);
    let merged: Vec<(&String, &str)> = c
        .match_label_keys
        .iter()
        .filter_map(|k| own.value(k).map(|v| (k, v)))
        .collect();
    let matches = |x: u32| {
        let l = s.pod_labels(x);
        sel.matches(&l) && merged.iter().all(|(k, v)| l.label(k) == Some(*v))
    };
    let empty = sel == &LabelSelector::default() && merged.is_empty();
    (!empty && ns(s, q) == ns(s, p) && matches(q), matches(p))
}

fn eligible(s: &Snapshot, p: u32, cs: &[TopologySpreadConstraint], c: usize, n: u32) -> bool {
    cs.iter()
        .all(|c| node_value(s, n, &c.topology_key).is_some())
        && (cs[c].node_affinity_policy == InclusionPolicy::Ignore || s.node_affinity_admits(p, n))
        && (cs[c].node_taints_policy == InclusionPolicy::Ignore
            || s.untolerated_taint(p, n).is_none())
}

pub fn spread_filter(s: &Snapshot, p: u32, defaults: &[TopologySpreadConstraint]) -> Vec<String> {
    let (cs, defaulted) = constraints(s, p, WhenUnsatisfiable::DoNotSchedule, defaults);
    let placed = placed(s, p);
    let mut state = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for n in 0..s.nodes.len() as u32 {
            if eligible(s, p, &cs, i, n) {
                counts
                    .entry(node_value(s, n, &c.topology_key).unwrap())
                    .or_insert(0);
            }
        }
        for &(q, n) in &placed {
            if eligible(s, p, &cs, i, n) && spread_selects(s, c, defaulted, p, q).0 {
                *counts
                    .get_mut(node_value(s, n, &c.topology_key).unwrap())
                    .unwrap() += 1;
            }
        }
        let min = if (counts.len() as i64) < i64::from(c.min_domains.unwrap_or(1)) {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        let me = i64::from(spread_selects(s, c, defaulted, p, p).1);
        state.push((counts, min, me));
    }
    (0..s.nodes.len() as u32)
        .map(|m| {
            for (c, (counts, min, me)) in cs.iter().zip(&state) {
                let Some(v) = node_value(s, m, &c.topology_key) else {
                    return LABEL.to_string();
                };
                if counts.get(v).copied().unwrap_or(0) + me - min > i64::from(c.max_skew) {
                    return SPREAD.to_string();
                }
            }
            "ok".to_string()
        })
        .collect()
}

/// Normalised scores over all nodes (all feasible); all 0 when there are no constraints.
pub fn spread_score(
    s: &Snapshot,
    p: u32,
    defaults: &[TopologySpreadConstraint],
    system: bool,
) -> Vec<i64> {
    let (cs, defaulted) = constraints(s, p, WhenUnsatisfiable::ScheduleAnyway, defaults);
    let nodes = s.nodes.len() as u32;
    if cs.is_empty() {
        return vec![0; nodes as usize];
    }
    let require_all = !defaulted || !system;
    let all_keys = |n: u32| {
        cs.iter()
            .all(|c| node_value(s, n, &c.topology_key).is_some())
    };
    let ignored: Vec<bool> = (0..nodes).map(|n| require_all && !all_keys(n)).collect();
    let placed = placed(s, p);
    let on = |c: &TopologySpreadConstraint, n: u32| {
        placed
            .iter()
            .filter(|&&(q, m)| m == n && spread_selects(s, c, defaulted, p, q).0)
            .count() as i64
    };
    let mut raw = vec![0f64; nodes as usize];
    for c in &cs {
        let hostname = c.topology_key == "kubernetes.io/hostname";
        let value = |n: u32| node_value(s, n, &c.topology_key).unwrap_or("");
        let domains: BTreeSet<&str> = (0..nodes)
            .filter(|&n| !ignored[n as usize])
            .map(value)
            .collect();
        let size = if hostname {
            ignored.iter().filter(|&&i| !i).count()
        } else {
            domains.len()
        };
        let weight = ((size + 2) as f64).ln();
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for n in 0..nodes {
            let include = (c.node_affinity_policy == InclusionPolicy::Ignore
                || s.node_affinity_admits(p, n))
                && (c.node_taints_policy == InclusionPolicy::Ignore
                    || s.untolerated_taint(p, n).is_none());
            if (require_all && !all_keys(n)) || !include || !domains.contains(value(n)) {
                continue;
            }
            *counts.entry(value(n)).or_insert(0) += on(c, n);
        }
        for m in 0..nodes {
            if ignored[m as usize] || node_value(s, m, &c.topology_key).is_none() {
                continue;
            }
            let count = if hostname {
                on(c, m)
            } else {
                counts.get(value(m)).copied().unwrap_or(0)
            };
            raw[m as usize] += count as f64 * weight + f64::from(c.max_skew - 1);
        }
    }
    let raw: Vec<i64> = raw.iter().map(|r| r.round() as i64).collect();
    let scored = || (0..nodes as usize).filter(|&i| !ignored[i]);
    let min = scored().map(|i| raw[i]).min().unwrap_or(i64::MAX);
    let max = scored().map(|i| raw[i]).max().unwrap_or(0).max(0);
    (0..nodes as usize)
        .map(|i| {
            if ignored[i] {
                0
            } else if max == 0 {
                100
            } else {
                100 * (max + min - raw[i]) / max
            }
        })
        .collect()
}

/// A random small cluster: zones, racks and hostnames missing here and there, a taint, pods in
/// two namespaces with controllers, affinity terms and spread constraints of every shape.
pub fn random_cluster(seed: u64) -> Snapshot {
    snap(&random_cluster_items(seed))
}

pub fn random_cluster_items(seed: u64) -> Vec<String> {
    use kube_engine_core::schedule::framework::Rng;
    let mut rng = Rng::new(seed);
    let mut pick = |n: u64| rng.below(n) as usize;
    let n_nodes = 3 + pick(6);
    let mut items = Vec::new();
    for i in 0..n_nodes {
        let mut labels = vec![];
        if pick(10) > 0 {
            labels.push(format!(r#""{HOST}":"n{i}""#));
        }
        if pick(8) > 0 {
            labels.push(format!(r#""{ZONE}":"{}""#, ["a", "b", "c"][pick(3)]));
        }
        if pick(2) == 0 {
            labels.push(format!(r#""rack":"r{}""#, pick(2)));
        }
        let taint = if pick(6) == 0 {
            r#""taints":[{"key":"dedicated","value":"x","effect":"NoSchedule"}]"#
        } else {
            ""
        };
        items.push(format!(
            r#"{{"kind":"Node","metadata":{{"name":"n{i}","labels":{{{}}}}},"spec":{{{taint}}},
                "status":{{"allocatable":{{"cpu":"64","memory":"64Gi","pods":"110"}}}}}}"#,
            labels.join(",")
        ));
    }
    let apps = ["web", "db", "cache"];
    let keys = [HOST, ZONE, "rack"];
    let n_pods = 6 + pick(20);
    for i in 0..n_pods {
        let namespace = ["default", "other"][usize::from(pick(4) == 0)];
        let app = apps[pick(3)];
        let mut labels = vec![format!(r#""app":"{app}""#)];
        if pick(2) == 0 {
            labels.push(format!(r#""version":"v{}""#, pick(2)));
        }
        let owner = match pick(5) {
            0 => String::new(),
            1 => owner("Job", &format!("job-{app}")),
            2 => owner("StatefulSet", &format!("ss-{app}")),
            _ => owner("ReplicaSet", &format!("rs-{app}")),
        };
        let selector = |pick: &mut dyn FnMut(u64) -> usize| match pick(5) {
            0 => format!(
                r#""labelSelector":{{"matchExpressions":[{{"key":"app","operator":"In","values":["{}","{}"]}}]}}"#,
                apps[pick(3)],
                apps[pick(3)]
            ),
            1 => format!(
                r#""labelSelector":{{"matchExpressions":[{{"key":"app","operator":"NotIn","values":["{}"]}}]}}"#,
                apps[pick(3)]
            ),
            2 => r#""labelSelector":{"matchExpressions":[{"key":"version","operator":"Exists"}]}"#
                .to_string(),
            _ => format!(
                r#""labelSelector":{{"matchLabels":{{"app":"{}"}}}}"#,
                apps[pick(3)]
            ),
        };
        let term = |pick: &mut dyn FnMut(u64) -> usize| {
            let mut t = vec![
                format!(r#""topologyKey":"{}""#, keys[pick(3)]),
                selector(pick),
            ];
            match pick(6) {
                0 => t.push(r#""namespaces":["other"]"#.into()),
                1 => t.push(r#""namespaceSelector":{}"#.into()),
                2 => t.push(r#""matchLabelKeys":["version"]"#.into()),
                3 => t.push(r#""mismatchLabelKeys":["version"]"#.into()),
                _ => {}
            }
            format!("{{{}}}", t.join(","))
        };
        let mut spec = String::new();
        if pick(2) == 0 {
            let mut parts = Vec::new();
            for kind in ["podAffinity", "podAntiAffinity"] {
                let required: Vec<String> = (0..pick(3).saturating_sub(1))
                    .map(|_| term(&mut pick))
                    .collect();
                let preferred: Vec<String> = (0..pick(3))
                    .map(|_| weighted(1 + pick(50) as i32, &term(&mut pick)))
                    .collect();
                parts.push(format!(
                    r#""{kind}":{{"requiredDuringSchedulingIgnoredDuringExecution":[{}],
                        "preferredDuringSchedulingIgnoredDuringExecution":[{}]}}"#,
                    required.join(","),
                    preferred.join(",")
                ));
            }
            spec += &format!(r#""affinity":{{{}}},"#, parts.join(","));
        }
        if pick(2) == 0 {
            let mut cs = Vec::new();
            let mut used = Vec::new();
            for _ in 0..1 + pick(2) {
                let key = keys[pick(3)];
                let when = ["DoNotSchedule", "ScheduleAnyway"][pick(2)];
                if used.contains(&(key, when)) {
                    continue;
                }
                used.push((key, when));
                let mut c = vec![
                    format!(r#""maxSkew":{}"#, 1 + pick(2)),
                    format!(r#""topologyKey":"{key}""#),
                    format!(r#""whenUnsatisfiable":"{when}""#),
                ];
                match pick(6) {
                    0 => {}
                    1 => c.push(r#""labelSelector":{}"#.into()),
                    _ => c.push(selector(&mut pick)),
                }
                if when == "DoNotSchedule" && pick(3) == 0 {
                    c.push(format!(r#""minDomains":{}"#, 1 + pick(4)));
                }
                if pick(3) == 0 {
                    c.push(r#""nodeAffinityPolicy":"Ignore""#.into());
                }
                if pick(3) == 0 {
                    c.push(r#""nodeTaintsPolicy":"Honor""#.into());
                }
                if pick(3) == 0 {
                    c.push(r#""matchLabelKeys":["version"]"#.into());
                }
                cs.push(format!("{{{}}}", c.join(",")));
            }
            spec += &spread(&cs);
        }
        if pick(5) == 0 {
            spec += &format!(r#""nodeSelector":{{"{ZONE}":"{}"}},"#, ["a", "b"][pick(2)]);
        }
        if pick(4) == 0 {
            spec += r#""tolerations":[{"key":"dedicated","operator":"Exists"}],"#;
        }
        let node = (pick(3) > 0).then(|| format!("n{}", pick(n_nodes as u64)));
        let mut p = pod_meta(
            &format!("{namespace}/p{i}"),
            &labels.join(","),
            node.as_deref(),
            &spec,
            &owner,
        );
        if node.is_some() && pick(10) == 0 {
            p = p.replacen(
                r#""kind":"Pod","#,
                r#""kind":"Pod","status":{"phase":"Succeeded"},"#,
                1,
            );
        }
        items.push(p);
    }
    items
}
