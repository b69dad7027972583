//! Maps whose keys are not strings, in JSON: a JSON object's keys must be
//! strings, so such a map is written as a list of `[key, value]` pairs
//! (`#[serde(with = "crate::serde_map")]`). Reading refuses a key given
//! twice rather than letting one answer silently replace another.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error as _, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

pub(crate) fn serialize<K: Serialize, V: Serialize, S: Serializer>(
    map: &BTreeMap<K, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.iter())
}

pub(crate) fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord + fmt::Debug,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    struct Pairs<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Pairs<K, V>
    where
        K: Deserialize<'de> + Ord + fmt::Debug,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of [key, value] pairs")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((k, v)) = seq.next_element::<(K, V)>()? {
                if map.contains_key(&k) {
                    return Err(A::Error::custom(format_args!("key {k:?} is given twice")));
                }
                map.insert(k, v);
            }
            Ok(map)
        }
    }

    d.deserialize_seq(Pairs(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        map: BTreeMap<(u8, String), u32>,
    }

    #[test]
    fn struct_keys_round_trip_through_json() {
        let h = Holder { map: BTreeMap::from([((1, "a".into()), 7), ((0, "b".into()), 9)]) };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"{"map":[[[0,"b"],9],[[1,"a"],7]]}"#);
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), h);
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let err = serde_json::from_str::<Holder>(r#"{"map":[[[0,"b"],9],[[0,"b"],1]]}"#).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
    }
}
