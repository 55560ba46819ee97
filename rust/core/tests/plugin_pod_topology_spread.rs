//! PodTopologySpread on small clusters: the Kubernetes documentation's examples, upstream's edge
//! cases (minDomains, inclusion policies, system and listed defaults), hand-computed scores, and
//! agreement with a plain reference on random clusters.

mod common;
use common::reference::{self, random_cluster};
use common::topology::{constraint, node, node_with, owner, pod, pod_meta, spread, HOST, ZONE};
use common::{placed_on, reason, run, run_with, scores, snap, verdicts, OK};
use kube_engine_core::schedule::plugins::pod_topology_spread::PodTopologySpread;
use kube_engine_core::schedule::profile::profiles_from_json;
use kube_engine_core::schedule::{schedule, Order};
use kube_engine_core::Snapshot;

const SPREAD: &str = "node(s) didn't match pod topology spread constraints";
const SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

fn spread_plugin() -> PodTopologySpread {
    PodTopologySpread::default()
}

// ---------------------------------------------------------------------------------------------
// Filter

/// The docs' four nodes in two zones, with `foo: bar` pods on node1, node2 and node3.
fn docs_cluster(incoming_spec: &str) -> Snapshot {
    snap(&[
        node("node1", Some("zoneA")),
        node("node2", Some("zoneA")),
        node("node3", Some("zoneB")),
        node("node4", Some("zoneB")),
        pod("default/p1", r#""app":"foo""#, Some("node1"), ""),
        pod("default/p2", r#""app":"foo""#, Some("node2"), ""),
        pod("default/p3", r#""app":"foo""#, Some("node3"), ""),
        pod("default/mypod", r#""app":"foo""#, None, incoming_spec),
    ])
}

#[test]
fn docs_one_constraint_two_zones() {
    // zoneA holds 2 matching pods, zoneB 1; with maxSkew 1 the pod must go to zoneB.
    let s = docs_cluster(&spread(&[constraint(ZONE, 1, "DoNotSchedule", "foo", "")]));
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/mypod").unwrap(),
        [SPREAD, SPREAD, OK, OK]
    );
    let on = placed_on(&s, &run(&s), "default/mypod").unwrap();
    assert!(on == "node3" || on == "node4", "{on}");
}

#[test]
fn docs_zone_and_node_constraints_leave_one_node() {
    let s = docs_cluster(&spread(&[
        constraint(ZONE, 1, "DoNotSchedule", "foo", ""),
        constraint(HOST, 1, "DoNotSchedule", "foo", ""),
    ]));
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/mypod").unwrap(),
        [SPREAD, SPREAD, SPREAD, OK]
    );
    assert_eq!(
        placed_on(&s, &run(&s), "default/mypod").as_deref(),
        Some("node4")
    );
}

#[test]
fn a_batch_spreads_evenly_over_zones_and_nodes() {
    let c = spread(&[
        constraint(ZONE, 1, "DoNotSchedule", "web", ""),
        constraint(HOST, 1, "DoNotSchedule", "web", ""),
    ]);
    let mut items = vec![
        node("a1", Some("a")),
        node("a2", Some("a")),
        node("b1", Some("b")),
        node("b2", Some("b")),
    ];
    for i in 0..8 {
        items.push(pod(&format!("default/web-{i}"), r#""app":"web""#, None, &c));
    }
    let s = snap(&items);
    let pl = run(&s);
    assert!(pl.unschedulable.is_empty());
    let mut per_node = [0; 4];
    for &(_, n, _) in &pl.placed {
        per_node[n as usize] += 1;
    }
    assert_eq!(per_node, [2, 2, 2, 2]);
}

#[test]
fn min_domains_treats_the_global_minimum_as_zero() {
    let with = |extra: &str| {
        snap(&[
            node("n1", Some("a")),
            node("n2", Some("b")),
            pod("default/x", r#""app":"web""#, Some("n1"), ""),
            pod("default/y", r#""app":"web""#, Some("n2"), ""),
            pod(
                "default/p",
                r#""app":"web""#,
                None,
                &spread(&[constraint(ZONE, 1, "DoNotSchedule", "web", extra)]),
            ),
        ])
    };
    // Two domains with one pod each: the minimum is 1, so 1 + 1 - 1 <= 1 everywhere.
    let s = with("");
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [OK, OK]
    );
    let s = with(r#","minDomains":2"#);
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [OK, OK]
    );
    // minDomains 3 > 2 domains: the minimum counts as 0 and 1 + 1 - 0 > 1 on both.
    let s = with(r#","minDomains":3"#);
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        format!("0/2 nodes are available: 2 {SPREAD}.")
    );
}

/// Zones a and b hold one `app: web` pod each; zone c is empty but the pod's node affinity (or
/// a taint) keeps it out.
fn third_zone_cluster(policy: &str, incoming_extra: &str, zone_c_spec: &str) -> Snapshot {
    snap(&[
        node("n1", Some("a")),
        node("n2", Some("b")),
        node_with("n3", Some("c"), zone_c_spec),
        pod("default/x", r#""app":"web""#, Some("n1"), ""),
        pod("default/y", r#""app":"web""#, Some("n2"), ""),
        pod(
            "default/p",
            r#""app":"web""#,
            None,
            &format!(
                "{}{incoming_extra}",
                spread(&[constraint(ZONE, 1, "DoNotSchedule", "web", policy)])
            ),
        ),
    ])
}

#[test]
fn node_affinity_policy_decides_whether_excluded_zones_count() {
    let not_c = r#""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms":[{"matchExpressions":[{"key":"topology.kubernetes.io/zone","operator":"NotIn","values":["c"]}]}]}}},"#;
    // Honor (the default): zone c is not a domain, the minimum is 1.
    let s = third_zone_cluster("", not_c, "");
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [OK, OK, OK]
    );
    assert!(placed_on(&s, &run(&s), "default/p").is_some());
    // Ignore: zone c counts with 0 pods, so zones a and b are too full; c fails NodeAffinity.
    let s = third_zone_cluster(r#","nodeAffinityPolicy":"Ignore""#, not_c, "");
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [SPREAD, SPREAD, OK]
    );
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        format!(
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 {SPREAD}."
        )
    );
}

#[test]
fn node_taints_policy_decides_whether_tainted_zones_count() {
    let taint = r#""taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}]"#;
    // Ignore (the default): the tainted empty zone counts, the minimum is 0.
    let s = third_zone_cluster("", "", taint);
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [SPREAD, SPREAD, OK]
    );
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        format!("0/3 nodes are available: 1 node(s) had untolerated taint {{dedicated: gpu}}, 2 {SPREAD}.")
    );
    // Honor: zone c is not a domain for a pod that does not tolerate the taint.
    let s = third_zone_cluster(r#","nodeTaintsPolicy":"Honor""#, "", taint);
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [OK, OK, OK]
    );
    // ... but it is for a pod that does.
    let tolerates = r#""tolerations":[{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoSchedule"}],"#;
    let s = third_zone_cluster(r#","nodeTaintsPolicy":"Honor""#, tolerates, taint);
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [SPREAD, SPREAD, OK]
    );
}

#[test]
fn nodes_without_the_key_are_rejected_and_not_domains() {
    let s = snap(&[
        node("n1", Some("a")),
        node("n2", Some("b")),
        node("bare", None),
        pod("default/x", r#""app":"web""#, Some("n1"), ""),
        // A matching pod on a node without the key counts in no domain.
        pod("default/y", r#""app":"web""#, Some("bare"), ""),
        pod(
            "default/p",
            r#""app":"web""#,
            None,
            &spread(&[constraint(ZONE, 1, "DoNotSchedule", "web", "")]),
        ),
    ]);
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [SPREAD, OK, SPREAD_LABEL]
    );
    assert_eq!(placed_on(&s, &run(&s), "default/p").as_deref(), Some("n2"));
}

#[test]
fn nodes_missing_another_constraints_key_count_in_no_domain() {
    // n2 is in zone a but has no rack: its pods count for neither constraint.
    let racked = |name: &str, zone: &str, rack: Option<&str>| {
        let rack = rack
            .map(|r| format!(r#","rack":"{r}""#))
            .unwrap_or_default();
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"{ZONE}":"{zone}"{rack}}}}},
                "status":{{"allocatable":{{"cpu":"16","memory":"64Gi","pods":"110"}}}}}}"#
        )
    };
    let s = snap(&[
        racked("n1", "a", Some("r1")),
        racked("n2", "a", None),
        racked("n3", "b", Some("r2")),
        pod("default/x", r#""app":"web""#, Some("n2"), ""),
        pod("default/y", r#""app":"web""#, Some("n2"), ""),
        pod(
            "default/p",
            r#""app":"web""#,
            None,
            &spread(&[
                constraint(ZONE, 1, "DoNotSchedule", "web", ""),
                constraint("rack", 5, "DoNotSchedule", "web", ""),
            ]),
        ),
    ]);
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [OK, SPREAD_LABEL, OK]
    );
}

#[test]
fn only_same_namespace_and_match_label_keys_narrow_the_count() {
    let c = |extra: &str| spread(&[constraint(ZONE, 1, "DoNotSchedule", "web", extra)]);
    let cluster = |incoming: String| {
        snap(&[
            node("n1", Some("a")),
            node("n2", Some("b")),
            pod(
                "default/old-1",
                r#""app":"web","pod-template-hash":"v1""#,
                Some("n1"),
                "",
            ),
            pod(
                "default/old-2",
                r#""app":"web","pod-template-hash":"v1""#,
                Some("n1"),
                "",
            ),
            // Other namespaces never count.
            pod("other/web-1", r#""app":"web""#, Some("n2"), ""),
            pod("other/web-2", r#""app":"web""#, Some("n2"), ""),
            pod("other/web-3", r#""app":"web""#, Some("n2"), ""),
            incoming,
        ])
    };
    let labels = r#""app":"web","pod-template-hash":"v2""#;
    let s = cluster(pod("default/p", labels, None, &c("")));
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [SPREAD, OK]
    );
    // matchLabelKeys: only pods of the same revision (v2: none yet) count.
    let s = cluster(pod(
        "default/p",
        labels,
        None,
        &c(r#","matchLabelKeys":["pod-template-hash"]"#),
    ));
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/p").unwrap(),
        [OK, OK]
    );
}

#[test]
fn empty_and_null_selectors_count_nothing() {
    let cluster = |selector: &str| {
        snap(&[
            node("n1", Some("a")),
            node("n2", Some("b")),
            pod("default/x", r#""app":"web""#, Some("n1"), ""),
            pod("default/y", r#""app":"web""#, Some("n1"), ""),
            pod(
                "default/p",
                r#""app":"web""#,
                None,
                &format!(
                    r#""topologySpreadConstraints":[{{"maxSkew":1,"topologyKey":"{ZONE}",
                        "whenUnsatisfiable":"DoNotSchedule"{selector}}}],"#
                ),
            ),
        ])
    };
    // Upstream: an empty selector matches the pod itself but counts no placed pod.
    for selector in ["", r#","labelSelector":{}"#] {
        let s = cluster(selector);
        assert_eq!(
            verdicts(&s, &spread_plugin(), "default/p").unwrap(),
            [OK, OK],
            "{selector}"
        );
    }
}

#[test]
fn pods_without_hard_constraints_skip_the_filter() {
    let s = docs_cluster(&spread(&[constraint(ZONE, 1, "ScheduleAnyway", "foo", "")]));
    assert!(verdicts(&s, &spread_plugin(), "default/mypod").is_none());
    let s = docs_cluster("");
    assert!(verdicts(&s, &spread_plugin(), "default/mypod").is_none());
}

#[test]
fn list_default_constraints_apply_to_a_controllers_pods() {
    let cfg = r#"{"profiles":[{"pluginConfig":[{"name":"PodTopologySpread","args":{
        "defaultingType":"List",
        "defaultConstraints":[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule"}]}}]}]}"#;
    let profiles = profiles_from_json(cfg).unwrap();
    let rs = owner("ReplicaSet", "web-abc");
    let s = snap(&[
        node("n1", Some("a")),
        node("n2", Some("b")),
        pod_meta("default/w1", r#""app":"web""#, Some("n1"), "", &rs),
        pod_meta("default/w2", r#""app":"web""#, Some("n1"), "", &rs),
        // A pod of another ReplicaSet in zone b does not count for web-abc.
        pod_meta(
            "default/o1",
            r#""app":"web""#,
            Some("n2"),
            "",
            &owner("ReplicaSet", "other"),
        ),
        pod_meta("default/w3", r#""app":"web""#, None, "", &rs),
        pod_meta(
            "default/job",
            r#""app":"web""#,
            None,
            "",
            &owner("Job", "batch"),
        ),
    ]);
    let plugin = {
        let args = serde_json::from_str(
            r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule"}]}"#,
        )
        .unwrap();
        PodTopologySpread::new(args).unwrap()
    };
    assert_eq!(verdicts(&s, &plugin, "default/w3").unwrap(), [SPREAD, OK]);
    // Job pods get no default spreading (no Service/ReplicaSet/StatefulSet selects them).
    assert!(verdicts(&s, &plugin, "default/job").is_none());
    let pl = run_with(&s, &profiles);
    assert_eq!(placed_on(&s, &pl, "default/w3").as_deref(), Some("n2"));
    // The system defaults are ScheduleAnyway: they never filter.
    assert!(verdicts(&s, &spread_plugin(), "default/w3").is_none());
}

#[test]
fn args_errors_surface_through_the_configuration() {
    let err = |args: &str| {
        profiles_from_json(&format!(
            r#"{{"profiles":[{{"pluginConfig":[{{"name":"PodTopologySpread","args":{args}}}]}}]}}"#
        ))
        .err()
        .unwrap()
        .to_string()
    };
    assert!(err(r#"{"defaultConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
        .contains("when .defaultConstraints are not empty"));
    assert!(err(r#"{"defaultingType":"List","extra":1}"#).contains("unknown field `extra`"));
}

// ---------------------------------------------------------------------------------------------
// Score

#[test]
fn schedule_anyway_score_hand_computed() {
    // Zone a holds two `app: web` pods (on a1), zone b none; the node without a zone label is
    // ignored (the pod has its own constraints). Weight ln(2 zones + 2) = 1.386:
    // a1, a2: 2 × 1.386 + (1 − 1) = 2.77 → 3; b1: 0. Reversed: 100 × (3 + 0 − s) / 3.
    let s = snap(&[
        node("a1", Some("a")),
        node("a2", Some("a")),
        node("b1", Some("b")),
        node("bare", None),
        pod("default/x", r#""app":"web""#, Some("a1"), ""),
        pod("default/y", r#""app":"web""#, Some("a1"), ""),
        pod(
            "default/p",
            r#""app":"web""#,
            None,
            &spread(&[constraint(ZONE, 1, "ScheduleAnyway", "web", "")]),
        ),
    ]);
    let all = ["a1", "a2", "b1", "bare"];
    let (raw, norm) = scores(&s, &spread_plugin(), "default/p", &all).unwrap();
    assert_eq!(raw, [3, 3, 0, 0]);
    assert_eq!(norm, [0, 0, 100, 0]);
    // Domains come from the feasible nodes, counts from every node: with a1 infeasible, zone a
    // still holds its two pods.
    let (raw, norm) = scores(&s, &spread_plugin(), "default/p", &["a2", "b1"]).unwrap();
    assert_eq!(raw, [3, 0]);
    assert_eq!(norm, [0, 100]);
    // Placement follows (PodTopologySpread weighs 2).
    assert_eq!(placed_on(&s, &run(&s), "default/p").as_deref(), Some("b1"));
}

#[test]
fn system_default_spreading_hand_computed() {
    // ReplicaSet pods: two on n1 (zone A), one on n3 (zone B); n4 has no zone label. The system
    // defaults are hostname (maxSkew 3) and zone (maxSkew 5), ScheduleAnyway; nodes without a zone
    // are still scored by hostname, and upstream counts them as a "" zone domain.
    // Hostname weight ln(4 + 2) = 1.792; zone weight ln(3 + 2) = 1.609 (A, B and "").
    // n1: 2 × 1.792 + 2 + 2 × 1.609 + 4 = 12.80 → 13
    // n2: 0 + 2 + 2 × 1.609 + 4 = 9.22 → 9
    // n3: 1.792 + 2 + 1.609 + 4 = 9.40 → 9
    // n4: 0 + 2 (no zone label) → 2
    // Reversed with max 13, min 2: 100 × (15 − s) / 13 → 15, 46, 46, 100.
    let rs = owner("ReplicaSet", "web-abc");
    let s = snap(&[
        node("n1", Some("A")),
        node("n2", Some("A")),
        node("n3", Some("B")),
        node("n4", None),
        pod_meta("default/w1", r#""app":"web""#, Some("n1"), "", &rs),
        pod_meta("default/w2", r#""app":"web""#, Some("n1"), "", &rs),
        pod_meta("default/w3", r#""app":"web""#, Some("n3"), "", &rs),
        pod_meta("default/new", r#""app":"web""#, None, "", &rs),
        pod_meta("default/solo", r#""app":"web""#, None, "", ""),
    ]);
    let all = ["n1", "n2", "n3", "n4"];
    let (raw, norm) = scores(&s, &spread_plugin(), "default/new", &all).unwrap();
    assert_eq!(raw, [13, 9, 9, 2]);
    assert_eq!(norm, [15, 46, 46, 100]);
    // Without the n4 quirk: hostname ln(5) = 1.609, zone ln(4) = 1.386.
    // n1: 3.219 + 2 + 2.773 + 4 = 11.99 → 12; n2: 2 + 6.773 → 9; n3: 3.609 + 5.386 → 9.
    let (raw, norm) = scores(&s, &spread_plugin(), "default/new", &all[..3]).unwrap();
    assert_eq!(raw, [12, 9, 9]);
    assert_eq!(norm, [75, 100, 100]);
    // A pod without a controller gets no default constraints.
    assert!(scores(&s, &spread_plugin(), "default/solo", &all).is_none());
}

#[test]
fn system_defaults_spread_replicas_over_nodes() {
    // Only PodTopologySpread scores: three replicas go to three nodes.
    let cfg = r#"{"profiles":[{"percentageOfNodesToScore":100,"plugins":{"score":{"disabled":[{"name":"*"}],
        "enabled":[{"name":"PodTopologySpread","weight":1}]}}}]}"#;
    let profiles = profiles_from_json(cfg).unwrap();
    let rs = owner("StatefulSet", "db");
    let mut items: Vec<String> = (0..3).map(|i| node(&format!("n{i}"), Some("z"))).collect();
    for i in 0..3 {
        items.push(pod_meta(
            &format!("default/db-{i}"),
            r#""app":"db""#,
            None,
            "",
            &rs,
        ));
    }
    let s = snap(&items);
    for seed in 0..5 {
        let pl = schedule(&s, None, &profiles, Order::Input, seed).unwrap();
        let mut nodes: Vec<u32> = pl.placed.iter().map(|x| x.1).collect();
        nodes.sort();
        assert_eq!(nodes, [0, 1, 2], "seed {seed}");
    }
}

// ---------------------------------------------------------------------------------------------
// Differential test (see `common::reference`)

#[test]
fn random_clusters_agree_with_a_plain_reference() {
    use kube_engine_core::model::spread::TopologySpreadConstraint;
    let system: Vec<TopologySpreadConstraint> = serde_json::from_str(&format!(
        r#"[{{"maxSkew":3,"topologyKey":"{HOST}","whenUnsatisfiable":"ScheduleAnyway"}},
            {{"maxSkew":5,"topologyKey":"{ZONE}","whenUnsatisfiable":"ScheduleAnyway"}}]"#
    ))
    .unwrap();
    let list_args = format!(
        r#"{{"defaultingType":"List","defaultConstraints":[
            {{"maxSkew":1,"topologyKey":"{ZONE}","whenUnsatisfiable":"DoNotSchedule"}},
            {{"maxSkew":2,"topologyKey":"{HOST}","whenUnsatisfiable":"ScheduleAnyway","nodeTaintsPolicy":"Honor"}}]}}"#
    );
    let listed = PodTopologySpread::new(serde_json::from_str(&list_args).unwrap()).unwrap();
    let list: Vec<TopologySpreadConstraint> = serde_json::from_str(&format!(
        r#"[{{"maxSkew":1,"topologyKey":"{ZONE}","whenUnsatisfiable":"DoNotSchedule"}},
            {{"maxSkew":2,"topologyKey":"{HOST}","whenUnsatisfiable":"ScheduleAnyway","nodeTaintsPolicy":"Honor"}}]"#
    ))
    .unwrap();
    let mut checked = 0;
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    for seed in 0..400 {
        let s = random_cluster(seed);
        let all: Vec<String> = s.nodes.name.clone();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        for p in 0..s.pods.len() as u32 {
            if s.current.node[p as usize].is_some() {
                continue;
            }
            let key = s.pod_key(p);
            let ctx = format!("seed {seed}, pod {key}");
            let ok = || vec!["ok".to_string(); all.len()];
            let spread_cases = [(&spread_plugin(), &system, true), (&listed, &list, false)];
            for (plugin, defaults, system_defaulted) in spread_cases {
                let got = verdicts(&s, plugin, &key).unwrap_or_else(ok);
                let want = reference::spread_filter(&s, p, defaults);
                assert_eq!(got, want, "PodTopologySpread filter, {ctx}");
                for v in &got {
                    *seen.entry(v.clone()).or_default() += 1;
                }
                let want = reference::spread_score(&s, p, defaults, system_defaulted);
                let got = scores(&s, plugin, &key, &all).map_or(vec![0; all.len()], |x| x.1);
                assert_eq!(got, want, "PodTopologySpread score, {ctx}");
                if got.iter().any(|&g| g != got[0]) {
                    *seen.entry("spread scores differ".into()).or_default() += 1;
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
    // The random clusters exercise every outcome.
    let outcomes = [
        reference::SPREAD,
        reference::LABEL,
        "ok",
        "spread scores differ",
    ];
    for outcome in outcomes {
        assert!(seen.get(outcome).copied().unwrap_or(0) > 50, "{seen:?}");
    }
}

#[test]
fn pods_being_deleted_are_not_counted() {
    // Upstream's countPodsMatchSelector skips pods with a deletionTimestamp: the docs' cluster
    // with the two zoneA pods terminating counts zoneA 0, zoneB 1, so only zoneA is allowed.
    let deleting = r#","deletionTimestamp":"2025-06-01T12:00:00Z""#;
    let incoming = spread(&[constraint(ZONE, 1, "DoNotSchedule", "foo", "")]);
    let s = snap(&[
        node("node1", Some("zoneA")),
        node("node2", Some("zoneA")),
        node("node3", Some("zoneB")),
        node("node4", Some("zoneB")),
        pod_meta("default/p1", r#""app":"foo""#, Some("node1"), "", deleting),
        pod_meta("default/p2", r#""app":"foo""#, Some("node2"), "", deleting),
        pod("default/p3", r#""app":"foo""#, Some("node3"), ""),
        pod("default/mypod", r#""app":"foo""#, None, &incoming),
    ]);
    assert_eq!(
        verdicts(&s, &spread_plugin(), "default/mypod").unwrap(),
        [OK, OK, SPREAD, SPREAD]
    );
    // The score counts the same pods: with ScheduleAnyway, zoneA (0 pods) scores above zoneB.
    let soft = spread(&[constraint(ZONE, 1, "ScheduleAnyway", "foo", "")]);
    let s = snap(&[
        node("node1", Some("zoneA")),
        node("node3", Some("zoneB")),
        pod_meta("default/p1", r#""app":"foo""#, Some("node1"), "", deleting),
        pod_meta("default/p2", r#""app":"foo""#, Some("node1"), "", deleting),
        pod("default/p3", r#""app":"foo""#, Some("node3"), ""),
        pod("default/mypod", r#""app":"foo""#, None, &soft),
    ]);
    let (_, normalized) =
        scores(&s, &spread_plugin(), "default/mypod", &["node1", "node3"]).unwrap();
    assert!(normalized[0] > normalized[1], "{normalized:?}");
    // A pod being deleted still holds its node's resources (NodeResourcesFit counts it).
    let full = snap(&[
        node("node1", Some("zoneA")),
        pod_meta("default/old", "", Some("node1"), "", deleting),
    ]);
    let node1 = full.nodes.id("node1").unwrap();
    let state = kube_engine_core::schedule::state::ClusterState::new(&full, &full.current);
    assert_eq!(
        state
            .requested
            .get(node1 as usize, kube_engine_core::resources::CPU),
        100
    );
}
