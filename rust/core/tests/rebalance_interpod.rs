//! The inter-pod rules a rebalance problem exports: who carries each, whom it counts, the
//! pinned pods per domain, and the domains (eligibility included).

use kube_engine_core::rebalance::{problem, PinOptions, Problem, Rule, RuleKind};
use kube_engine_core::schedule::profile::default_profile;
use kube_engine_core::snapshot::parse_documents;
use kube_engine_core::Snapshot;

fn node(name: &str, zone: Option<&str>, spec: &str) -> String {
    let zone = zone.map_or(String::new(), |z| {
        format!(r#","topology.kubernetes.io/zone":"{z}""#)
    });
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"{zone}}}}},
            "spec":{{{spec}}},"status":{{"allocatable":{{"cpu":"8","memory":"16Gi","pods":"110"}}}}}}"#
    )
}

/// A running pod of ReplicaSet `app` labelled `app=<app>` on `node`; `meta` and `spec` add
/// fields (with trailing commas); a container asking for 1 cpu unless `spec` has containers.
fn pod(name: &str, app: &str, node: &str, meta: &str, spec: &str) -> String {
    let containers = if spec.contains("\"containers\"") {
        ""
    } else {
        r#""containers":[{"name":"c","resources":{"requests":{"cpu":"1"}}}]"#
    };
    let spec = format!("{spec}{containers}")
        .trim_end_matches(',')
        .to_string();
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default","labels":{{"app":"{app}"}},{meta}
              "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"{app}","uid":"u-{app}","controller":true}}]}},
            "spec":{{"nodeName":"{node}",{spec}}},
            "status":{{"phase":"Running"}}}}"#
    )
}

const PINNED: &str = r#""annotations":{"kube-engine.io/evict":"false"},"#;

fn term(kind: &str, app: &str, key: &str) -> String {
    format!(
        r#""affinity":{{"{kind}":{{"requiredDuringSchedulingIgnoredDuringExecution":[
            {{"labelSelector":{{"matchLabels":{{"app":"{app}"}}}},"topologyKey":"{key}"}}]}}}},"#
    )
}

fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

fn solve(s: &Snapshot) -> Problem {
    problem(s, &default_profile(), &PinOptions::default())
}

/// The class holding pod `name`.
fn class(s: &Snapshot, pr: &Problem, name: &str) -> u32 {
    let p = s.pods.name.iter().position(|n| n == name).unwrap() as u32;
    pr.classes.iter().position(|c| c.pods.contains(&p)).unwrap() as u32
}

fn rules(pr: &Problem, kind: RuleKind) -> Vec<&Rule> {
    pr.inter_pod
        .rules
        .iter()
        .filter(|r| r.kind == kind)
        .collect()
}

#[test]
fn anti_affinity_of_movable_and_pinned_pods() {
    let zone = "topology.kubernetes.io/zone";
    let s = snap(&[
        node("a", Some("z1"), ""),
        node("b", Some("z1"), ""),
        node("c", Some("z2"), ""),
        node("d", None, ""),
        pod("db-1", "db", "a", "", &term("podAntiAffinity", "db", zone)),
        pod("db-2", "db", "c", "", &term("podAntiAffinity", "db", zone)),
        pod("web-1", "web", "b", "", ""),
        // Pinned, keeps web pods out of its zone; and counted by nothing movable otherwise.
        pod(
            "guard",
            "guard",
            "c",
            PINNED,
            &term("podAntiAffinity", "web", zone),
        ),
        pod("db-old", "db", "b", PINNED, ""),
    ]);
    let pr = solve(&s);
    let (db, web) = (class(&s, &pr, "db-1"), class(&s, &pr, "web-1"));
    assert!(pr.classes[db as usize].interacts && !pr.classes[web as usize].interacts);
    // Anti-affinity leaves the candidates to the model: every node, the one without a zone too.
    assert_eq!(pr.classes[db as usize].candidates, vec![0, 1, 2, 3]);
    let anti = rules(&pr, RuleKind::AntiAffinity);
    assert_eq!(anti.len(), 2);
    let mine = anti.iter().find(|r| r.owners == vec![db]).unwrap();
    assert!(mine.counts_itself);
    assert_eq!(mine.counted, vec![db]);
    // The pinned db pod on b (zone z1, domain 0) counts, in no owner's count.
    assert_eq!(mine.fixed_counted, vec![(0, 1)]);
    assert!(mine.fixed_owners.is_empty());
    let domains = &pr.inter_pod.domains[mine.domains];
    assert_eq!(
        (domains.domain.clone(), domains.count),
        (vec![0, 0, 1, -1], 2)
    );
    let guard = anti.iter().find(|r| r.owners.is_empty()).unwrap();
    assert_eq!(guard.counted, vec![web]);
    assert_eq!(guard.fixed_owners, vec![(1, 1)]);
    assert!(!guard.counts_itself);
}

#[test]
fn affinity_requires_its_key_and_knows_whether_it_counts_itself() {
    let zone = "topology.kubernetes.io/zone";
    let s = snap(&[
        node("a", Some("z1"), ""),
        node("b", None, ""),
        pod("cache", "cache", "a", PINNED, ""),
        pod("web-1", "web", "a", "", &term("podAffinity", "cache", zone)),
        pod(
            "peer-1",
            "peer",
            "a",
            "",
            &term("podAffinity", "peer", zone),
        ),
    ]);
    let pr = solve(&s);
    let (web, peer) = (class(&s, &pr, "web-1"), class(&s, &pr, "peer-1"));
    // b has no zone: the affinity filter's key check stays in the candidates.
    assert_eq!(pr.classes[web as usize].candidates, vec![0]);
    let aff = rules(&pr, RuleKind::Affinity);
    let follow = aff.iter().find(|r| r.owners == vec![web]).unwrap();
    assert_eq!(
        (follow.counted.clone(), follow.fixed_counted.clone()),
        (vec![], vec![(0, 1)])
    );
    assert!(!follow.counts_itself);
    let group = aff.iter().find(|r| r.owners == vec![peer]).unwrap();
    assert_eq!(group.counted, vec![peer]);
    assert!(group.counts_itself);
}

#[test]
fn spread_domains_are_the_eligible_ones() {
    let spread = r#""topologySpreadConstraints":[{"maxSkew":2,"minDomains":3,
        "topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule",
        "nodeTaintsPolicy":"Honor","labelSelector":{"matchLabels":{"app":"sp"}}}],"#;
    let taint = r#""taints":[{"key":"x","value":"y","effect":"NoSchedule"}]"#;
    let s = snap(&[
        node("a", Some("z1"), ""),
        node("b", Some("z2"), ""),
        node("t", Some("z3"), taint),
        node("n", None, ""),
        pod("sp-1", "sp", "a", "", spread),
        pod("sp-2", "sp", "b", "", spread),
        pod("sp-0", "sp", "a", PINNED, ""),
    ]);
    let pr = solve(&s);
    let sp = class(&s, &pr, "sp-1");
    let (rule,) = match &rules(&pr, RuleKind::Spread)[..] {
        [r] => (*r,),
        other => panic!("{other:?}"),
    };
    assert_eq!((rule.max_skew, rule.min_domains), (2, 3));
    assert_eq!(rule.owners, vec![sp]);
    assert_eq!(rule.counted, vec![sp]);
    // The pinned pod counts though it carries no constraint.
    assert_eq!(rule.fixed_counted, vec![(0, 1)]);
    // The tainted node is not eligible (nodeTaintsPolicy Honor), the one without a zone neither.
    let domains = &pr.inter_pod.domains[rule.domains];
    assert_eq!(
        (domains.domain.clone(), domains.count),
        (vec![0, 1, -1, -1], 2)
    );
    // Without the zone key a node is no candidate.
    assert_eq!(pr.classes[sp as usize].candidates, vec![0, 1]);
}

#[test]
fn host_ports_clash_by_address() {
    let port = |ip: &str| {
        format!(
            r#""containers":[{{"name":"c","ports":[{{"containerPort":80,"hostPort":8080{ip}}}],
                "resources":{{"requests":{{"cpu":"1"}}}}}}],"#
        )
    };
    let with_port = |name: &str, app: &str, node: &str, meta: &str, ip: &str| {
        pod(name, app, node, meta, &port(ip))
    };
    let s = snap(&[
        node("a", None, ""),
        node("b", None, ""),
        with_port("any-1", "any", "a", "", ""),
        with_port("one-1", "one", "b", "", r#","hostIP":"10.0.0.1""#),
        with_port("two-1", "two", "b", PINNED, r#","hostIP":"10.0.0.2""#),
    ]);
    let pr = solve(&s);
    let (any, one) = (class(&s, &pr, "any-1"), class(&s, &pr, "one-1"));
    let ports = rules(&pr, RuleKind::HostPort);
    let on = |ip: &str| {
        *ports
            .iter()
            .find(|r| r.name.ends_with(ip))
            .unwrap_or_else(|| panic!("{ip}: {ports:?}"))
    };
    // Every address clashes with the all-address user; two addresses do not clash.
    assert_eq!(on("0.0.0.0").counted, vec![any]);
    assert_eq!(on("10.0.0.1").counted, vec![any, one]);
    let two = on("10.0.0.2");
    assert_eq!(
        (two.counted.clone(), two.fixed_counted.clone()),
        (vec![any], vec![(1, 1)])
    );
    assert_eq!(two.fixed_owners, vec![(1, 1)]);
    assert!(ports.iter().all(|r| r.counts_itself));
    assert_eq!(pr.inter_pod.domains[two.domains].domain, vec![0, 1]);
}
