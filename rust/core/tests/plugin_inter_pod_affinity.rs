//! InterPodAffinity on small clusters: the Kubernetes documentation's examples, upstream's edge
//! cases (the first pod of a group, symmetry, namespaces, label keys), hand-computed scores, and
//! agreement with a plain reference on random clusters.

mod common;
use common::reference::{self, random_cluster};
use common::topology::{affinity, node, pod, term, weighted, HOST, ZONE};
use common::{placed_on, reason, run, scores, snap, verdicts, OK};
use kube_engine_core::schedule::plugins::inter_pod_affinity::{
    InterPodAffinity, InterPodAffinityArgs,
};
use kube_engine_core::schedule::profile::profiles_from_json;
use kube_engine_core::{Error, Snapshot};

const AFFINITY: &str = "node(s) didn't match pod affinity rules";
const ANTI: &str = "node(s) didn't match pod anti-affinity rules";
const EXISTING_ANTI: &str = "node(s) didn't satisfy existing pods anti-affinity rules";

fn ipa() -> InterPodAffinity {
    InterPodAffinity::default()
}

// ---------------------------------------------------------------------------------------------
// Filter

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

#[test]
fn args_errors_surface_through_the_configuration() {
    let e = profiles_from_json(
        r#"{"profiles":[{"pluginConfig":[{"name":"InterPodAffinity","args":{"hardPodAffinityWeight":-1}}]}]}"#,
    )
    .err()
    .unwrap();
    let Error::Config(config) = &e else {
        panic!("not a configuration error: {e:?}")
    };
    assert_eq!(config.plugin.as_deref(), Some("InterPodAffinity"));
    assert_eq!(
        config.path,
        "profile \"default-scheduler\": pluginConfig InterPodAffinity: hardPodAffinityWeight"
    );
    assert!(e.to_string().contains("not in valid range [0, 100]"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Score

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

// ---------------------------------------------------------------------------------------------
// Differential test (see `common::reference`)

#[test]
fn random_clusters_agree_with_a_plain_reference() {
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
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
    // The random clusters exercise every outcome.
    let outcomes = [
        reference::AFF,
        reference::ANTI,
        reference::EXISTING,
        "ok",
        "affinity scores differ",
    ];
    for outcome in outcomes {
        assert!(seen.get(outcome).copied().unwrap_or(0) > 50, "{seen:?}");
    }
}
