use std::time::{Duration, Instant};

use super::*;
use crate::rebalance::{problem, PinOptions, Problem};
use crate::resources::{CPU, MEMORY};
use crate::schedule::profile::default_profile;
use crate::snapshot::{parse_documents, Snapshot};

fn node(name: &str, cpu: u32, gpus: u32) -> String {
    let gpu = if gpus > 0 {
        format!(r#","nvidia.com/gpu":"{gpus}""#)
    } else {
        String::new()
    };
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "status":{{"allocatable":{{"cpu":"{cpu}","memory":"16Gi","pods":"110"{gpu}}},
            "conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
    )
}

/// A running pod of ReplicaSet `owner` on `node`; `meta` and `spec` add fields (with trailing
/// commas), `requests` the requests.
fn pod(name: &str, node: &str, owner: &str, requests: &str, meta: &str, spec: &str) -> String {
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default","uid":"uid-{name}",{meta}
              "labels":{{"app":"{owner}"}},
              "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"{owner}","uid":"uid-{owner}","controller":true}}]}},
            "spec":{{"nodeName":"{node}",{spec}"containers":[{{"name":"c","resources":{{"requests":{{{requests}}}}}}}]}},
            "status":{{"phase":"Running"}}}}"#
    )
}

fn web(name: &str, node: &str) -> String {
    pod(name, node, "web", r#""cpu":"1""#, "", "")
}

/// Half a GPU: device `device` of `node`.
fn share(name: &str, node: &str, device: u32) -> String {
    let annotation = format!(r#""annotations":{{"kube-engine.io/gpu-devices":"{device}"}},"#);
    pod(
        name,
        node,
        "train",
        r#""kube-engine.io/gpu-milli":"500""#,
        &annotation,
        "",
    )
}

/// A PodDisruptionBudget over the `web` pods that allows `allowed` evictions.
fn budget(allowed: u32) -> String {
    format!(
        r#"{{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{{"name":"web","namespace":"default"}},
            "spec":{{"selector":{{"matchLabels":{{"app":"web"}}}}}},"status":{{"disruptionsAllowed":{allowed}}}}}"#
    )
}

fn cluster(items: &[String]) -> (Snapshot, Problem) {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    let snap = parse_documents(&[doc.as_bytes()]).unwrap();
    let pr = problem(&snap, &default_profile(), &PinOptions::default());
    (snap, pr)
}

/// One term, every node counted for balance.
fn objective(snap: &Snapshot, term: Term) -> Objective {
    let column = |r| -> Vec<i64> {
        (0..snap.nodes.len())
            .map(|n| snap.nodes.allocatable.get(n, r))
            .collect()
    };
    let allocatable = [column(CPU), column(MEMORY)];
    Objective {
        terms: vec![(term, 1.0, 1.0)],
        move_cost: 0.0,
        prices: None,
        balanced: allocatable.clone(),
        allocatable,
    }
}

fn unlimited() -> Limits {
    Limits::default()
}

fn at_most(moves: usize) -> Limits {
    Limits {
        max_moves: Some(moves),
        deadline: None,
    }
}

/// (pod, from, to) by name.
fn named(snap: &Snapshot, start: &Start) -> Vec<(String, String, String)> {
    let node = |n: u32| snap.nodes.name[n as usize].clone();
    start
        .moves
        .iter()
        .map(|m| {
            (
                snap.pods.name[m.pod as usize].clone(),
                node(m.from),
                node(m.to),
            )
        })
        .collect()
}

fn crowded() -> Vec<String> {
    let mut items = vec![node("a", 4, 0), node("b", 4, 0), node("c", 4, 0)];
    items.extend((0..4).map(|i| web(&format!("w{i}"), "a")));
    items
}

/// Four 1-cpu pods on one of three 4-cpu nodes; memory unused everywhere.
fn balance_of(peak: f64, shares: [f64; 3]) -> f64 {
    let mean = shares.iter().sum::<f64>() / 3.0;
    let var = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / 3.0;
    (peak + var.sqrt()) / 2.0
}

#[test]
fn balance_moves_pods_off_the_hottest_node() {
    let (snap, pr) = cluster(&crowded());
    let obj = objective(&snap, Term::Balance);
    let one = balance(&snap, &pr, &obj, &at_most(1));
    // The hottest node gives its first pod to the coolest node (ties: the first).
    assert_eq!(named(&snap, &one), [("w0".into(), "a".into(), "b".into())]);
    assert!((one.value - balance_of(0.75, [0.75, 0.25, 0.0])).abs() < 1e-12);
    assert!(one.complete);
    let all = balance(&snap, &pr, &obj, &unlimited());
    // 2/1/1 is the best there is: a third move only shifts the peak.
    let to: Vec<String> = named(&snap, &all).into_iter().map(|m| m.2).collect();
    assert_eq!(to, ["b", "c"]);
    assert!((all.value - balance_of(0.5, [0.5, 0.25, 0.25])).abs() < 1e-12);
}

#[test]
fn a_move_cost_can_outweigh_a_gain() {
    let (snap, pr) = cluster(&[
        node("a", 4, 0),
        node("b", 4, 0),
        web("w1", "a"),
        web("w2", "a"),
    ]);
    let mut obj = objective(&snap, Term::Balance);
    assert_eq!(balance(&snap, &pr, &obj, &unlimited()).moves.len(), 1);
    // One move lowers (peak + std) / 2 from 0.375 to 0.125: not worth 0.3.
    obj.move_cost = 0.3;
    let start = balance(&snap, &pr, &obj, &unlimited());
    assert!(start.moves.is_empty());
    assert!((start.value - 0.375).abs() < 1e-12);
}

#[test]
fn defrag_empties_a_partly_used_gpu_device() {
    let (snap, pr) = cluster(&[
        node("g1", 8, 2),
        node("g2", 8, 2),
        share("s1", "g1", 0),
        share("s2", "g1", 1),
        share("s3", "g2", 0),
    ]);
    let start = defrag(&snap, &pr, &objective(&snap, Term::Defrag), &unlimited());
    // Three half devices: the least taken first (g1's device 0) joins the fullest other.
    assert_eq!(
        named(&snap, &start),
        [("s1".into(), "g1".into(), "g2".into())]
    );
    assert_eq!(start.moves[0].devices, 0b1);
    assert_eq!(start.value, 2.0);
    // No room on another node: nothing moves.
    let (snap, pr) = cluster(&[node("g1", 8, 2), share("s1", "g1", 0), share("s2", "g1", 1)]);
    let start = defrag(&snap, &pr, &objective(&snap, Term::Defrag), &unlimited());
    assert!(start.moves.is_empty() && start.value == 2.0);
}

#[test]
fn budgets_bound_the_moves() {
    let (snap, pr) = cluster(&crowded());
    let obj = objective(&snap, Term::Balance);
    assert!(balance(&snap, &pr, &obj, &at_most(0)).moves.is_empty());
    for (allowed, moves) in [(0, 0), (1, 1), (5, 2)] {
        let mut items = crowded();
        items.push(budget(allowed));
        let (snap, pr) = cluster(&items);
        let start = balance(&snap, &pr, &obj, &unlimited());
        assert_eq!(start.moves.len(), moves, "{allowed} allowed");
    }
    let mut items = vec![
        node("g1", 8, 2),
        node("g2", 8, 2),
        share("s1", "g1", 0),
        share("s2", "g1", 1),
        share("s3", "g2", 0),
    ];
    items.push(budget(0).replace(r#""app":"web""#, r#""app":"train""#));
    let (snap, pr) = cluster(&items);
    let obj = objective(&snap, Term::Defrag);
    assert!(defrag(&snap, &pr, &obj, &unlimited()).moves.is_empty());
    assert!(defrag(&snap, &pr, &obj, &at_most(0)).moves.is_empty());
}

#[test]
fn pods_with_inter_pod_rules_stay() {
    let with_port = |name: &str| {
        pod(name, "a", "agent", r#""cpu":"1""#, "", "").replace(
            r#""name":"c","#,
            r#""name":"c","ports":[{"containerPort":80,"hostPort":8080}],"#,
        )
    };
    let (snap, pr) = cluster(&[
        node("a", 4, 0),
        node("b", 4, 0),
        with_port("p1"),
        web("w1", "a"),
        web("w2", "a"),
    ]);
    assert!(pr.classes.iter().any(|c| c.interacts));
    let start = balance(&snap, &pr, &objective(&snap, Term::Balance), &unlimited());
    let moved: Vec<String> = named(&snap, &start).into_iter().map(|m| m.0).collect();
    assert!(!moved.is_empty() && moved.iter().all(|p| p.starts_with('w')));
}

#[test]
fn a_deadline_returns_the_best_so_far() {
    let (snap, pr) = cluster(&crowded());
    let obj = objective(&snap, Term::Balance);
    let whole = balance(&snap, &pr, &obj, &unlimited());
    let past = Limits {
        max_moves: None,
        deadline: Some(Instant::now()),
    };
    let cut = balance(&snap, &pr, &obj, &past);
    assert!(!cut.complete && cut.moves.is_empty());
    assert!(cut.value > whole.value);
    let later = Limits {
        max_moves: None,
        deadline: Some(Instant::now() + Duration::from_secs(3600)),
    };
    assert_eq!(balance(&snap, &pr, &obj, &later), whole);

    let (snap, pr) = cluster(&[
        node("g1", 8, 2),
        node("g2", 8, 2),
        share("s1", "g1", 0),
        share("s3", "g2", 0),
    ]);
    let obj = objective(&snap, Term::Defrag);
    let cut = defrag(&snap, &pr, &obj, &past);
    assert!(!cut.complete && cut.moves.is_empty() && cut.value == 2.0);
    assert_eq!(defrag(&snap, &pr, &obj, &unlimited()).value, 1.0);
}
