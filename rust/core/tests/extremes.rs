//! Amounts at the snapshot's limit (2^62 in all per resource, see `snapshot::MAX_TOTAL`): every
//! entry point completes without overflow and gives the answer it gives on small numbers.

use kube_engine_core::bench::replay::policy_profile;
use kube_engine_core::metrics::{evaluate, ViolationKind};
use kube_engine_core::plan::{plan, PlanOptions, Target};
use kube_engine_core::rebalance::greedy::{self, Limits, Objective, Term};
use kube_engine_core::rebalance::{drain, problem, DrainOptions, PinOptions};
use kube_engine_core::resources::{CPU, MEMORY};
use kube_engine_core::schedule::framework::Profile;
use kube_engine_core::schedule::profile::{default_profile, profiles_from_json};
use kube_engine_core::schedule::{explain, schedule, Order};
use kube_engine_core::snapshot::{parse_documents, NodeId, MAX_TOTAL};
use kube_engine_core::Snapshot;

/// 2^k in the cpu's milli-cores, as a quantity.
fn milli(k: u32) -> String {
    format!("{}m", 1i64 << k)
}

fn node(name: &str, cpu: &str, memory: &str, pods: u32, gpus: u32) -> String {
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "status":{{"allocatable":{{"cpu":"{cpu}","memory":"{memory}","example.com/x":"{memory}",
              "pods":"{pods}","nvidia.com/gpu":"{gpus}"}},
              "conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
    )
}

/// A pod of ReplicaSet `web` (so that it may move), bound to `node` unless that is empty.
fn pod(name: &str, node: &str, requests: &str) -> String {
    let (bound, phase) = if node.is_empty() {
        (String::new(), "Pending")
    } else {
        (format!(r#""nodeName":"{node}","#), "Running")
    };
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default","uid":"u-{name}",
              "labels":{{"app":"web"}},
              "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"u-web","controller":true}}]}},
            "spec":{{{bound}"containers":[{{"name":"c","resources":{{"requests":{{{requests}}}}}}}]}},
            "status":{{"phase":"{phase}"}}}}"#
    )
}

fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

/// Every scoring rule there is: the default profile, NodeResourcesFit's other strategies and
/// BalancedAllocation over every resource, and each packing policy alone.
fn profiles() -> Vec<Profile> {
    let fit = |strategy: &str| {
        format!(
            r#"{{"profiles":[{{"schedulerName":"default-scheduler",
                "pluginConfig":[{{"name":"NodeResourcesFit","args":{{"scoringStrategy":{strategy}}}}},
                  {{"name":"NodeResourcesBalancedAllocation","args":{{"resources":[
                    {{"name":"cpu","weight":1}},{{"name":"memory","weight":1}},
                    {{"name":"example.com/x","weight":1}},{{"name":"nvidia.com/gpu","weight":1}}]}}}}]}}]}}"#
        )
    };
    let resources = r#"[{"name":"cpu","weight":100},{"name":"memory","weight":3},
        {"name":"example.com/x","weight":7},{"name":"nvidia.com/gpu","weight":1}]"#;
    let mut out = vec![default_profile()];
    for strategy in [
        format!(r#"{{"type":"MostAllocated","resources":{resources}}}"#),
        format!(r#"{{"type":"LeastAllocated","resources":{resources}}}"#),
        format!(
            r#"{{"type":"RequestedToCapacityRatio","resources":{resources},
                "requestedToCapacityRatio":{{"shape":[{{"utilization":0,"score":0}},{{"utilization":100,"score":10}}]}}}}"#
        ),
    ] {
        out.extend(profiles_from_json(&fit(&strategy)).unwrap());
    }
    for policy in [
        "BestFit",
        "FirstFit",
        "DotProduct",
        "GpuPacking",
        "GpuClustering",
        "FGD",
        "Random",
    ] {
        let mut p = policy_profile(policy, 1).unwrap();
        p.name = "default-scheduler".into();
        out.push(p);
    }
    out
}

/// Per profile: the node each pending pod goes to, by name (`None`: unschedulable).
fn placements(s: &Snapshot) -> Vec<Vec<(String, Option<String>)>> {
    profiles()
        .iter()
        .map(|profile| {
            let pl = schedule(s, None, std::slice::from_ref(profile), Order::Input, 0).unwrap();
            let mut out: Vec<(String, Option<String>)> = pl
                .placed
                .iter()
                .map(|&(p, n, _)| (s.pod_key(p), Some(s.nodes.name[n as usize].clone())))
                .chain(pl.unschedulable.iter().map(|(p, _)| (s.pod_key(*p), None)))
                .collect();
            out.sort();
            out
        })
        .collect()
}

fn total(s: &Snapshot, r: usize) -> i64 {
    (0..s.nodes.len())
        .map(|n| s.nodes.allocatable.get(n, r))
        .sum()
}

/// Two nodes of 2^61 milli-cpu, 2Ei memory and 2Ei `example.com/x`; four pods of a quarter of
/// that (the last short of a core, which a GPU-share pod asks for): two fill the first node,
/// two pending, and the GPU-share pod pending.
fn at_the_limit() -> Snapshot {
    let quarter = format!(
        r#""cpu":"{}","memory":"1Ei","example.com/x":"1Ei""#,
        milli(60)
    );
    let short = format!(
        r#""cpu":"{}m","memory":"1Ei","example.com/x":"1Ei""#,
        (1i64 << 60) - 1000
    );
    snap(&[
        node("n1", &milli(61), "2Ei", 110, 4),
        node("n2", &milli(61), "2Ei", 110, 4),
        pod("b1", "n1", &quarter),
        pod("b2", "n1", &quarter),
        pod("q1", "", &quarter),
        pod("q2", "", &short),
        pod(
            "q3",
            "",
            r#""cpu":"1","memory":"0","kube-engine.io/gpu-milli":"500""#,
        ),
    ])
}

#[test]
fn nodes_and_pods_at_the_limit_schedule_where_there_is_room() {
    let s = at_the_limit();
    for r in [CPU, MEMORY] {
        assert_eq!(total(&s, r), MAX_TOTAL);
    }
    let n2 = Some("n2".to_string());
    let everything_on_n2 = vec![
        ("default/q1".to_string(), n2.clone()),
        ("default/q2".to_string(), n2.clone()),
        ("default/q3".to_string(), n2.clone()),
    ];
    for (i, placed) in placements(&s).into_iter().enumerate() {
        assert_eq!(placed, everything_on_n2, "profile {i}");
    }

    let q1 = s.pods.id("default/q1").unwrap();
    for profile in profiles() {
        let (ex, _) = explain(&s, q1, std::slice::from_ref(&profile)).unwrap();
        assert_eq!(ex.feasible, vec![1], "{}", profile.name);
        let n1 = ex.filters[0].as_ref().unwrap();
        assert_eq!(n1.plugin, "NodeResourcesFit");
        assert!(n1.reasons.contains(&"Insufficient cpu".to_string()));
        assert!(n1.reasons.contains(&"Insufficient memory".to_string()));
        assert!(ex.totals.iter().all(|&t| t >= 0));
    }
}

#[test]
fn evaluate_at_the_limit() {
    let s = at_the_limit();
    let ev = evaluate(&s, &s.current);
    let cpu = &ev.resources[CPU];
    assert_eq!(cpu.allocatable, MAX_TOTAL);
    assert_eq!(cpu.requested, 1 << 61);
    assert_eq!(cpu.pending, MAX_TOTAL - (1 << 61));
    assert_eq!(cpu.utilisation, 0.5);
    assert_eq!((cpu.node_mean, cpu.node_max), (0.5, 1.0));
    assert!(ev.violations.is_empty());
    assert_eq!(ev.lower_bounds.l1, 2);

    // Everything on the first node: over-committed twice over, counted, not overflowed.
    let moves: Vec<(u32, Option<NodeId>, Option<u64>)> = (0..s.pods.len() as u32)
        .map(|p| (p, Some(0), None))
        .collect();
    let a = s.assignment_with(&moves).unwrap();
    let ev = evaluate(&s, &a);
    assert_eq!(ev.node_requested.get(0, MEMORY), MAX_TOTAL);
    assert_eq!(ev.resources[MEMORY].node_max, 2.0);
    assert!(ev
        .violations
        .iter()
        .any(|v| v.kind == ViolationKind::Capacity));
}

/// One node over-committed by its two pods, which between them request everything there is;
/// the other node has all the rest.
#[test]
fn an_over_committed_node_at_the_limit() {
    let s = snap(&[
        node("n1", "1", "1Gi", 110, 0),
        node(
            "n2",
            &format!("{}m", MAX_TOTAL - 1000),
            &(MAX_TOTAL - (1 << 30)).to_string(),
            110,
            0,
        ),
        pod(
            "b1",
            "n1",
            &format!(r#""cpu":"{}","memory":"2Ei""#, milli(61)),
        ),
        pod(
            "b2",
            "n1",
            &format!(
                r#""cpu":"{}m","memory":"{}""#,
                (1i64 << 61) - 1000,
                (1i64 << 61) - 1024
            ),
        ),
        pod("q", "", r#""cpu":"1","memory":"1Ki""#),
    ]);
    let ev = evaluate(&s, &s.current);
    assert_eq!(ev.node_requested.get(0, CPU), MAX_TOTAL - 1000);
    assert!(ev.resources[CPU].node_max > 1e15);
    for placed in placements(&s) {
        assert_eq!(
            placed,
            vec![("default/q".to_string(), Some("n2".to_string()))]
        );
    }
    // The over-committed node cannot be emptied into the other (n2 is not in use, so closed).
    let p = drain(&s, DrainOptions::default()).unwrap();
    assert!(p.moves.is_empty());
}

/// 1024 pods of 2^52 each, 2^62 in all: 384 fill three quarters of the first node, 128 a quarter
/// of the second, 512 are pending.
fn many_pods() -> Snapshot {
    let each = format!(r#""cpu":"{}","memory":"{}""#, milli(52), 1i64 << 52);
    let mut items = vec![
        node("n1", &milli(61), "2Ei", 2000, 0),
        node("n2", &milli(61), "2Ei", 2000, 0),
    ];
    for i in 0..1024 {
        let on = match i {
            0..384 => "n1",
            384..512 => "n2",
            _ => "",
        };
        items.push(pod(&format!("p{i:04}"), on, &each));
    }
    snap(&items)
}

#[test]
fn many_pods_at_the_limit_fill_both_nodes_exactly() {
    let s = many_pods();
    let pl = schedule(&s, None, &[default_profile()], Order::Input, 0).unwrap();
    assert_eq!((pl.placed.len(), pl.unschedulable.len()), (512, 0));
    let ev = evaluate(&s, &pl.assignment);
    assert_eq!(ev.resources[CPU].requested, MAX_TOTAL);
    assert_eq!(ev.resources[MEMORY].utilisation, 1.0);
    assert!(ev.violations.is_empty());
    let q = s.pods.id("default/p0600").unwrap();
    let (ex, _) = explain(&s, q, &[default_profile()]).unwrap();
    assert_eq!(ex.feasible, vec![0, 1]);
}

#[test]
fn rebalancing_at_the_limit() {
    let s = many_pods();
    let pr = problem(&s, &default_profile(), &PinOptions::default());
    assert!(pr.pinned.is_empty());
    assert_eq!(pr.classes.len(), 1);
    assert_eq!(pr.classes[0].candidates, vec![0, 1]);
    assert_eq!(pr.free.get(0, CPU), 1 << 61);

    // Packing: the second node's 128 pods fill the first.
    let drained = drain(&s, DrainOptions::default()).unwrap();
    assert_eq!(drained.freed, vec![1]);
    assert_eq!(drained.moves.len(), 128);
    let ev = evaluate(&s, &drained.assignment);
    assert_eq!(ev.node_requested.get(0, CPU), 1 << 61);
    assert!(ev.violations.is_empty());

    // The plan that carries it out: every pod held on its node until its replacement lands.
    let targets: Vec<Target> = drained
        .moves
        .iter()
        .map(|m| Target {
            pod: m.pod,
            to: m.to,
            devices: None,
        })
        .collect();
    let pl = plan(&s, &targets, &default_profile(), &PlanOptions::default()).unwrap();
    assert_eq!(pl.steps().count(), 128);
    assert_eq!(pl.emptied, vec![1]);

    // Balance: three quarters against a quarter, evened out by moving 128 pods.
    let column = |r| -> Vec<i64> {
        (0..s.nodes.len())
            .map(|n| s.nodes.allocatable.get(n, r))
            .collect()
    };
    let allocatable = [column(CPU), column(MEMORY)];
    let objective = Objective {
        terms: vec![(Term::Balance, 1.0, 1.0)],
        move_cost: 0.0,
        prices: None,
        balanced: allocatable.clone(),
        allocatable,
    };
    let start = greedy::balance(&s, &pr, &objective, &Limits::default());
    assert_eq!(start.moves.len(), 128);
    assert!(start.moves.iter().all(|m| (m.from, m.to) == (0, 1)));
    assert_eq!(start.value, 0.5);
}

/// 1024 pods of 2^52 on one node of 2^62: the last one, pending, fits to the unit, and one more
/// milli-core would not.
#[test]
fn a_thousand_pods_fill_one_node_to_the_limit() {
    let each = format!(r#""cpu":"{}","memory":"{}""#, milli(52), 1i64 << 52);
    let mut items = vec![node("n1", &milli(62), "4Ei", 2000, 0)];
    for i in 0..1024 {
        items.push(pod(
            &format!("p{i:04}"),
            if i < 1023 { "n1" } else { "" },
            &each,
        ));
    }
    let s = snap(&items);
    let pl = schedule(&s, None, &[default_profile()], Order::Input, 0).unwrap();
    assert_eq!((pl.placed.len(), pl.unschedulable.len()), (1, 0));
    let ev = evaluate(&s, &pl.assignment);
    assert_eq!(ev.node_requested.get(0, CPU), MAX_TOTAL);
    assert_eq!(ev.resources[CPU].node_max, 1.0);
    assert!(ev.violations.is_empty());

    // The same with the last pod a milli-core larger: the totals pass the limit.
    items[1024] = pod(
        "p1023",
        "",
        &format!(r#""cpu":"{}m","memory":"{}""#, (1i64 << 52) + 1, 1i64 << 52),
    );
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    let e = parse_documents(&[doc.as_bytes()]).unwrap_err().to_string();
    assert!(
        e.starts_with("items[1024]: the pods up to this one request more"),
        "{e}"
    );

    let drained = drain(&s, DrainOptions::default()).unwrap();
    assert!(drained.moves.is_empty());
    // No pod is pinned: the node's room for the movable ones is all of it.
    let pr = problem(&s, &default_profile(), &PinOptions::default());
    assert_eq!(pr.free.get(0, CPU), MAX_TOTAL);
    assert_eq!(pr.classes[0].pods.len(), 1023);
}
