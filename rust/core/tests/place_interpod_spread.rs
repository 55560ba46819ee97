//! InterPodAffinity and PodTopologySpread on small clusters: the Kubernetes documentation's
//! examples, upstream's edge cases (the first pod of a group, symmetry, minDomains, inclusion
//! policies, system defaults) and hand-computed scores.

mod common;
use common::run_with;
use common::{placed_on, reason, run};
use kube_engine_core::place::framework::{Cycle, FilterPlugin, PreFilter, PreScore, ScorePlugin};
use kube_engine_core::place::plugins::inter_pod_affinity::{
    InterPodAffinity, InterPodAffinityArgs,
};
use kube_engine_core::place::plugins::pod_topology_spread::PodTopologySpread;
use kube_engine_core::place::profile::{default_profile, profiles_from_json};
use kube_engine_core::place::state::ClusterState;
use kube_engine_core::place::{schedule, Order};
use kube_engine_core::snapshot::parse_documents;
use kube_engine_core::Snapshot;

const ZONE: &str = "topology.kubernetes.io/zone";
const HOST: &str = "kubernetes.io/hostname";

// ---------------------------------------------------------------------------------------------
// Cluster builders

/// A node with its hostname label and, if given, a zone.
fn node(name: &str, zone: Option<&str>) -> String {
    node_with(name, zone, "")
}

fn node_with(name: &str, zone: Option<&str>, spec: &str) -> String {
    let zone = zone
        .map(|z| format!(r#","{ZONE}":"{z}""#))
        .unwrap_or_default();
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"{HOST}":"{name}"{zone}}}}},
            "spec":{{{spec}}},"status":{{"allocatable":{{"cpu":"16","memory":"64Gi","pods":"110"}}}}}}"#
    )
}

/// A pod `namespace/name` with `labels` (JSON members), bound to `node` if given; `spec` holds
/// spec members, each followed by a comma.
fn pod(key: &str, labels: &str, node: Option<&str>, spec: &str) -> String {
    pod_meta(key, labels, node, spec, "")
}

fn pod_meta(key: &str, labels: &str, node: Option<&str>, spec: &str, meta: &str) -> String {
    let (ns, name) = key.split_once('/').unwrap();
    let node = node
        .map(|n| format!(r#""nodeName":"{n}","#))
        .unwrap_or_default();
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{{labels}}}{meta}}},
            "spec":{{{node}{spec}"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}}}}}}]}}}}"#
    )
}

/// Metadata making `kind/name` the pod's controller.
fn owner(kind: &str, name: &str) -> String {
    format!(
        r#","ownerReferences":[{{"apiVersion":"apps/v1","kind":"{kind}","name":"{name}","uid":"uid-{name}","controller":true}}]"#
    )
}

fn spread(constraints: &[String]) -> String {
    format!(
        r#""topologySpreadConstraints":[{}],"#,
        constraints.join(",")
    )
}

/// A constraint on `key` selecting `app: <app>`; `extra` adds members (with a leading comma).
fn constraint(key: &str, max_skew: i32, when: &str, app: &str, extra: &str) -> String {
    format!(
        r#"{{"maxSkew":{max_skew},"topologyKey":"{key}","whenUnsatisfiable":"{when}",
            "labelSelector":{{"matchLabels":{{"app":"{app}"}}}}{extra}}}"#
    )
}

/// A pod affinity term on `key` selecting `app: <app>`; `extra` adds members.
fn term(key: &str, app: &str, extra: &str) -> String {
    format!(
        r#"{{"topologyKey":"{key}","labelSelector":{{"matchLabels":{{"app":"{app}"}}}}{extra}}}"#
    )
}

fn weighted(weight: i32, term: &str) -> String {
    format!(r#"{{"weight":{weight},"podAffinityTerm":{term}}}"#)
}

/// `"affinity": {...},` from `(kind, required terms, preferred terms)`, kind being `podAffinity`
/// or `podAntiAffinity`.
fn affinity(parts: &[(&str, &[String], &[String])]) -> String {
    let body: Vec<String> = parts
        .iter()
        .map(|(kind, req, pref)| {
            format!(
                r#""{kind}":{{"requiredDuringSchedulingIgnoredDuringExecution":[{}],
                    "preferredDuringSchedulingIgnoredDuringExecution":[{}]}}"#,
                req.join(","),
                pref.join(",")
            )
        })
        .collect();
    format!(r#""affinity":{{{}}},"#, body.join(","))
}

fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Running plugins

fn with_cycle<R>(s: &Snapshot, pod: &str, f: impl FnOnce(&Cycle) -> R) -> R {
    let state = ClusterState::new(s, &s.current);
    let p = s.pods.id(pod).unwrap();
    let cx = Cycle::new(&state, p);
    f(&cx)
}

/// The plugin's verdict on every node, in node order ("ok" or the reason); `None` when PreFilter
/// skips the plugin.
fn verdicts(s: &Snapshot, plugin: &dyn FilterPlugin, pod: &str) -> Option<Vec<String>> {
    with_cycle(s, pod, |cx| {
        let data = match plugin.pre_filter(cx) {
            PreFilter::Run(d) => d,
            PreFilter::Skip => return None,
            PreFilter::Reject(m) => panic!("pre_filter rejected: {m}"),
        };
        let out = (0..s.nodes.len() as u32)
            .map(|n| match plugin.filter(cx, &data, n) {
                Ok(()) => "ok".to_string(),
                Err(code) => {
                    let mut why = Vec::new();
                    plugin.reasons(cx, &data, n, code, &mut why);
                    why.join("; ")
                }
            })
            .collect();
        Some(out)
    })
}

/// Raw and normalised scores of `nodes` (taken as the feasible ones); `None` when PreScore
/// skips the plugin.
fn scores(
    s: &Snapshot,
    plugin: &dyn ScorePlugin,
    pod: &str,
    nodes: &[&str],
) -> Option<(Vec<i64>, Vec<i64>)> {
    with_cycle(s, pod, |cx| {
        let ids: Vec<u32> = nodes.iter().map(|n| s.nodes.id(n).unwrap()).collect();
        let data = match plugin.pre_score(cx, &ids) {
            PreScore::Run(d) => d,
            PreScore::Skip => return None,
        };
        let raw: Vec<i64> = ids.iter().map(|&n| plugin.score(cx, &data, n)).collect();
        let mut normalized = raw.clone();
        plugin.normalize(cx, &data, &mut normalized);
        Some((raw, normalized))
    })
}

const OK: &str = "ok";
const SPREAD: &str = "node(s) didn't match pod topology spread constraints";
const SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const AFFINITY: &str = "node(s) didn't match pod affinity rules";
const ANTI: &str = "node(s) didn't match pod anti-affinity rules";
const EXISTING_ANTI: &str = "node(s) didn't satisfy existing pods anti-affinity rules";

fn spread_plugin() -> PodTopologySpread {
    PodTopologySpread::default()
}

fn ipa() -> InterPodAffinity {
    InterPodAffinity::default()
}

// ---------------------------------------------------------------------------------------------
// PodTopologySpread: filter

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
    };
    assert!(err(r#"{"defaultConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
        .contains("when .defaultConstraints are not empty"));
    assert!(err(r#"{"defaultingType":"List","extra":1}"#).contains("unknown field `extra`"));
    let e = profiles_from_json(
        r#"{"profiles":[{"pluginConfig":[{"name":"InterPodAffinity","args":{"hardPodAffinityWeight":-1}}]}]}"#,
    )
    .err()
    .unwrap();
    assert!(e.contains("not in valid range [0, 100]"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// PodTopologySpread: score

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
// InterPodAffinity: filter

#[test]
fn hostname_anti_affinity_one_replica_per_node() {
    let anti = affinity(&[("podAntiAffinity", &[term(HOST, "store", "")], &[])]);
    let mut items: Vec<String> = (1..=3).map(|i| node(&format!("n{i}"), Some("z"))).collect();
    for i in 0..4 {
        items.push(pod(
            &format!("default/redis-{i}"),
            r#""app":"store""#,
            None,
            &anti,
        ));
    }
    let s = snap(&items);
    let pl = run(&s);
    let mut nodes: Vec<u32> = pl.placed.iter().map(|x| x.1).collect();
    nodes.sort();
    assert_eq!(nodes, [0, 1, 2]);
    assert_eq!(
        reason(&s, &pl, "default/redis-3"),
        format!("0/3 nodes are available: 3 {ANTI}.")
    );
}

#[test]
fn docs_web_servers_next_to_their_caches() {
    // The docs' example: redis replicas avoid each other; web servers avoid each other and want a
    // redis on the same node.
    let cache = affinity(&[("podAntiAffinity", &[term(HOST, "store", "")], &[])]);
    let web = affinity(&[
        ("podAntiAffinity", &[term(HOST, "web-store", "")], &[]),
        ("podAffinity", &[term(HOST, "store", "")], &[]),
    ]);
    let mut items: Vec<String> = (1..=3).map(|i| node(&format!("n{i}"), Some("z"))).collect();
    for i in 0..3 {
        items.push(pod(
            &format!("default/cache-{i}"),
            r#""app":"store""#,
            None,
            &cache,
        ));
    }
    for i in 0..3 {
        items.push(pod(
            &format!("default/web-{i}"),
            r#""app":"web-store""#,
            None,
            &web,
        ));
    }
    // A fourth web server has no node left.
    items.push(pod("default/web-3", r#""app":"web-store""#, None, &web));
    let s = snap(&items);
    let pl = run(&s);
    let mut per_node = [(0, 0); 3];
    for &(p, n, _) in &pl.placed {
        let name = &s.pods.name[p as usize];
        if name.starts_with("cache") {
            per_node[n as usize].0 += 1;
        } else {
            per_node[n as usize].1 += 1;
        }
    }
    assert_eq!(per_node, [(1, 1); 3]);
    assert_eq!(
        reason(&s, &pl, "default/web-3"),
        format!("0/3 nodes are available: 3 {ANTI}.")
    );
}

#[test]
fn zone_anti_affinity_keeps_the_whole_zone_away() {
    let s = snap(&[
        node("a1", Some("a")),
        node("a2", Some("a")),
        node("b1", Some("b")),
        pod("default/db", r#""app":"db""#, Some("a1"), ""),
        pod(
            "default/p",
            r#""app":"api""#,
            None,
            &affinity(&[("podAntiAffinity", &[term(ZONE, "db", "")], &[])]),
        ),
    ]);
    assert_eq!(verdicts(&s, &ipa(), "default/p").unwrap(), [ANTI, ANTI, OK]);
    assert_eq!(placed_on(&s, &run(&s), "default/p").as_deref(), Some("b1"));
}

#[test]
fn zone_affinity_follows_the_matching_pods() {
    let s = snap(&[
        node("a1", Some("a")),
        node("b1", Some("b")),
        node("b2", Some("b")),
        node("bare", None),
        pod("default/db", r#""app":"db""#, Some("b1"), ""),
        pod(
            "default/p",
            r#""app":"api""#,
            None,
            &affinity(&[("podAffinity", &[term(ZONE, "db", "")], &[])]),
        ),
    ]);
    assert_eq!(
        verdicts(&s, &ipa(), "default/p").unwrap(),
        [AFFINITY, OK, OK, AFFINITY]
    );
}

#[test]
fn the_first_pod_of_a_group_may_go_anywhere_with_the_key() {
    let own = affinity(&[("podAffinity", &[term(ZONE, "cache", "")], &[])]);
    let s = snap(&[
        node("a1", Some("a")),
        node("b1", Some("b")),
        node("bare", None),
        pod("default/cache-0", r#""app":"cache""#, None, &own),
        pod("default/cache-1", r#""app":"cache""#, None, &own),
        pod("default/cache-2", r#""app":"cache""#, None, &own),
        // Wants a db nearby but is no db itself: no exception.
        pod(
            "default/lonely",
            r#""app":"api""#,
            None,
            &affinity(&[("podAffinity", &[term(ZONE, "db", "")], &[])]),
        ),
    ]);
    assert_eq!(
        verdicts(&s, &ipa(), "default/cache-0").unwrap(),
        [OK, OK, AFFINITY]
    );
    assert_eq!(
        verdicts(&s, &ipa(), "default/lonely").unwrap(),
        [AFFINITY, AFFINITY, AFFINITY]
    );
    let pl = run(&s);
    // Once the first is placed, the others follow it into its zone.
    let zones: std::collections::BTreeSet<String> = ["cache-0", "cache-1", "cache-2"]
        .iter()
        .map(|n| placed_on(&s, &pl, &format!("default/{n}")).unwrap())
        .map(|node| node.chars().next().unwrap().to_string())
        .collect();
    assert_eq!(zones.len(), 1, "{zones:?}");
    assert_eq!(
        reason(&s, &pl, "default/lonely"),
        format!("0/3 nodes are available: 3 {AFFINITY}.")
    );
}

#[test]
fn affinity_counts_only_pods_matching_every_term() {
    // Two terms: app=web in the zone and tier=fe on the host. The pod on a1 matches only the
    // first; no placed pod matches both, and the incoming pod matches both itself, so it is
    // the first of its group.
    let both = affinity(&[(
        "podAffinity",
        &[
            term(ZONE, "web", ""),
            format!(
                r#"{{"topologyKey":"{HOST}","labelSelector":{{"matchLabels":{{"tier":"fe"}}}}}}"#
            ),
        ],
        &[],
    )]);
    let s = snap(&[
        node("a1", Some("a")),
        node("b1", Some("b")),
        pod("default/half", r#""app":"web""#, Some("a1"), ""),
        pod("default/p", r#""app":"web","tier":"fe""#, None, &both),
        pod("default/q", r#""app":"web""#, None, &both),
    ]);
    assert_eq!(verdicts(&s, &ipa(), "default/p").unwrap(), [OK, OK]);
    // q does not match its own second term: nowhere.
    assert_eq!(
        verdicts(&s, &ipa(), "default/q").unwrap(),
        [AFFINITY, AFFINITY]
    );
}

#[test]
fn symmetry_existing_anti_affinity_forbids_its_domain() {
    let guard = affinity(&[("podAntiAffinity", &[term(ZONE, "web", "")], &[])]);
    let s = snap(&[
        node("a1", Some("a")),
        node("a2", Some("a")),
        node("b1", Some("b")),
        pod("default/guard", r#""app":"guard""#, Some("a1"), &guard),
        pod("default/web", r#""app":"web""#, None, ""),
        pod("default/other", r#""app":"other""#, None, ""),
    ]);
    assert_eq!(
        verdicts(&s, &ipa(), "default/web").unwrap(),
        [EXISTING_ANTI, EXISTING_ANTI, OK]
    );
    // Not selected by the guard, no terms of its own: the plugin has nothing to check.
    assert!(verdicts(&s, &ipa(), "default/other").is_none());
    assert_eq!(
        placed_on(&s, &run(&s), "default/web").as_deref(),
        Some("b1")
    );

    // All nodes in the guarded zone: the FitError names the symmetric rule.
    let s = snap(&[
        node("a1", Some("a")),
        node("a2", Some("a")),
        pod("default/guard", r#""app":"guard""#, Some("a1"), &guard),
        pod("default/web", r#""app":"web""#, None, ""),
    ]);
    assert_eq!(
        reason(&s, &run(&s), "default/web"),
        format!("0/2 nodes are available: 2 {EXISTING_ANTI}.")
    );
}

#[test]
fn namespaces_and_namespace_selectors() {
    let cluster = |extra: &str| {
        snap(&[
            node("n1", Some("z")),
            node("n2", Some("z")),
            pod("other/db", r#""app":"db""#, Some("n1"), ""),
            pod(
                "default/p",
                r#""app":"api""#,
                None,
                &affinity(&[("podAntiAffinity", &[term(HOST, "db", extra)], &[])]),
            ),
        ])
    };
    // Default: the pod's own namespace only.
    assert_eq!(
        verdicts(&cluster(""), &ipa(), "default/p").unwrap(),
        [OK, OK]
    );
    let cases = [
        (r#","namespaces":["other"]"#, [ANTI, OK]),
        (r#","namespaceSelector":{}"#, [ANTI, OK]),
        // No Namespace objects: a non-empty selector selects none beyond `namespaces`.
        (
            r#","namespaceSelector":{"matchLabels":{"team":"data"}}"#,
            [OK, OK],
        ),
        (
            r#","namespaces":["other"],"namespaceSelector":{"matchLabels":{"team":"data"}}"#,
            [ANTI, OK],
        ),
    ];
    for (extra, want) in cases {
        let s = cluster(extra);
        assert_eq!(verdicts(&s, &ipa(), "default/p").unwrap(), want, "{extra}");
    }
    // Symmetry uses the placed pod's namespace as the default.
    let s = snap(&[
        node("n1", Some("z")),
        node("n2", Some("z")),
        pod(
            "other/guard",
            r#""app":"guard""#,
            Some("n1"),
            &affinity(&[("podAntiAffinity", &[term(HOST, "web", "")], &[])]),
        ),
        pod("default/web", r#""app":"web""#, None, ""),
        pod("other/web", r#""app":"web""#, None, ""),
    ]);
    assert!(verdicts(&s, &ipa(), "default/web").is_none());
    assert_eq!(
        verdicts(&s, &ipa(), "other/web").unwrap(),
        [EXISTING_ANTI, OK]
    );
}

#[test]
fn match_and_mismatch_label_keys() {
    let cluster = |spec: String| {
        snap(&[
            node("n1", Some("z")),
            node("n2", Some("z")),
            pod(
                "default/v1",
                r#""app":"web","version":"v1""#,
                Some("n1"),
                "",
            ),
            pod(
                "default/v2",
                r#""app":"web","version":"v2""#,
                Some("n2"),
                "",
            ),
            pod("default/p", r#""app":"web","version":"v2""#, None, &spec),
        ])
    };
    // Anti-affinity to web pods of the same version only: v1's node is fine.
    let s = cluster(affinity(&[(
        "podAntiAffinity",
        &[term(HOST, "web", r#","matchLabelKeys":["version"]"#)],
        &[],
    )]));
    assert_eq!(verdicts(&s, &ipa(), "default/p").unwrap(), [OK, ANTI]);
    // Affinity to web pods of another version: only v1's node.
    let s = cluster(affinity(&[(
        "podAffinity",
        &[term(HOST, "web", r#","mismatchLabelKeys":["version"]"#)],
        &[],
    )]));
    assert_eq!(verdicts(&s, &ipa(), "default/p").unwrap(), [OK, AFFINITY]);
    // Symmetry with matchLabelKeys: v1's guard only repels v1 pods.
    let s = snap(&[
        node("n1", Some("z")),
        node("n2", Some("z")),
        pod(
            "default/guard",
            r#""app":"web","version":"v1""#,
            Some("n1"),
            &affinity(&[(
                "podAntiAffinity",
                &[term(HOST, "web", r#","matchLabelKeys":["version"]"#)],
                &[],
            )]),
        ),
        pod("default/p1", r#""app":"web","version":"v1""#, None, ""),
        pod("default/p2", r#""app":"web","version":"v2""#, None, ""),
    ]);
    assert_eq!(
        verdicts(&s, &ipa(), "default/p1").unwrap(),
        [EXISTING_ANTI, OK]
    );
    assert!(verdicts(&s, &ipa(), "default/p2").is_none());
}

#[test]
fn terminal_pods_do_not_count() {
    let done = r#"{"kind":"Pod","metadata":{"name":"done","namespace":"default","labels":{"app":"db"}},
        "spec":{"nodeName":"n1","containers":[{"name":"c"}]},"status":{"phase":"Succeeded"}}"#;
    let s = snap(&[
        node("n1", Some("z")),
        node("n2", Some("z")),
        done.to_string(),
        pod(
            "default/p",
            r#""app":"api""#,
            None,
            &affinity(&[("podAntiAffinity", &[term(HOST, "db", "")], &[])]),
        ),
    ]);
    assert_eq!(verdicts(&s, &ipa(), "default/p").unwrap(), [OK, OK]);
}

// ---------------------------------------------------------------------------------------------
// InterPodAffinity: score

/// n1, n2 in zone A, n3, n4 in zone B. On n1 a db; on n3 a web pod and a "fan" that prefers
/// (weight 7, zone) and requires (hostname) pods labelled `app: api` near it.
fn score_cluster(incoming_spec: &str) -> Snapshot {
    let fan = affinity(&[(
        "podAffinity",
        &[term(HOST, "api", "")],
        &[weighted(7, &term(ZONE, "api", ""))],
    )]);
    snap(&[
        node("n1", Some("A")),
        node("n2", Some("A")),
        node("n3", Some("B")),
        node("n4", Some("B")),
        pod("default/db", r#""app":"db""#, Some("n1"), ""),
        pod("default/web", r#""app":"web""#, Some("n3"), ""),
        pod("default/fan", r#""app":"fan""#, Some("n3"), &fan),
        pod("default/p", r#""app":"api""#, None, incoming_spec),
        pod("default/other", r#""app":"other""#, None, ""),
    ])
}

const ALL4: [&str; 4] = ["n1", "n2", "n3", "n4"];

#[test]
fn preferred_terms_and_symmetry_hand_computed() {
    // The pod prefers a db in its zone (+10) and no web pod on its node (−5).
    // Zone A: +10 (db). Zone B: +7 (fan's preferred term selects the pod).
    // Host n3: −5 (web) + 1 (fan's required term, hardPodAffinityWeight 1).
    // n1 = 10, n2 = 10, n3 = 7 − 4 = 3, n4 = 7; min–max: 100, 100, 0, 100 × 4/7 = 57.
    let spec = affinity(&[
        ("podAffinity", &[], &[weighted(10, &term(ZONE, "db", ""))]),
        (
            "podAntiAffinity",
            &[],
            &[weighted(5, &term(HOST, "web", ""))],
        ),
    ]);
    let s = score_cluster(&spec);
    let (raw, norm) = scores(&s, &ipa(), "default/p", &ALL4).unwrap();
    assert_eq!(raw, [10, 10, 3, 7]);
    assert_eq!(norm, [100, 100, 0, 57]);

    // hardPodAffinityWeight 0: n3 = 2; 100 × 5/8 = 62 for n4.
    let zero = InterPodAffinity::new(InterPodAffinityArgs {
        hard_pod_affinity_weight: 0,
        ..Default::default()
    })
    .unwrap();
    let (raw, norm) = scores(&s, &zero, "default/p", &ALL4).unwrap();
    assert_eq!(raw, [10, 10, 2, 7]);
    assert_eq!(norm, [100, 100, 0, 62]);

    // Only the feasible nodes are normalised.
    let (raw, norm) = scores(&s, &ipa(), "default/p", &["n3", "n4"]).unwrap();
    assert_eq!(raw, [3, 7]);
    assert_eq!(norm, [0, 100]);
}

#[test]
fn existing_pods_preferences_score_a_pod_without_terms() {
    // Only the fan speaks: zone B +7, host n3 +1 → 0, 0, 8, 7 → 0, 0, 100, 87.
    let s = score_cluster("");
    let (raw, norm) = scores(&s, &ipa(), "default/p", &ALL4).unwrap();
    assert_eq!(raw, [0, 0, 8, 7]);
    assert_eq!(norm, [0, 0, 100, 87]);
    // ignorePreferredTermsOfExistingPods: a pod without preferred terms is not scored.
    let ignoring = InterPodAffinity::new(InterPodAffinityArgs {
        ignore_preferred_terms_of_existing_pods: true,
        ..Default::default()
    })
    .unwrap();
    assert!(scores(&s, &ignoring, "default/p", &ALL4).is_none());
    // Nobody's terms concern a pod labelled `app: other`.
    assert!(scores(&s, &ipa(), "default/other", &ALL4).is_none());
    // The default profile then steers the pod next to the fan (InterPodAffinity weighs 2).
    assert_eq!(placed_on(&s, &run(&s), "default/p").as_deref(), Some("n3"));
}

#[test]
fn preferred_anti_affinity_of_existing_pods_repels() {
    let loner = affinity(&[(
        "podAntiAffinity",
        &[],
        &[weighted(40, &term(ZONE, "api", ""))],
    )]);
    let s = snap(&[
        node("n1", Some("A")),
        node("n2", Some("B")),
        pod("default/loner", r#""app":"loner""#, Some("n1"), &loner),
        pod("default/p", r#""app":"api""#, None, ""),
    ]);
    let (raw, norm) = scores(&s, &ipa(), "default/p", &["n1", "n2"]).unwrap();
    assert_eq!(raw, [-40, 0]);
    assert_eq!(norm, [0, 100]);
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

// ---------------------------------------------------------------------------------------------
// Differential test: the plugins read a per-snapshot index and per-cycle memos; a plain reference
// written from the same upstream rules, scanning every placed pod with the string-level model
// types, must agree with them on random clusters.

mod reference {
    use std::collections::{BTreeMap, BTreeSet};

    use kube_engine_core::model::affinity::PodAffinityTerm;
    use kube_engine_core::model::selector::{LabelSelector, LabelSet};
    use kube_engine_core::model::spread::{
        InclusionPolicy, TopologySpreadConstraint, WhenUnsatisfiable,
    };
    use kube_engine_core::Snapshot;

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
                    let here = placed.iter().any(|&(q, n)| {
                        matches_all(q) && node_value(s, n, &t.topology_key) == Some(v)
                    });
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
            && (cs[c].node_affinity_policy == InclusionPolicy::Ignore
                || s.node_affinity_admits(p, n))
            && (cs[c].node_taints_policy == InclusionPolicy::Ignore
                || s.untolerated_taint(p, n).is_none())
    }

    pub fn spread_filter(
        s: &Snapshot,
        p: u32,
        defaults: &[TopologySpreadConstraint],
    ) -> Vec<String> {
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
}

/// A random small cluster: zones, racks and hostnames missing here and there, a taint, pods in
/// two namespaces with controllers, affinity terms and spread constraints of every shape.
fn random_cluster(seed: u64) -> Snapshot {
    snap(&random_cluster_items(seed))
}

fn random_cluster_items(seed: u64) -> Vec<String> {
    use kube_engine_core::place::framework::Rng;
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
    let hard0 = InterPodAffinity::new(InterPodAffinityArgs {
        hard_pod_affinity_weight: 0,
        ..Default::default()
    })
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
            let got = verdicts(&s, &ipa(), &key).unwrap_or_else(ok);
            assert_eq!(
                got,
                reference::ipa_filter(&s, p),
                "InterPodAffinity filter, {ctx}"
            );
            for v in &got {
                *seen.entry(v.clone()).or_default() += 1;
            }
            for (plugin, hard) in [(&ipa(), 1), (&hard0, 0)] {
                let want = reference::ipa_score(&s, p, hard);
                if want.iter().any(|&w| w != want[0]) {
                    *seen.entry("affinity scores differ".into()).or_default() += 1;
                }
                match scores(&s, plugin, &key, &all) {
                    Some((raw, _)) => assert_eq!(raw, want, "InterPodAffinity score, {ctx}"),
                    None => assert!(
                        want.iter().all(|&w| w == want[0]),
                        "InterPodAffinity skipped but scores differ, {ctx}: {want:?}"
                    ),
                }
            }
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
        reference::AFF,
        reference::ANTI,
        reference::EXISTING,
        reference::SPREAD,
        reference::LABEL,
        "ok",
        "affinity scores differ",
        "spread scores differ",
    ];
    for outcome in outcomes {
        assert!(seen.get(outcome).copied().unwrap_or(0) > 50, "{seen:?}");
    }
}
