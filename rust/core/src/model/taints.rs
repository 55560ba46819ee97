//! Node taints and pod tolerations.

use serde::Deserialize;

use super::validation;
use crate::error::cut;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "TaintWire")]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

#[derive(Deserialize)]
struct TaintWire {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    effect: Option<String>,
}

const EFFECTS: &str = "supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"";

fn effect(name: &str) -> Option<TaintEffect> {
    match name {
        "NoSchedule" => Some(TaintEffect::NoSchedule),
        "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
        "NoExecute" => Some(TaintEffect::NoExecute),
        _ => None,
    }
}

impl TryFrom<TaintWire> for Taint {
    type Error = String;
    /// The API server's checks (`validateNodeTaints`), in its words.
    fn try_from(w: TaintWire) -> Result<Self, String> {
        validation::qualified_name(&w.key)
            .map_err(|e| format!("key: {}", validation::invalid(&w.key, &e)))?;
        validation::label_value(&w.value)
            .map_err(|e| format!("value: {}", validation::invalid(&w.value, &e)))?;
        let effect = match w.effect.as_deref() {
            None | Some("") => return Err("effect: Required value".into()),
            Some(name) => effect(name).ok_or_else(|| {
                format!("effect: Unsupported value: \"{}\": {EFFECTS}", cut(name))
            })?,
        };
        Ok(Taint {
            key: w.key,
            value: w.value,
            effect,
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum TolerationOperator {
    #[default]
    Equal,
    Exists,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "TolerationWire")]
pub struct Toleration {
    /// Empty with `Exists`: tolerates every taint (of `effect`, if set).
    pub key: String,
    pub operator: TolerationOperator,
    pub value: String,
    /// `None` tolerates all effects.
    pub effect: Option<TaintEffect>,
    pub toleration_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TolerationWire {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    operator: Option<TolerationOperator>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    effect: Option<String>,
    #[serde(default)]
    toleration_seconds: Option<i64>,
}

impl TryFrom<TolerationWire> for Toleration {
    type Error = String;
    fn try_from(w: TolerationWire) -> Result<Self, String> {
        let key = w.key.unwrap_or_default();
        let operator = w.operator.unwrap_or_default();
        let value = w.value.unwrap_or_default();
        // The API server's rules (`validateTolerations`): a key is a qualified name; an empty key
        // needs Exists; Exists takes no value, Equal a label value.
        if !key.is_empty() {
            validation::qualified_name(&key)
                .map_err(|e| format!("key: {}", validation::invalid(&key, &e)))?;
        }
        if key.is_empty() && operator != TolerationOperator::Exists {
            return Err("a toleration with an empty key must use operator Exists".into());
        }
        match operator {
            TolerationOperator::Exists if !value.is_empty() => {
                return Err(format!(
                    "operator Exists takes no value, got \"{}\"",
                    cut(&value)
                ))
            }
            TolerationOperator::Equal => validation::label_value(&value)
                .map_err(|e| format!("value: {}", validation::invalid(&value, &e)))?,
            TolerationOperator::Exists => {}
        }
        // Tolerations write "no effect" (all effects) as an absent field or as "".
        let effect = match w.effect.as_deref() {
            None | Some("") => None,
            Some(name) => Some(effect(name).ok_or_else(|| {
                format!("effect: Unsupported value: \"{}\": {EFFECTS}", cut(name))
            })?),
        };
        if w.toleration_seconds.is_some() && effect != Some(TaintEffect::NoExecute) {
            return Err("effect must be 'NoExecute' when `tolerationSeconds` is set".into());
        }
        Ok(Toleration {
            key,
            operator,
            value,
            effect,
            toleration_seconds: w.toleration_seconds,
        })
    }
}

impl Toleration {
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == taint.value,
        }
    }
}

/// The first taint with one of `effects` that no toleration tolerates — what kube-scheduler's
/// TaintToleration filter reports.
pub fn first_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[TaintEffect],
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect))
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    fn tol(json: &str) -> Toleration {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn documented_examples() {
        // From the Kubernetes docs: taint key1=value1:NoSchedule.
        let t = taint("key1", "value1", TaintEffect::NoSchedule);
        assert!(
            tol(r#"{"key":"key1","operator":"Equal","value":"value1","effect":"NoSchedule"}"#)
                .tolerates(&t)
        );
        assert!(tol(r#"{"key":"key1","operator":"Exists","effect":"NoSchedule"}"#).tolerates(&t));
        assert!(!tol(
            r#"{"key":"key1","operator":"Equal","value":"value2","effect":"NoSchedule"}"#
        )
        .tolerates(&t));
        assert!(!tol(r#"{"key":"key1","operator":"Exists","effect":"NoExecute"}"#).tolerates(&t));
        // Operator defaults to Equal; an absent or empty effect tolerates all effects.
        assert!(tol(r#"{"key":"key1","value":"value1"}"#).tolerates(&t));
        assert!(tol(r#"{"key":"key1","value":"value1","effect":""}"#).tolerates(&t));
        // Empty key with Exists tolerates everything.
        assert!(tol(r#"{"operator":"Exists"}"#).tolerates(&taint(
            "x",
            "y",
            TaintEffect::NoExecute
        )));
    }

    #[test]
    fn first_untolerated_taint() {
        let taints = [
            taint("a", "", TaintEffect::PreferNoSchedule),
            taint("b", "1", TaintEffect::NoSchedule),
            taint("c", "", TaintEffect::NoExecute),
        ];
        let hard = [TaintEffect::NoSchedule, TaintEffect::NoExecute];
        let tols = [tol(r#"{"key":"b","value":"1"}"#)];
        assert_eq!(
            first_untolerated(&taints, &tols, &hard).map(|t| t.key.as_str()),
            Some("c")
        );
        let tols = [
            tol(r#"{"key":"b","value":"1"}"#),
            tol(r#"{"key":"c","operator":"Exists"}"#),
        ];
        assert_eq!(first_untolerated(&taints, &tols, &hard), None);
    }

    #[test]
    fn invalid_tolerations() {
        let e = |j: &str| {
            serde_json::from_str::<Toleration>(j)
                .unwrap_err()
                .to_string()
        };
        assert!(e(r#"{"value":"x"}"#).contains("empty key must use operator Exists"));
        assert!(e(r#"{"key":"k","operator":"Exists","value":"x"}"#).contains("takes no value"));
        assert!(e(r#"{"key":"k","operator":"Maybe"}"#).contains("unknown variant `Maybe`"));
        assert_eq!(
            e(r#"{"key":"k","effect":"Never"}"#),
            format!("effect: Unsupported value: \"Never\": {EFFECTS}")
        );
        assert!(e(r#"{"key":"bad key","operator":"Exists"}"#)
            .starts_with("key: Invalid value: \"bad key\""));
        assert!(e(r#"{"key":"k","value":"a b"}"#).starts_with("value: Invalid value: \"a b\""));
        assert_eq!(
            e(r#"{"key":"k","effect":"NoSchedule","tolerationSeconds":5}"#),
            "effect must be 'NoExecute' when `tolerationSeconds` is set"
        );
        let t = |j: &str| serde_json::from_str::<Taint>(j).unwrap_err().to_string();
        assert!(t(r#"{"key":"","effect":"NoSchedule"}"#)
            .starts_with("key: Invalid value: \"\": name part must be non-empty"));
        assert!(t(r#"{"key":"a/b/c","effect":"NoSchedule"}"#)
            .starts_with("key: Invalid value: \"a/b/c\""));
        assert_eq!(t(r#"{"key":"k"}"#), "effect: Required value");
        assert_eq!(
            t(r#"{"key":"k","effect":"Sometimes"}"#),
            format!("effect: Unsupported value: \"Sometimes\": {EFFECTS}")
        );
    }
}
