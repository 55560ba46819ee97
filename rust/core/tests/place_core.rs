//! kube-scheduler semantics of the core plugins on small, hand-checked clusters.

mod common;
use common::{placed_on, reason, run};
use kube_engine_core::place::framework::{Cycle, Scheduler};
use kube_engine_core::place::profile::{default_profile, profiles_from_json};
use kube_engine_core::place::state::ClusterState;
use kube_engine_core::place::{schedule, Order};
use kube_engine_core::snapshot::parse_documents;
use kube_engine_core::Snapshot;

fn node(name: &str, cpu: &str, mem: &str, extra: &str) -> String {
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "spec":{{{extra}}},"status":{{"allocatable":{{"cpu":"{cpu}","memory":"{mem}","pods":"110"}}}}}}"#
    )
}

fn pod(name: &str, cpu: &str, mem: &str, spec_extra: &str) -> String {
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
            "spec":{{{spec_extra}"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"{cpu}","memory":"{mem}"}}}}}}]}}}}"#
    )
}

fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

#[test]
fn taints_and_tolerations_docs_example() {
    let taint = r#""taints":[{"key":"key1","value":"value1","effect":"NoSchedule"}]"#;
    let tolerates = r#""tolerations":[{"key":"key1","operator":"Equal","value":"value1","effect":"NoSchedule"}],"#;
    let exists = r#""tolerations":[{"key":"key1","operator":"Exists","effect":"NoSchedule"}],"#;
    let s = snap(&[
        node("n1", "4", "8Gi", taint),
        pod("plain", "1", "1Gi", ""),
        pod("equal", "1", "1Gi", tolerates),
        pod("exists", "1", "1Gi", exists),
    ]);
    let pl = run(&s);
    assert_eq!(
        reason(&s, &pl, "default/plain"),
        "0/1 nodes are available: 1 node(s) had untolerated taint {key1: value1}."
    );
    assert_eq!(placed_on(&s, &pl, "default/equal").as_deref(), Some("n1"));
    assert_eq!(placed_on(&s, &pl, "default/exists").as_deref(), Some("n1"));
}

#[test]
fn prefer_no_schedule_steers_away() {
    let soft = r#""taints":[{"key":"spot","value":"true","effect":"PreferNoSchedule"}]"#;
    // Identical nodes but for the soft taint; the untainted one wins (TaintToleration weight 3).
    let s = snap(&[
        node("a-spot", "4", "8Gi", soft),
        node("b", "4", "8Gi", ""),
        pod("p", "1", "1Gi", ""),
    ]);
    assert_eq!(placed_on(&s, &run(&s), "default/p").as_deref(), Some("b"));
}

#[test]
fn resource_reasons_and_cordoned_nodes() {
    let s = snap(&[
        node("small-cpu", "1", "64Gi", ""),
        node("small-mem", "64", "1Gi", ""),
        node("cordoned", "64", "64Gi", r#""unschedulable":true"#),
        pod("big", "2", "2Gi", ""),
    ]);
    assert_eq!(
        reason(&s, &run(&s), "default/big"),
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) were unschedulable."
    );
}

#[test]
fn init_containers_count_in_the_fit() {
    // The app needs 1 cpu but its init container 3: a 2-cpu node cannot take it.
    let init = r#""initContainers":[{"name":"i","resources":{"requests":{"cpu":"3"}}}],"#;
    let s = snap(&[node("n", "2", "8Gi", ""), pod("p", "1", "1Gi", init)]);
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        "0/1 nodes are available: 1 Insufficient cpu."
    );
}

#[test]
fn node_affinity_operators_choose_the_node() {
    let labelled = |name: &str, labels: &str| {
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{{labels}}}}},
                "status":{{"allocatable":{{"cpu":"8","memory":"8Gi","pods":"110"}}}}}}"#
        )
    };
    let affinity = |expr: &str| {
        format!(
            r#""affinity":{{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":
                {{"nodeSelectorTerms":[{{"matchExpressions":[{expr}]}}]}}}}}},"#
        )
    };
    let nodes = [
        labelled("gpu-16", r#""cores":"16","gpu":"a100""#),
        labelled("plain-4", r#""cores":"4""#),
    ];
    let cases = [
        (
            r#"{"key":"gpu","operator":"In","values":["a100"]}"#,
            "gpu-16",
        ),
        (
            r#"{"key":"gpu","operator":"NotIn","values":["a100"]}"#,
            "plain-4",
        ),
        (r#"{"key":"gpu","operator":"Exists"}"#, "gpu-16"),
        (r#"{"key":"gpu","operator":"DoesNotExist"}"#, "plain-4"),
        (
            r#"{"key":"cores","operator":"Gt","values":["8"]}"#,
            "gpu-16",
        ),
        (
            r#"{"key":"cores","operator":"Lt","values":["8"]}"#,
            "plain-4",
        ),
    ];
    for (expr, want) in cases {
        let mut items = nodes.to_vec();
        items.push(pod("p", "1", "1Gi", &affinity(expr)));
        let s = snap(&items);
        assert_eq!(
            placed_on(&s, &run(&s), "default/p").as_deref(),
            Some(want),
            "{expr}"
        );
    }
    let mut items = nodes.to_vec();
    items.push(pod(
        "p",
        "1",
        "1Gi",
        &affinity(r#"{"key":"cores","operator":"Gt","values":["64"]}"#),
    ));
    let s = snap(&items);
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    );
}

#[test]
fn hand_computed_default_scores() {
    // Node a: 4 cpu / 8Gi with 1 cpu / 6Gi used; node b: 4 cpu / 8Gi empty. Pod: 1 cpu / 1Gi.
    // LeastAllocated: a: cpu (4-2)/4 = 50, mem (8-7)/8 = 12 -> (50+12)/2 = 31; b: 75, 87 -> 81.
    // Balanced: a: fractions 0.5, 0.875 -> (1 - 0.1875) * 100 = 81; b: 0.25, 0.125 -> 93.
    // TaintToleration and NodeAffinity give every node the same normalised score.
    let s = snap(&[
        node("a", "4", "8Gi", ""),
        node("b", "4", "8Gi", ""),
        pod("used", "1", "6Gi", "").replace(r#""spec":{"#, r#""spec":{"nodeName":"a","#),
        pod("p", "1", "1Gi", ""),
    ]);
    let profile = default_profile();
    let state = ClusterState::new(&s, &s.current);
    let p = s.pods.id("default/p").unwrap();
    let cx = Cycle::new(&state, p);
    let totals = Scheduler::new(&profile, 0).score(&cx, &[0, 1]);
    // Equal plugins contribute the same to both: TaintToleration 3*100, NodeAffinity skipped.
    assert_eq!(totals, vec![300 + 31 + 81, 300 + 81 + 93]);
}

#[test]
fn most_allocated_packs_and_weights_apply() {
    let cfg = r#"{"profiles":[{"plugins":{"score":{"disabled":[{"name":"*"}],
                    "enabled":[{"name":"NodeResourcesFit","weight":1}]}},
                  "pluginConfig":[{"name":"NodeResourcesFit","args":{"scoringStrategy":{"type":"MostAllocated",
                    "resources":[{"name":"cpu","weight":3},{"name":"memory","weight":1}]}}}]}]}"#;
    let profiles = profiles_from_json(cfg).unwrap();
    let s = snap(&[
        node("a", "4", "8Gi", ""),
        node("b", "4", "8Gi", ""),
        pod("used", "2", "1Gi", "").replace(r#""spec":{"#, r#""spec":{"nodeName":"b","#),
        pod("p", "1", "1Gi", ""),
    ]);
    let pl = schedule(&s, None, &profiles, Order::Input, 0).unwrap();
    assert_eq!(placed_on(&s, &pl, "default/p").as_deref(), Some("b"));
}

#[test]
fn queue_order_places_high_priority_first() {
    // One slot; the high-priority pod (listed last) gets it.
    let s = snap(&[
        node("n", "1", "8Gi", ""),
        pod("low", "1", "1Gi", r#""priority":0,"#),
        pod("high", "1", "1Gi", r#""priority":1000,"#),
    ]);
    let pl = schedule(&s, None, &[default_profile()], Order::Queue, 0).unwrap();
    assert_eq!(placed_on(&s, &pl, "default/high").as_deref(), Some("n"));
    assert!(reason(&s, &pl, "default/low").contains("1 Insufficient cpu"));
}

#[test]
fn ties_are_broken_by_the_seed_deterministically() {
    let items: Vec<String> = (0..8)
        .map(|i| node(&format!("n{i}"), "4", "8Gi", ""))
        .chain([pod("p", "1", "1Gi", "")])
        .collect();
    let s = snap(&items);
    let pick = |seed| {
        let pl = schedule(&s, None, &[default_profile()], Order::Input, seed).unwrap();
        placed_on(&s, &pl, "default/p").unwrap()
    };
    assert_eq!(pick(1), pick(1));
    let distinct: std::collections::BTreeSet<String> = (0..40).map(pick).collect();
    assert!(
        distinct.len() > 3,
        "ties should spread over equal nodes: {distinct:?}"
    );
}

#[test]
fn gpu_fit_and_devices() {
    let g = r#"{"kind":"Node","metadata":{"name":"g"},"status":{"allocatable":{"cpu":"8","memory":"8Gi","pods":"110","nvidia.com/gpu":"2"}}}"#;
    let share = |name: &str, m: &str| {
        format!(
            r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
                "spec":{{"containers":[{{"name":"c","resources":{{"requests":{{"kube-engine.io/gpu-milli":"{m}"}}}}}}]}}}}"#
        )
    };
    let s = snap(&[
        g.to_string(),
        share("a", "600"),
        share("b", "600"),
        share("c", "300"),
        share("d", "600"),
    ]);
    let pl = run(&s);
    let dev = |name: &str| {
        let p = s.pods.id(name).unwrap();
        pl.placed.iter().find(|x| x.0 == p).map(|x| x.2)
    };
    // Best fit: a on device 0, b on device 1, c joins the fuller one that fits (either 400 left).
    assert_eq!(dev("default/a"), Some(0b01));
    assert_eq!(dev("default/b"), Some(0b10));
    assert!(dev("default/c").is_some());
    assert_eq!(
        reason(&s, &pl, "default/d"),
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    );
}

#[test]
fn bound_pods_cannot_be_rescheduled_through_schedule() {
    let s = snap(&[
        node("n", "4", "8Gi", ""),
        pod("p", "1", "1Gi", r#""nodeName":"n","#),
    ]);
    let err = schedule(&s, Some(&[0]), &[default_profile()], Order::Input, 0).unwrap_err();
    assert!(err.contains("is bound to node n"), "{err}");
}

#[test]
fn nodes_are_walked_zone_by_zone_like_the_node_tree() {
    let zoned = |name: &str, zone: &str| {
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"topology.kubernetes.io/zone":"{zone}"}}}},
                "status":{{"allocatable":{{"cpu":"4","memory":"8Gi","pods":"110"}}}}}}"#
        )
    };
    let s = snap(&[
        zoned("a1", "a"),
        zoned("a2", "a"),
        zoned("a3", "a"),
        zoned("b1", "b"),
        zoned("c1", "c"),
        zoned("b2", "b"),
        node("plain", "4", "8Gi", ""),
    ]);
    let order: Vec<&str> = kube_engine_core::place::state::node_tree_order(&s)
        .iter()
        .map(|&n| s.nodes.name[n as usize].as_str())
        .collect();
    assert_eq!(order, ["a1", "b1", "c1", "plain", "a2", "b2", "a3"]);
}

#[test]
fn threads_do_not_change_the_placement() {
    // Enough nodes for the parallel walk and scoring to engage (windows of 128 nodes).
    let mut items: Vec<String> = (0..600)
        .map(|i| {
            node(
                &format!("n{i:03}"),
                ["2", "4", "8"][i % 3],
                ["4Gi", "8Gi", "16Gi"][i % 3],
                "",
            )
        })
        .collect();
    items.extend((0..400).map(|i| {
        pod(
            &format!("p{i:03}"),
            ["250m", "1", "3"][i % 3],
            ["512Mi", "2Gi", "6Gi"][i % 3],
            "",
        )
    }));
    let s = snap(&items);
    let profile = default_profile();
    let one = kube_engine_core::place::schedule_on_threads(
        &s,
        None,
        std::slice::from_ref(&profile),
        Order::Queue,
        5,
        1,
    )
    .unwrap();
    let two =
        kube_engine_core::place::schedule_on_threads(&s, None, &[profile], Order::Queue, 5, 2)
            .unwrap();
    assert_eq!(one.placed, two.placed);
    assert_eq!(one.unschedulable.len(), two.unschedulable.len());
    assert!(one.placed.len() > 300);
}

/// The node-local results a scheduler keeps per pod demand must give the decisions computed from
/// scratch: a scheduler that lives through the whole batch against, for every pod, a fresh one
/// (no kept results) in the same state with the same generator and search start.
#[test]
fn kept_node_local_results_match_fresh_cycles() {
    let mut items: Vec<String> = (0..40)
        .map(|i| {
            node(
                &format!("n{i:02}"),
                ["2", "4", "3500m"][i % 3],
                ["4Gi", "8Gi"][i % 2],
                "",
            )
        })
        .collect();
    // Three demands, interleaved, enough to fill the cluster and leave some pods out.
    for i in 0..240 {
        let (cpu, mem) = [("500m", "1Gi"), ("1", "512Mi"), ("250m", "2Gi")][i % 3];
        items.push(pod(&format!("p{i:03}"), cpu, mem, ""));
    }
    let s = snap(&items);
    for profile in [
        default_profile(),
        profiles_from_json(
            r#"{"profiles":[{"schedulerName":"default-scheduler","plugins":{"multiPoint":{
                "disabled":[{"name":"*"}],"enabled":[{"name":"NodeResourcesFit"},
                {"name":"NodeResourcesBalancedAllocation"}]}}}]}"#,
        )
        .unwrap()
        .pop()
        .unwrap(),
    ] {
        let mut state = ClusterState::new(&s, &s.current);
        let mut kept = Scheduler::new(&profile, 7);
        let mut start = 0;
        let (mut placed, mut failed, mut unbound) = (0, 0, 0);
        let mut bound = Vec::new();
        for p in 0..s.pods.len() as u32 {
            let cx = Cycle::new(&state, p);
            let mut fresh = Scheduler::new(&profile, 0);
            fresh.rng = kept.rng.clone();
            let mut fresh_start = start;
            let expected = fresh.place(&cx, 0, &mut fresh_start);
            let got = kept.place(&cx, 0, &mut start);
            assert_eq!(got, expected, "pod {p}");
            assert_eq!(start, fresh_start);
            match got {
                Ok(n) => {
                    placed += 1;
                    state.bind(p, n, 0);
                    bound.push(p);
                }
                Err(_) => failed += 1,
            }
            // Now and then a pod leaves (as in a drain): a full node can take pods again, so
            // what was kept as rejected there must not stay so.
            if p % 9 == 8 && bound.len() > 3 {
                state.unbind(bound.remove(bound.len() / 2));
                unbound += 1;
            }
        }
        assert!(unbound > 20);
        assert!(
            placed > 60 && failed > 0,
            "placed {placed}, failed {failed}"
        );
    }
}

/// The resource scores' straight passes over many nodes (cpu and memory read from the nodes'
/// rooms, arithmetic without overflow checks) give each node what the general per-node score
/// gives it, including nodes too big for the unchecked arithmetic, empty ones and full ones.
#[test]
fn batch_resource_scores_agree_with_per_node_scores() {
    let sizes = [
        ("4", "8Gi"),
        ("3500m", "200Pi"), // memory × 100 past i64::MAX: the checked path
        ("0", "8Gi"),       // no cpu: the general path
        ("64", "512Gi"),
        ("2", "1Gi"),
        ("9000000", "7Ei"),
    ];
    let mut items: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, (cpu, mem))| node(&format!("n{i}"), cpu, mem, ""))
        .collect();
    // n5's memory in use plus 2Ei asked for is past i64::MAX.
    for (i, (on, cpu, mem)) in [
        ("n0", "1", "6Gi"),
        ("n1", "3", "150Pi"),
        ("n2", "10", "100Gi"),
        ("n3", "2", "1Gi"),
        ("n5", "1", "7Ei"),
    ]
    .iter()
    .enumerate()
    {
        let spec = format!(r#""nodeName":"{on}","#);
        items.push(pod(&format!("used{i}"), cpu, mem, &spec));
    }
    let demands = [
        ("1", "1Gi"),
        ("100m", "3Pi"),
        ("0", "0"),
        ("5", "2Ei"),
        ("250m", "1"),
    ];
    for (i, (cpu, mem)) in demands.iter().enumerate() {
        items.push(pod(&format!("p{i}"), cpu, mem, ""));
    }
    let s = snap(&items);
    let state = ClusterState::new(&s, &s.current);
    let nodes: Vec<u32> = (0..s.nodes.len() as u32).collect();
    // Each strategy with weights that average by a shift (1 + 1) and by a division (3 + 2).
    let strategy = |kind: &str, weights: [u32; 2]| {
        let json = format!(
            r#"{{"profiles":[{{"pluginConfig":[{{"name":"NodeResourcesFit","args":{{"scoringStrategy":
            {{"type":"{kind}","resources":[{{"name":"cpu","weight":{}}},{{"name":"memory","weight":{}}}]}}}}}}]}}]}}"#,
            weights[0], weights[1]
        );
        profiles_from_json(&json).unwrap().pop().unwrap()
    };
    let profiles = [
        default_profile(),
        strategy("LeastAllocated", [3, 2]),
        strategy("MostAllocated", [1, 1]),
        strategy("MostAllocated", [3, 2]),
    ];
    let mut checked = 0;
    for profile in profiles {
        for (i, _) in demands.iter().enumerate() {
            let p = s.pods.id(&format!("default/p{i}")).unwrap();
            let cx = Cycle::new(&state, p);
            for (plugin, _) in &profile.scores {
                if !plugin.name().starts_with("NodeResources") {
                    continue;
                }
                let kube_engine_core::place::framework::PreScore::Run(data) =
                    plugin.pre_score(&cx, &nodes)
                else {
                    continue;
                };
                let mut batch = vec![0; nodes.len()];
                plugin.score_all(&cx, &data, &nodes, &mut batch);
                let one: Vec<i64> = nodes.iter().map(|&n| plugin.score(&cx, &data, n)).collect();
                assert_eq!(batch, one, "{} for p{i}", plugin.name());
                checked += 1;
            }
        }
    }
    assert!(checked >= 36, "{checked}");
}

#[test]
fn weighted_scores_agree_with_score_then_normalize() {
    use kube_engine_core::place::framework::{add_weighted_scores, PreScore};
    // Zones z0, z1 and none; n8 has no hostname label either.
    let zone = |name: &str, zone: &str, host: bool| {
        let mut labels = Vec::new();
        if host {
            labels.push(format!(r#""kubernetes.io/hostname":"{name}""#));
        }
        if !zone.is_empty() {
            labels.push(format!(r#""topology.kubernetes.io/zone":"{zone}""#));
        }
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{{}}}}},
                "status":{{"allocatable":{{"cpu":"8","memory":"16Gi","pods":"110"}}}}}}"#,
            labels.join(",")
        )
    };
    let mut items: Vec<String> = (0..9)
        .map(|i| {
            let z = ["z0", "z1", ""][i / 3];
            zone(&format!("n{i}"), z, i != 8)
        })
        .collect();
    let web = |name: &str, spec: &str| {
        format!(
            r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default","labels":{{"app":"web"}},
                "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"w","controller":true}}]}},
                "spec":{{{spec}"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"1","memory":"1Gi"}}}}}}]}}}}"#
        )
    };
    for (i, n) in ["n0", "n0", "n3", "n6", "n8"].iter().enumerate() {
        items.push(web(&format!("placed{i}"), &format!(r#""nodeName":"{n}","#)));
    }
    // Defaulted constraints (the ReplicaSet's), and constraints of its own that need every key.
    items.push(web("defaulted", ""));
    items.push(web(
        "own",
        r#""topologySpreadConstraints":[
            {"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app":"web"}}},
            {"maxSkew":2,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app":"web"}}}],"#,
    ));
    items.push(web(
        "anti",
        r#""affinity":{"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[
            {"weight":30,"podAffinityTerm":{"topologyKey":"topology.kubernetes.io/zone","labelSelector":{"matchLabels":{"app":"web"}}}},
            {"weight":70,"podAffinityTerm":{"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"web"}}}}]}},"#,
    ));
    let s = snap(&items);
    let state = ClusterState::new(&s, &s.current);
    let all: Vec<u32> = (0..s.nodes.len() as u32).collect();
    let some: Vec<u32> = vec![8, 1, 3, 6, 0];
    let profile = default_profile();
    let mut varied = 0;
    for name in ["defaulted", "own", "anti"] {
        let p = s.pods.id(&format!("default/{name}")).unwrap();
        let cx = Cycle::new(&state, p);
        for nodes in [&all, &some] {
            for (plugin, _) in &profile.scores {
                let PreScore::Run(data) = plugin.pre_score(&cx, nodes) else {
                    continue;
                };
                let (mut fused, mut stepwise) = (vec![1; nodes.len()], vec![1; nodes.len()]);
                let mut buf = Vec::new();
                plugin.add_weighted(&cx, &data, nodes, 3, &mut fused, &mut buf);
                add_weighted_scores(
                    plugin.as_ref(),
                    &cx,
                    &data,
                    nodes,
                    3,
                    &mut stepwise,
                    &mut buf,
                );
                assert_eq!(fused, stepwise, "{} for {name} on {nodes:?}", plugin.name());
                let mut distinct = stepwise.clone();
                distinct.sort();
                distinct.dedup();
                varied += usize::from(distinct.len() > 2);
            }
        }
    }
    // Spread and InterPodAffinity tell the nodes apart (more than ignored and the rest).
    assert!(varied >= 4, "{varied}");
}
