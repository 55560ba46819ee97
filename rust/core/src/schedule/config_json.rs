//! A scheduler configuration's JSON, read as kube-scheduler reads it (Go's `encoding/json`)
//! where serde's derive would read it differently: serde lets an array stand for a struct (its
//! fields in order, missing ones defaulted), so `[]` would be a KubeSchedulerConfiguration with
//! every field defaulted and `{"profiles": [[]]}` a default profile; Go takes a struct only from
//! an object ("cannot unmarshal array into Go value"). Errors name the field by its path.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde_json::Value;

use crate::error::{cut_to, ConfigError};

/// `T` from JSON text; a failure is a [`ConfigError`] at the path of the field at fault, inside
/// `at` (what the text is, e.g. `KubeSchedulerConfiguration`).
pub fn from_str<T: DeserializeOwned>(json: &str, at: &str) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(ObjectsOnly(&mut de))
        .map_err(|e| located(at, e.path(), e.inner()))?;
    de.end().map_err(|e| ConfigError::at(at, e.to_string()))?;
    Ok(value)
}

/// `T` from an already-parsed JSON value (a plugin's `args`), as [`from_str`].
pub fn from_value<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(ObjectsOnly(value))
        .map_err(|e| located(at, e.path(), e.inner()))
}

fn located(at: &str, path: &serde_path_to_error::Path, e: &impl fmt::Display) -> ConfigError {
    let inner = path.to_string();
    // The whole document's path prints as ".".
    let path = if inner == "." {
        at.to_string()
    } else {
        format!("{at}: {inner}")
    };
    // serde quotes a value or an unknown field's name whole, however long.
    ConfigError::at(path, cut_to(&e.to_string(), MESSAGE))
}

/// The most characters of serde's message kept: enough to list every field a struct has.
const MESSAGE: usize = 500;

/// A deserializer that hands a struct's visitor only objects; everything inside it goes through
/// the same wrapper, so the rule holds at any depth.
struct ObjectsOnly<D>(D);

/// A visitor that passes everything on, its nested deserializers wrapped; `structure` refuses
/// an array.
struct Checked<V> {
    visitor: V,
    structure: bool,
}

impl<V> Checked<V> {
    fn any(visitor: V) -> Self {
        Checked {
            visitor,
            structure: false,
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* Checked::any(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_option();
        deserialize_unit(); deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str); deserialize_seq();
        deserialize_tuple(len: usize); deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map(); deserialize_identifier(); deserialize_ignored_any();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let checked = Checked {
            visitor,
            structure: true,
        };
        self.0.deserialize_struct(name, fields, checked)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Checked<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visit! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64);
        visit_i128(i128); visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64);
        visit_u128(u128); visit_f32(f32); visit_f64(f64); visit_char(char); visit_str(&str);
        visit_borrowed_str(&'de str); visit_string(String); visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_some(ObjectsOnly(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_newtype_struct(ObjectsOnly(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if self.structure {
            return Err(de::Error::invalid_type(
                Unexpected::Other("an array"),
                &"an object",
            ));
        }
        self.visitor.visit_seq(ObjectsOnly(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(ObjectsOnly(map))
    }

    // Enums here are unit variants (a strategy's name): nothing nested to check.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_enum(data)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for ObjectsOnly<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(ObjectsOnly(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for ObjectsOnly<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(ObjectsOnly(seed))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(ObjectsOnly(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for ObjectsOnly<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(ObjectsOnly(d))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        n: u32,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        one: Option<Inner>,
        #[serde(default)]
        any: Option<Value>,
    }

    fn err(json: &str) -> String {
        from_str::<Outer>(json, "Doc").unwrap_err().to_string()
    }

    #[test]
    fn a_struct_is_read_from_an_object_only() {
        // serde alone reads all three as the defaults.
        assert!(serde_json::from_str::<Outer>("[]").is_ok());
        assert_eq!(
            err("[]"),
            "Doc: invalid type: an array, expected an object at line 1 column 2"
        );
        assert_eq!(
            err(r#"{"items": [{"n": 1}, []]}"#),
            "Doc: items[1]: invalid type: an array, expected an object at line 1 column 23"
        );
        assert!(err(r#"{"one": [7]}"#).starts_with("Doc: one: invalid type: an array"));
    }

    #[test]
    fn everything_else_reads_as_serde_reads_it() {
        let read: Outer =
            from_str(r#"{"items": [{"n": 1}], "any": [[1], {"a": []}]}"#, "Doc").unwrap();
        assert_eq!(read.items, [Inner { n: 1 }]);
        assert_eq!(read.any, Some(serde_json::json!([[1], {"a": []}])));
        assert!(err(r#"{"items": [{"n": -1}]}"#).starts_with("Doc: items[0].n: invalid value"));
        assert!(err(r#"{"x": 1}"#).contains("unknown field `x`"));
        assert!(err("{} {}").contains("trailing characters"));
        let value = serde_json::json!({"items": [[]]});
        let e = from_value::<Outer>(&value, "args").unwrap_err().to_string();
        assert_eq!(
            e,
            "args: items[0]: invalid type: an array, expected an object"
        );
    }
}
