//! Volumes: a pod goes only where its PersistentVolumes can be reached (VolumeBinding,
//! VolumeZone), in schedules and plans alike; without volume objects, pods with claims stay.

use kube_engine_core::plan::{plan, PlanOptions, Target, Why};
use kube_engine_core::rebalance::Pin;
use kube_engine_core::schedule::profile::default_profile;
use kube_engine_core::schedule::{schedule, Order};
use kube_engine_core::snapshot::parse_documents;
use kube_engine_core::Snapshot;

fn node(name: &str, zone: &str) -> String {
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}","topology.kubernetes.io/zone":"{zone}"}}}},
            "status":{{"allocatable":{{"cpu":"8","memory":"64Gi","pods":"110"}}}}}}"#
    )
}

/// A StatefulSet pod using claim `claim` (none: no volume), bound to `node` (empty: pending).
fn pod(name: &str, node: &str, claim: &str) -> String {
    let bound = if node.is_empty() {
        String::new()
    } else {
        format!(r#""nodeName":"{node}","#)
    };
    let volumes = if claim.is_empty() {
        String::new()
    } else {
        format!(
            r#""volumes":[{{"name":"data","persistentVolumeClaim":{{"claimName":"{claim}"}}}}],"#
        )
    };
    let phase = if node.is_empty() {
        "Pending"
    } else {
        "Running"
    };
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"db","uid":"u-{name}",
            "ownerReferences":[{{"apiVersion":"apps/v1","kind":"StatefulSet","name":"db","uid":"db","controller":true}}]}},
            "spec":{{{bound}{volumes}"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"1"}}}}}}]}},
            "status":{{"phase":"{phase}"}}}}"#
    )
}

fn claim(name: &str, volume: &str, class: &str) -> String {
    format!(
        r#"{{"kind":"PersistentVolumeClaim","metadata":{{"name":"{name}","namespace":"db"}},
            "spec":{{"volumeName":"{volume}","storageClassName":"{class}"}}}}"#
    )
}

/// A zonal disk: node affinity on the zone (as CSI drivers write it).
fn zonal(name: &str, zone: &str) -> String {
    format!(
        r#"{{"kind":"PersistentVolume","metadata":{{"name":"{name}"}},
            "spec":{{"nodeAffinity":{{"required":{{"nodeSelectorTerms":[{{"matchExpressions":[
              {{"key":"topology.kubernetes.io/zone","operator":"In","values":["{zone}"]}}]}}]}}}}}}}}"#
    )
}

/// An in-tree disk: zone labels on the volume (VolumeZone).
fn labelled(name: &str, zone: &str) -> String {
    format!(
        r#"{{"kind":"PersistentVolume","metadata":{{"name":"{name}","labels":{{"topology.kubernetes.io/zone":"{zone}"}}}}}}"#
    )
}

fn late_binding(name: &str, zone: &str) -> String {
    format!(
        r#"{{"kind":"StorageClass","apiVersion":"storage.k8s.io/v1","metadata":{{"name":"{name}"}},
            "volumeBindingMode":"WaitForFirstConsumer",
            "allowedTopologies":[{{"matchLabelExpressions":[{{"key":"topology.kubernetes.io/zone","values":["{zone}"]}}]}}]}}"#
    )
}

fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

fn kept(s: &Snapshot, moves: &[(&str, &str)]) -> Vec<(String, Why)> {
    let targets: Vec<Target> = moves
        .iter()
        .map(|(p, n)| Target {
            pod: s.pods.id(&format!("db/{p}")).unwrap(),
            to: s.nodes.id(n).unwrap(),
            devices: None,
        })
        .collect();
    let p = plan(s, &targets, &default_profile(), &PlanOptions::default()).unwrap();
    p.kept
        .iter()
        .map(|k| (s.pods.name[k.pod as usize].clone(), k.why.clone()))
        .collect()
}

fn no_room(reasons: &str) -> Why {
    Why::NoRoom {
        reasons: reasons.into(),
        cycle: false,
    }
}

#[test]
fn a_pod_moves_only_where_its_volumes_are() {
    let s = snap(&[
        node("a1", "a"),
        node("a2", "a"),
        node("b1", "b"),
        pod("zonal", "a1", "data-zonal"),
        pod("labelled", "a1", "data-labelled"),
        pod("missing", "a1", "data-missing"),
        pod("free", "a1", ""),
        claim("data-zonal", "pv-zonal", "ssd"),
        claim("data-labelled", "pv-labelled", "ssd"),
        zonal("pv-zonal", "a"),
        labelled("pv-labelled", "a"),
    ]);
    // Across zones: refused, with kube-scheduler's reasons; within the zone: made.
    assert_eq!(
        kept(
            &s,
            &[
                ("zonal", "b1"),
                ("labelled", "b1"),
                ("missing", "a2"),
                ("free", "b1")
            ]
        ),
        [
            (
                "zonal".into(),
                no_room("node(s) had volume node affinity conflict")
            ),
            (
                "labelled".into(),
                no_room("node(s) had no available volume zone")
            ),
            (
                "missing".into(),
                no_room("persistentvolumeclaim \"data-missing\" not found")
            ),
        ]
    );
    assert!(kept(&s, &[("zonal", "a2"), ("labelled", "a2")]).is_empty());
}

#[test]
fn a_pending_pod_is_placed_where_its_claims_can_bind() {
    let s = snap(&[
        node("a1", "a"),
        node("b1", "b"),
        pod("late", "", "data-late"),
        pod("lost", "", "data-lost"),
        pod("now", "", "data-now"),
        claim("data-late", "", "late-b"),
        claim("data-now", "", "immediate"),
        late_binding("late-b", "b"),
    ]);
    let placed = schedule(&s, None, &[default_profile()], Order::Input, 0).unwrap();
    let on: Vec<(String, String)> = placed
        .placed
        .iter()
        .map(|&(p, n, _)| {
            (
                s.pods.name[p as usize].clone(),
                s.nodes.name[n as usize].clone(),
            )
        })
        .collect();
    assert_eq!(on, [("late".to_string(), "b1".to_string())]);
    let why: Vec<String> = placed
        .unschedulable
        .iter()
        .map(|(p, e)| format!("{}: {e}", s.pods.name[*p as usize]))
        .collect();
    assert_eq!(
        why,
        [
            "lost: 0/2 nodes are available: persistentvolumeclaim \"data-lost\" not found.",
            "now: 0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        ]
    );
}

#[test]
fn without_volume_objects_pods_with_claims_stay_and_schedules_are_unchanged() {
    let s = snap(&[
        node("a1", "a"),
        node("b1", "b"),
        pod("db-0", "a1", "data-db-0"),
        pod("db-1", "", "data-db-1"),
    ]);
    assert!(!s.volumes.described);
    assert_eq!(
        kept(&s, &[("db-0", "b1")]),
        [("db-0".into(), Why::Pinned(Pin::UnknownVolumes))]
    );
    let placed = schedule(&s, None, &[default_profile()], Order::Input, 0).unwrap();
    assert_eq!(
        placed.placed.len(),
        1,
        "nothing is known, so nothing is refused"
    );
}
