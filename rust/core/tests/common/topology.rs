//! Nodes in zones and labelled pods with controllers, spread constraints and affinity terms: the
//! clusters of the inter-pod tests.

pub const ZONE: &str = "topology.kubernetes.io/zone";
pub const HOST: &str = "kubernetes.io/hostname";

/// A node with its hostname label and, if given, a zone.
pub fn node(name: &str, zone: Option<&str>) -> String {
    node_with(name, zone, "")
}

pub fn node_with(name: &str, zone: Option<&str>, spec: &str) -> String {
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
pub fn pod(key: &str, labels: &str, node: Option<&str>, spec: &str) -> String {
    pod_meta(key, labels, node, spec, "")
}

pub fn pod_meta(key: &str, labels: &str, node: Option<&str>, spec: &str, meta: &str) -> String {
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
pub fn owner(kind: &str, name: &str) -> String {
    format!(
        r#","ownerReferences":[{{"apiVersion":"apps/v1","kind":"{kind}","name":"{name}","uid":"uid-{name}","controller":true}}]"#
    )
}

pub fn spread(constraints: &[String]) -> String {
    format!(
        r#""topologySpreadConstraints":[{}],"#,
        constraints.join(",")
    )
}

/// A constraint on `key` selecting `app: <app>`; `extra` adds members (with a leading comma).
pub fn constraint(key: &str, max_skew: i32, when: &str, app: &str, extra: &str) -> String {
    format!(
        r#"{{"maxSkew":{max_skew},"topologyKey":"{key}","whenUnsatisfiable":"{when}",
            "labelSelector":{{"matchLabels":{{"app":"{app}"}}}}{extra}}}"#
    )
}

/// A pod affinity term on `key` selecting `app: <app>`; `extra` adds members.
pub fn term(key: &str, app: &str, extra: &str) -> String {
    format!(
        r#"{{"topologyKey":"{key}","labelSelector":{{"matchLabels":{{"app":"{app}"}}}}{extra}}}"#
    )
}

pub fn weighted(weight: i32, term: &str) -> String {
    format!(r#"{{"weight":{weight},"podAffinityTerm":{term}}}"#)
}

/// `"affinity": {...},` from `(kind, required terms, preferred terms)`, kind being `podAffinity`
/// or `podAntiAffinity`.
pub fn affinity(parts: &[(&str, &[String], &[String])]) -> String {
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
