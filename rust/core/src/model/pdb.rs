//! PodDisruptionBudgets (policy/v1).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::meta::ObjectMeta;
use super::selector::LabelSelector;
use crate::error::cut;

/// `intstr.IntOrString` as PDBs use it: a count or a percentage of the expected pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "IntOrStringWire")]
pub enum IntOrPercent {
    Int(i32),
    Percent(i32),
}

enum IntOrStringWire {
    Int(i64),
    Str(String),
}

/// Says what is expected (an integer or a percentage) when neither came, where an untagged
/// enum would only say that no variant matched.
impl<'de> Deserialize<'de> for IntOrStringWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrStringWire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a percentage string such as \"50%\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(IntOrStringWire::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(IntOrStringWire::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(IntOrStringWire::Str(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

const PERCENT_ERROR: &str = "a valid percent string must be a numeric string followed by an \
    ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

impl TryFrom<IntOrStringWire> for IntOrPercent {
    type Error = String;
    /// The API server's checks (`ValidatePositiveIntOrPercent`, `IsNotMoreThan100Percent`).
    fn try_from(w: IntOrStringWire) -> Result<Self, String> {
        match w {
            IntOrStringWire::Int(i) if i < 0 => Err(format!(
                "Invalid value: {i}: must be greater than or equal to 0"
            )),
            IntOrStringWire::Int(i) => i32::try_from(i)
                .map(IntOrPercent::Int)
                .map_err(|_| format!("Invalid value: {i}: must be at most {}", i32::MAX)),
            IntOrStringWire::Str(s) => {
                let digits = s
                    .strip_suffix('%')
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
                let Some(digits) = digits else {
                    return Err(format!("Invalid value: \"{}\": {PERCENT_ERROR}", cut(&s)));
                };
                // Leading zeros aside, more than three digits is more than 100%.
                let p = digits.trim_start_matches('0').parse::<i32>().unwrap_or(
                    if digits.bytes().all(|b| b == b'0') {
                        0
                    } else {
                        i32::MAX
                    },
                );
                if p > 100 {
                    return Err(format!(
                        "Invalid value: \"{}\": must not be greater than 100%",
                        cut(&s)
                    ));
                }
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

/// Counts the API server keeps non-negative (`ValidatePodDisruptionBudgetStatusUpdate`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PdbStatus {
    #[serde(default, deserialize_with = "non_negative")]
    pub disruptions_allowed: i32,
    #[serde(default, deserialize_with = "non_negative")]
    pub current_healthy: i32,
    #[serde(default, deserialize_with = "non_negative")]
    pub desired_healthy: i32,
    #[serde(default, deserialize_with = "non_negative")]
    pub expected_pods: i32,
}

fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let v = i32::deserialize(d)?;
    if v < 0 {
        return Err(de::Error::custom(format!(
            "Invalid value: {v}: must be greater than or equal to 0"
        )));
    }
    Ok(v)
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
        let e = |j: &str| {
            serde_json::from_str::<IntOrPercent>(j)
                .unwrap_err()
                .to_string()
        };
        assert!(e(r#""50""#).starts_with("Invalid value: \"50\": a valid percent string"));
        assert!(e(r#""+5%""#).starts_with("Invalid value: \"+5%\": a valid percent string"));
        assert!(e(r#""x%""#).starts_with("Invalid value: \"x%\": a valid percent string"));
        assert!(
            e(r#""150%""#).starts_with("Invalid value: \"150%\": must not be greater than 100%")
        );
        assert!(e(r#""99999999999999999999%""#).contains("must not be greater than 100%"));
        assert!(e("-1").starts_with("Invalid value: -1: must be greater than or equal to 0"));
        assert!(
            e("3000000000").starts_with("Invalid value: 3000000000: must be at most 2147483647")
        );
        assert!(e("1.5").starts_with(
            "invalid type: floating point `1.5`, expected an integer or a percentage string such as \"50%\""
        ), "{}", e("1.5"));
        assert_eq!(
            serde_json::from_str::<IntOrPercent>(r#""007%""#).unwrap(),
            IntOrPercent::Percent(7)
        );
        assert_eq!(
            serde_json::from_str::<IntOrPercent>(r#""000%""#).unwrap(),
            IntOrPercent::Percent(0)
        );
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
        let e = serde_json::from_str::<PodDisruptionBudget>(
            r#"{"metadata":{"name":"x"},"spec":{},"status":{"disruptionsAllowed":-1}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("Invalid value: -1: must be greater than or equal to 0"),
            "{e}"
        );
    }
}
