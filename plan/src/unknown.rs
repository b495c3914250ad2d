//! What a plan struct does with a field it does not know.
//!
//! Every struct of the plan has a flattened `extra: X` field. The host uses
//! [`Strict`]: an unknown field is an error naming it, so a plugin cannot
//! invent fields. The SDK uses [`Extra`]: unknown fields are kept and written
//! back verbatim, so a plugin built against an older SDK carries new host
//! fields through instead of dropping them. One set of types serves both;
//! a cargo feature could not, because features unify across a workspace.

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Fields a plugin's SDK version does not know, carried through verbatim.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// Refuses any field its struct does not declare; writes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Strict;

impl Serialize for Strict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RefuseAny)
    }
}

/// Sees the fields the flattening struct left over; any one is an error.
struct RefuseAny;

impl<'de> Visitor<'de> for RefuseAny {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no fields beyond the declared ones")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        match map.next_key::<String>()? {
            Some(key) => Err(de::Error::custom(format_args!("unknown field `{key}`"))),
            None => Ok(Strict),
        }
    }
}
