//! Plans: waves that keep room for every pod, budgets and caps, cycles, cordons, and what is kept.

use kube_engine_core::plan::{plan, predict, Cap, Limits, Plan, PlanOptions, Step, Target, Why};
use kube_engine_core::rebalance::Pin;
use kube_engine_core::schedule::profile::default_profile;
use kube_engine_core::snapshot::{parse_documents, NodeId, PodId};
use kube_engine_core::Snapshot;

fn node(name: &str, cpu: u32) -> String {
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","resourceVersion":"7","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "status":{{"allocatable":{{"cpu":"{cpu}","memory":"64Gi","pods":"110"}}}}}}"#
    )
}

/// A running pod of ReplicaSet `rs` (none: bare) bound to `node` (empty: pending).
fn pod(name: &str, node: &str, cpu: u32, app: &str, owner: &str) -> String {
    let owner = if owner.is_empty() {
        String::new()
    } else {
        let kind = if owner.starts_with("ds") {
            "DaemonSet"
        } else {
            "ReplicaSet"
        };
        format!(
            r#""ownerReferences":[{{"apiVersion":"apps/v1","kind":"{kind}","name":"{owner}","uid":"uid-{owner}","controller":true}}],"#
        )
    };
    let (bound, phase) = if node.is_empty() {
        (String::new(), "Pending")
    } else {
        (format!(r#""nodeName":"{node}","#), "Running")
    };
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default","uid":"u-{name}",{owner}"labels":{{"app":"{app}"}}}},
            "spec":{{{bound}"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"{cpu}","memory":"1Gi"}}}}}}]}},
            "status":{{"phase":"{phase}"}}}}"#
    )
}

fn pdb(name: &str, app: &str, allowed: u32) -> String {
    format!(
        r#"{{"kind":"PodDisruptionBudget","metadata":{{"name":"{name}","namespace":"default"}},
            "spec":{{"maxUnavailable":1,"selector":{{"matchLabels":{{"app":"{app}"}}}}}},
            "status":{{"disruptionsAllowed":{allowed},"currentHealthy":3,"desiredHealthy":2,"expectedPods":3}}}}"#
    )
}

fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

fn targets(s: &Snapshot, moves: &[(&str, &str)]) -> Vec<Target> {
    moves
        .iter()
        .map(|(p, n)| Target {
            pod: s.pods.id(&format!("default/{p}")).unwrap(),
            to: s.nodes.id(n).unwrap(),
            devices: None,
        })
        .collect()
}

fn make(s: &Snapshot, moves: &[(&str, &str)], opts: &PlanOptions) -> Plan {
    let plan = plan(s, &targets(s, moves), &default_profile(), opts).unwrap();
    check_room(s, &plan);
    plan
}

/// Each wave as `pod:from>to` strings (`*` marks a detour, `-` a pending pod).
fn waves(s: &Snapshot, plan: &Plan) -> Vec<Vec<String>> {
    let name = |n: Option<NodeId>| n.map_or("-".to_string(), |n| s.nodes.name[n as usize].clone());
    plan.waves
        .iter()
        .map(|w| {
            w.iter()
                .map(|st: &Step| {
                    format!(
                        "{}:{}>{}{}",
                        s.pods.name[st.pod as usize],
                        name(st.from),
                        name(Some(st.to)),
                        if st.detour { "*" } else { "" }
                    )
                })
                .collect()
        })
        .collect()
}

fn kept(s: &Snapshot, plan: &Plan) -> Vec<(String, Why)> {
    plan.kept
        .iter()
        .map(|k| (s.pods.name[k.pod as usize].clone(), k.why.clone()))
        .collect()
}

/// Replays the plan on cpu alone (the tests' only scarce resource): within a wave an evicted pod
/// holds its cpu on its node until the wave ends, and no node ever goes over its allocatable.
fn check_room(s: &Snapshot, plan: &Plan) {
    let cpu = 0;
    let mut used = vec![0i64; s.nodes.len()];
    let mut at: Vec<Option<NodeId>> = s.current.node.clone();
    for (p, n) in at.iter().enumerate() {
        if let Some(n) = n {
            used[*n as usize] += s.pods.requests.get(p, cpu);
        }
    }
    for wave in &plan.waves {
        let mut held = Vec::new();
        for st in wave {
            let p = st.pod as usize;
            assert_eq!(at[p], st.from, "a step starts where its pod is");
            let r = s.pods.requests.get(p, cpu);
            used[st.to as usize] += r;
            let have = s.nodes.allocatable.get(st.to as usize, cpu);
            assert!(
                used[st.to as usize] <= have,
                "{} lands on a full node",
                s.pods.name[p]
            );
            if let Some(f) = st.from {
                held.push((f, r));
            }
            at[p] = Some(st.to);
        }
        for (f, r) in held {
            used[f as usize] -= r;
        }
    }
}

fn id(s: &Snapshot, pod: &str) -> PodId {
    s.pods.id(&format!("default/{pod}")).unwrap()
}

#[test]
fn a_move_into_free_room_is_one_wave_and_its_node_is_cordoned() {
    let s = snap(&[node("n1", 4), node("n2", 4), pod("a", "n1", 1, "web", "rs")]);
    let plan = make(&s, &[("a", "n2")], &PlanOptions::default());
    assert_eq!(waves(&s, &plan), [["a:n1>n2"]]);
    assert_eq!(plan.cordon, [0]);
    assert_eq!(plan.emptied, [0]);
    assert!(plan.kept.is_empty());
    let without = make(
        &s,
        &[("a", "n2")],
        &PlanOptions {
            cordon: false,
            ..Default::default()
        },
    );
    assert!(without.cordon.is_empty());
    assert_eq!(without.emptied, [0]);
}

#[test]
fn room_freed_in_a_wave_is_used_in_the_next() {
    // n2 is full until b leaves for n3; only then can a go to n2.
    let s = snap(&[
        node("n1", 4),
        node("n2", 4),
        node("n3", 4),
        pod("a", "n1", 3, "a", "rs-a"),
        pod("b", "n2", 3, "b", "rs-b"),
    ]);
    let plan = make(&s, &[("a", "n2"), ("b", "n3")], &PlanOptions::default());
    assert_eq!(waves(&s, &plan), [vec!["b:n2>n3"], vec!["a:n1>n2"]]);
    // n2 is the target of a move, so only n1 is emptied and cordoned.
    assert_eq!(plan.cordon, [0]);
}

#[test]
fn a_swap_is_broken_through_a_node_with_room() {
    let s = snap(&[
        node("n1", 4),
        node("n2", 4),
        node("n3", 4),
        pod("a", "n1", 3, "a", "rs-a"),
        pod("b", "n2", 3, "b", "rs-b"),
    ]);
    let plan = make(&s, &[("a", "n2"), ("b", "n1")], &PlanOptions::default());
    assert_eq!(
        waves(&s, &plan),
        [vec!["a:n1>n3*"], vec!["b:n2>n1"], vec!["a:n3>n2"]]
    );
    assert!(plan.kept.is_empty());
    assert!(plan.cordon.is_empty(), "no node ends empty");
}

#[test]
fn a_swap_without_room_anywhere_is_kept_as_a_cycle() {
    let s = snap(&[
        node("n1", 4),
        node("n2", 4),
        pod("a", "n1", 3, "a", "rs-a"),
        pod("b", "n2", 3, "b", "rs-b"),
    ]);
    let plan = make(&s, &[("a", "n2"), ("b", "n1")], &PlanOptions::default());
    assert!(plan.waves.is_empty());
    let k = kept(&s, &plan);
    assert_eq!(k.len(), 2);
    for (_, why) in k {
        let Why::NoRoom { reasons, cycle } = why else {
            panic!("{why:?}")
        };
        assert!(cycle);
        assert_eq!(reasons, "Insufficient cpu");
    }
}

#[test]
fn a_target_that_never_has_room_is_kept_with_the_filters_reason() {
    let s = snap(&[node("n1", 4), node("n2", 2), pod("a", "n1", 3, "a", "rs-a")]);
    let plan = make(&s, &[("a", "n2")], &PlanOptions::default());
    assert!(plan.waves.is_empty());
    assert_eq!(
        kept(&s, &plan),
        [(
            "a".to_string(),
            Why::NoRoom {
                reasons: "Insufficient cpu".into(),
                cycle: false
            }
        )]
    );
    assert!(
        plan.cordon.is_empty(),
        "a node the plan does not empty is not cordoned"
    );
}

#[test]
fn a_budget_is_spent_per_wave_and_restored_after_it() {
    let s = snap(&[
        node("n1", 8),
        node("n2", 8),
        pod("w1", "n1", 1, "web", "rs"),
        pod("w2", "n1", 1, "web", "rs"),
        pod("w3", "n1", 1, "web", "rs"),
        pdb("web", "web", 1),
    ]);
    let plan = make(
        &s,
        &[("w1", "n2"), ("w2", "n2"), ("w3", "n2")],
        &PlanOptions::default(),
    );
    assert_eq!(
        waves(&s, &plan),
        [vec!["w1:n1>n2"], vec!["w2:n1>n2"], vec!["w3:n1>n2"]]
    );
    assert!(plan.steps().all(|st| st.budget == Some((0, 0))));
}

#[test]
fn pods_no_budget_lets_go_or_that_two_budgets_cover_are_kept() {
    let s = snap(&[
        node("n1", 8),
        node("n2", 8),
        pod("w1", "n1", 1, "web", "rs"),
        pod("d1", "n1", 1, "db", "rs-db"),
        pdb("web", "web", 0),
        pdb("db", "db", 1),
        pdb("db-too", "db", 1),
    ]);
    let plan = make(&s, &[("w1", "n2"), ("d1", "n2")], &PlanOptions::default());
    assert!(plan.waves.is_empty());
    assert_eq!(
        kept(&s, &plan),
        [
            ("w1".to_string(), Why::NoBudget(0)),
            ("d1".to_string(), Why::ManyBudgets(vec![1, 2]))
        ]
    );
}

#[test]
fn caps_limit_the_plan_and_its_waves() {
    let s = snap(&[
        node("n1", 8),
        node("n2", 8),
        node("n3", 8),
        pod("a1", "n1", 1, "a", "rs-a"),
        pod("a2", "n1", 1, "a", "rs-a"),
        pod("b1", "n2", 1, "b", "rs-b"),
    ]);
    let moves = [("a1", "n3"), ("a2", "n3"), ("b1", "n3")];
    let with = |limits: Limits| {
        make(
            &s,
            &moves,
            &PlanOptions {
                limits,
                ..Default::default()
            },
        )
    };
    let p = with(Limits {
        max_total: Some(2),
        ..Default::default()
    });
    assert_eq!(waves(&s, &p), [["a1:n1>n3", "a2:n1>n3"]]);
    assert_eq!(kept(&s, &p), [("b1".to_string(), Why::Cap(Cap::Total))]);
    let p = with(Limits {
        max_per_node: Some(1),
        ..Default::default()
    });
    assert_eq!(waves(&s, &p), [["a1:n1>n3", "b1:n2>n3"]]);
    assert_eq!(kept(&s, &p), [("a2".to_string(), Why::Cap(Cap::PerNode))]);
    let p = with(Limits {
        max_per_namespace: Some(1),
        ..Default::default()
    });
    assert_eq!(waves(&s, &p), [["a1:n1>n3"]]);
    assert_eq!(p.kept.len(), 2);
    let p = with(Limits {
        max_per_wave: Some(2),
        ..Default::default()
    });
    assert_eq!(
        waves(&s, &p),
        [vec!["a1:n1>n3", "a2:n1>n3"], vec!["b1:n2>n3"]]
    );
    let p = with(Limits {
        max_unavailable_per_workload: Some(1),
        ..Default::default()
    });
    assert_eq!(
        waves(&s, &p),
        [vec!["a1:n1>n3", "b1:n2>n3"], vec!["a2:n1>n3"]]
    );
}

#[test]
fn pinned_and_terminal_pods_are_kept_and_pending_pods_are_bound() {
    let mut done = pod("done", "n1", 1, "x", "rs-x");
    done = done.replace(r#""phase":"Running""#, r#""phase":"Succeeded""#);
    let s = snap(&[
        node("n1", 8),
        node("n2", 8),
        pod("agent", "n1", 1, "agent", "ds-agent"),
        pod("bare", "n1", 1, "bare", ""),
        done,
        pod("new", "", 1, "new", "rs-new"),
    ]);
    let plan = make(
        &s,
        &[
            ("agent", "n2"),
            ("bare", "n2"),
            ("done", "n2"),
            ("new", "n2"),
        ],
        &PlanOptions::default(),
    );
    assert_eq!(waves(&s, &plan), [["new:->n2"]]);
    assert_eq!(
        kept(&s, &plan),
        [
            ("agent".to_string(), Why::Pinned(Pin::DaemonSet)),
            ("bare".to_string(), Why::Pinned(Pin::Bare)),
            ("done".to_string(), Why::Terminal),
        ]
    );
    assert!(plan.steps().all(|st| st.budget.is_none()));
}

#[test]
fn a_pod_with_two_targets_is_an_error() {
    let s = snap(&[node("n1", 8), node("n2", 8), pod("a", "n1", 1, "a", "rs")]);
    let t = targets(&s, &[("a", "n2"), ("a", "n1")]);
    let e = plan(&s, &t, &default_profile(), &PlanOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "pod default/a has two targets");
    assert!(matches!(e, kube_engine_core::Error::InvalidArgument(a) if a.argument == "target"));
}

#[test]
fn a_move_to_where_the_pod_is_is_no_step() {
    let s = snap(&[node("n1", 8), pod("a", "n1", 1, "a", "rs")]);
    let plan = make(&s, &[("a", "n1")], &PlanOptions::default());
    assert!(plan.waves.is_empty() && plan.kept.is_empty() && plan.cordon.is_empty());
}

/// Random clusters and targets: every plan keeps room at every step (checked by `make`), makes
/// every move it does not keep, and ends with each moved pod on its target.
#[test]
fn random_targets_keep_room_and_reach_the_target() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _case in 0..200 {
        let nodes = 2 + next(5) as usize;
        let mut items: Vec<String> = (0..nodes).map(|n| node(&format!("n{n}"), 8)).collect();
        let mut used = vec![0u64; nodes];
        let mut moves = Vec::new();
        let pods = 1 + next(12) as usize;
        for i in 0..pods {
            let cpu = 1 + next(4);
            let n = next(nodes as u64) as usize;
            if used[n] + cpu > 8 {
                continue;
            }
            used[n] += cpu;
            items.push(pod(
                &format!("p{i}"),
                &format!("n{n}"),
                cpu as u32,
                "w",
                "rs",
            ));
            if next(2) == 0 {
                moves.push((format!("p{i}"), format!("n{}", next(nodes as u64))));
            }
        }
        let s = snap(&items);
        let m: Vec<(&str, &str)> = moves
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let p = make(&s, &m, &PlanOptions::default());
        let mut at = s.current.node.clone();
        for st in p.steps() {
            at[st.pod as usize] = Some(st.to);
        }
        for (pod, to) in &m {
            let p_id = id(&s, pod);
            let to = s.nodes.id(to).unwrap();
            let kept = p.kept.iter().any(|k| k.pod == p_id);
            assert!(
                kept || at[p_id as usize] == Some(to),
                "{pod} neither kept nor on its target"
            );
            assert!(!p
                .steps()
                .any(|st| st.detour && st.to == to && st.pod == p_id));
        }
        for &n in &p.cordon {
            assert!(
                !p.steps().any(|st| st.to == n),
                "a pod lands on a cordoned node"
            );
        }
    }
}

#[test]
fn replacements_are_predicted_where_the_default_scheduler_puts_them() {
    // a leaves n1 (cordoned) for n2; the default profile spreads (LeastAllocated), so its
    // replacement goes to the empty n3 instead.
    let s = snap(&[
        node("n1", 4),
        node("n2", 4),
        node("n3", 4),
        pod("a", "n1", 1, "a", "rs-a"),
        pod("x", "n2", 2, "x", "rs-x"),
        pod("new", "", 1, "new", "rs-new"),
    ]);
    let p = make(&s, &[("a", "n2"), ("new", "n2")], &PlanOptions::default());
    assert_eq!(p.cordon, [0]);
    let landed = predict(&s, &p, default_profile(), None, 0);
    let names: Vec<Vec<Option<&str>>> = landed
        .iter()
        .map(|w| {
            w.iter()
                .map(|n| n.map(|n| s.nodes.name[n as usize].as_str()))
                .collect()
        })
        .collect();
    // The binding is exact; the eviction's replacement takes the emptiest node, never n1.
    assert_eq!(waves(&s, &p), [["a:n1>n2", "new:->n2"]]);
    assert_eq!(names, [[Some("n3"), Some("n2")]]);
    // The target is the only node with room left once n1 is cordoned: predicted exactly.
    let full = snap(&[
        node("n1", 4),
        node("n2", 4),
        pod("a", "n1", 3, "a", "rs-a"),
        pod("y", "n2", 1, "y", "rs-y"),
    ]);
    let p = make(&full, &[("a", "n2")], &PlanOptions::default());
    assert_eq!(waves(&full, &p), [["a:n1>n2"]]);
    assert_eq!(predict(&full, &p, default_profile(), None, 0), [[Some(1)]]);
    // A pod whose scheduler is the applier's lands exactly on its target.
    let named = snap(&[
        node("n1", 4),
        node("n2", 4),
        node("n3", 4),
        pod("a", "n1", 1, "a", "rs-a").replace(
            r#""containers""#,
            r#""schedulerName":"kube-engine","containers""#,
        ),
        pod("x", "n2", 2, "x", "rs-x"),
    ]);
    let p = make(&named, &[("a", "n2")], &PlanOptions::default());
    assert_eq!(predict(&named, &p, default_profile(), None, 0), [[Some(2)]]);
    assert_eq!(
        predict(&named, &p, default_profile(), Some("kube-engine"), 0),
        [[Some(1)]]
    );
}
