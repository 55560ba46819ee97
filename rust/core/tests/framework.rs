//! The framework on small, hand-checked clusters: the default profile's scores, queue order,
//! tie-breaking, the node walk, threads, and the results a scheduler keeps between cycles.

mod common;
use common::resources::{node, pod};
use common::{placed_on, reason, snap};
use kube_engine_core::schedule::framework::{Cycle, Scheduler};
use kube_engine_core::schedule::profile::{default_profile, profiles_from_json};
use kube_engine_core::schedule::state::ClusterState;
use kube_engine_core::schedule::{schedule, Order};
use kube_engine_core::Error;

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
fn bound_pods_cannot_be_rescheduled_through_schedule() {
    let s = snap(&[
        node("n", "4", "8Gi", ""),
        pod("p", "1", "1Gi", r#""nodeName":"n","#),
    ]);
    let err = schedule(&s, Some(&[0]), &[default_profile()], Order::Input, 0).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(a) if a.argument == "pods"),
        "{err:?}"
    );
    assert!(err.to_string().contains("is bound to node n"), "{err}");
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
    let order: Vec<&str> = kube_engine_core::schedule::state::node_tree_order(&s)
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
    let one = kube_engine_core::schedule::schedule_on_threads(
        &s,
        None,
        std::slice::from_ref(&profile),
        Order::Queue,
        5,
        1,
    )
    .unwrap();
    let two =
        kube_engine_core::schedule::schedule_on_threads(&s, None, &[profile], Order::Queue, 5, 2)
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

#[test]
fn weighted_scores_agree_with_score_then_normalize() {
    use kube_engine_core::schedule::framework::{add_weighted_scores, PreScore};
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

#[test]
fn default_profile_lists_both_plugins() {
    let p = default_profile();
    let filters: Vec<&str> = p.filters.iter().map(|f| f.name()).collect();
    let scores: Vec<(&str, i64)> = p.scores.iter().map(|(s, w)| (s.name(), *w)).collect();
    assert!(filters.ends_with(&[
        "NodeResourcesFit",
        "VolumeBinding",
        "VolumeZone",
        "PodTopologySpread",
        "InterPodAffinity"
    ]));
    assert!(scores.contains(&("PodTopologySpread", 2)));
    assert!(scores.contains(&("InterPodAffinity", 2)));
}
