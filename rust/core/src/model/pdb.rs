//! PodDisruptionBudgets (policy/v1).

use serde::Deserialize;

use super::meta::ObjectMeta;
use super::selector::LabelSelector;

/// `intstr.IntOrString` as PDBs use it: a count or a percentage of the expected pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "IntOrStringWire")]
pub enum IntOrPercent {
    Int(i32),
    Percent(i32),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrStringWire {
    Int(i64),
    Str(String),
}

impl TryFrom<IntOrStringWire> for IntOrPercent {
    type Error = String;
    fn try_from(w: IntOrStringWire) -> Result<Self, String> {
        match w {
            IntOrStringWire::Int(i) if (0..=i64::from(i32::MAX)).contains(&i) => {
                Ok(IntOrPercent::Int(i as i32))
            }
            IntOrStringWire::Int(i) => Err(format!("must be a non-negative integer, got {i}")),
            IntOrStringWire::Str(s) => {
                let p = s
                    .strip_suffix('%')
                    .and_then(|n| n.parse::<i32>().ok())
                    .filter(|p| (0..=100).contains(p))
                    .ok_or_else(|| {
                        format!("must be an integer or a percentage 0%..100%, got {s:?}")
                    })?;
                Ok(IntOrPercent::Percent(p))
            }
        }
    }
}

impl IntOrPercent {
    /// The absolute number for `total` pods. Percentages round up, as the disruption controller
    /// does for both minAvailable and maxUnavailable.
    pub fn resolve(self, total: i32) -> i32 {
        match self {
            IntOrPercent::Int(i) => i,
            IntOrPercent::Percent(p) => ((i64::from(total) * i64::from(p) + 99) / 100) as i32,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "PdbWire")]
pub struct PodDisruptionBudget {
    pub metadata: ObjectMeta,
    /// `None` (no selector) selects no pod; an empty selector selects every pod in the namespace.
    pub selector: Option<LabelSelector>,
    pub min_available: Option<IntOrPercent>,
    pub max_unavailable: Option<IntOrPercent>,
    /// `None` when the object carried no status (a manifest rather than a live object).
    pub status: Option<PdbStatus>,
}

#[derive(Deserialize)]
struct PdbWire {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PdbSpec,
    #[serde(default)]
    status: Option<PdbStatus>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PdbSpec {
    #[serde(default)]
    selector: Option<LabelSelector>,
    #[serde(default)]
    min_available: Option<IntOrPercent>,
    #[serde(default)]
    max_unavailable: Option<IntOrPercent>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PdbStatus {
    #[serde(default)]
    pub disruptions_allowed: i32,
    #[serde(default)]
    pub current_healthy: i32,
    #[serde(default)]
    pub desired_healthy: i32,
    #[serde(default)]
    pub expected_pods: i32,
}

impl TryFrom<PdbWire> for PodDisruptionBudget {
    type Error = String;
    fn try_from(w: PdbWire) -> Result<Self, String> {
        if w.spec.min_available.is_some() && w.spec.max_unavailable.is_some() {
            return Err("spec: minAvailable and maxUnavailable cannot both be set".into());
        }
        Ok(PodDisruptionBudget {
            metadata: w.metadata,
            selector: w.spec.selector,
            min_available: w.spec.min_available,
            max_unavailable: w.spec.max_unavailable,
            status: w.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_percent() {
        let p: IntOrPercent = serde_json::from_str(r#""50%""#).unwrap();
        assert_eq!(p, IntOrPercent::Percent(50));
        assert_eq!(p.resolve(5), 3); // rounds up
        assert_eq!(
            serde_json::from_str::<IntOrPercent>("2")
                .unwrap()
                .resolve(5),
            2
        );
        for bad in [r#""50""#, r#""150%""#, "-1", r#""x%""#] {
            assert!(serde_json::from_str::<IntOrPercent>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pdb_fields() {
        let pdb: PodDisruptionBudget = serde_json::from_str(
            r#"{"metadata":{"name":"web","namespace":"prod"},
                "spec":{"minAvailable":"80%","selector":{"matchLabels":{"app":"web"}}},
                "status":{"disruptionsAllowed":1,"currentHealthy":5,"desiredHealthy":4,"expectedPods":5}}"#,
        )
        .unwrap();
        assert_eq!(pdb.min_available, Some(IntOrPercent::Percent(80)));
        assert_eq!(pdb.status.map(|s| s.disruptions_allowed), Some(1));
        assert!(pdb.selector.is_some());
        let e = serde_json::from_str::<PodDisruptionBudget>(
            r#"{"metadata":{"name":"x"},"spec":{"minAvailable":1,"maxUnavailable":1}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot both be set"), "{e}");
    }
}
