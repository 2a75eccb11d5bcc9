//! A full contact's stored fields (`attributes`, JSON text) written as `<member>` children
//! straight from the JSON, without building a `serde_json::Value` first: a publication of a
//! million contacts spent a fifth of its time allocating and freeing the values' strings.
//! What is written is what [`super::xml`] writes for the same value (see its documentation).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::xml::{self, Lossy};

/// Writes the member's children for the JSON object `json` into `body` (cleared first), but
/// `contactId` (the caller writes the id) and a text `source` (returned: Engage writes it as
/// the member's attribute).
pub fn member_body(
    json: &str,
    body: &mut Vec<u8>,
    lossy: &mut Lossy,
) -> Result<Option<String>, serde_json::Error> {
    body.clear();
    let mut de = serde_json::Deserializer::from_str(json);
    let source = de.deserialize_map(Top { body, lossy })?;
    de.end()?;
    Ok(source)
}

/// The member's object.
struct Top<'a> {
    body: &'a mut Vec<u8>,
    lossy: &'a mut Lossy,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of contact fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut source = None;
        while let Some(name) = map.next_key_seed(Key)? {
            match name.as_ref() {
                "contactId" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "source" => match map.next_value::<Value>()? {
                    Value::String(s) => source = Some(s),
                    other => xml::write_value(self.body, "source", &other, self.lossy)
                        .map_err(de::Error::custom)?,
                },
                _ if !xml::is_xml_name(&name) => {
                    self.lossy.fields_skipped += 1;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => map.next_value_seed(Field {
                    name: &name,
                    out: self.body,
                    lossy: self.lossy,
                    in_array: false,
                })?,
            }
        }
        Ok(source)
    }
}

/// A field name, borrowed from the JSON text unless it holds escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// One field's value, written as the element `name` (whose name was checked).
struct Field<'a> {
    name: &'a str,
    out: &'a mut Vec<u8>,
    lossy: &'a mut Lossy,
    /// Inside an array: an array here cannot be written (left out, counted).
    in_array: bool,
}

impl Field<'_> {
    fn text<E: de::Error>(self, text: &str) -> Result<(), E> {
        xml::write_text_element(self.out, self.name, text, self.lossy).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.text(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.text(if v { "true" } else { "false" })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.text(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.text(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // As serde_json prints it (the text `write_value` gives a `Value::Number`).
        self.text(&Value::from(v).to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        xml::write_nil_element(self.out, self.name).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let io = de::Error::custom;
        xml::write_start(self.out, self.name).map_err(io)?;
        while let Some(child) = map.next_key_seed(Key)? {
            if xml::is_xml_name(&child) {
                map.next_value_seed(Field {
                    name: &child,
                    out: self.out,
                    lossy: self.lossy,
                    in_array: false,
                })?;
            } else {
                self.lossy.fields_skipped += 1;
                map.next_value::<IgnoredAny>()?;
            }
        }
        xml::write_end(self.out, self.name).map_err(io)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.in_array {
            self.lossy.fields_skipped += 1;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while seq
            .next_element_seed(Field {
                name: self.name,
                out: self.out,
                lossy: self.lossy,
                in_array: true,
            })?
            .is_some()
        {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same elements (and counts) as `xml::write_member_json` for the same object.
    #[test]
    fn writes_what_the_value_writer_writes() {
        let cases = [
            serde_json::json!({"source": "POS", "contactId": "x", "email": "a&b@x", "n": 1.5,
                "k": -3, "u": 7, "ok": false, "nil": null, "e": "", "addr": {"city": "Umeå",
                "bad key": 1}, "tags": ["a", ["b"], {"c": "d"}], "1x": "y", "esc\"aped": "z",
                "ctl": "a\u{1}b"}),
            serde_json::json!({"source": {"system": "web"}, "email": "a@x"}),
            serde_json::json!({}),
        ];
        for case in cases {
            let map = case.as_object().expect("object");
            let mut expected = Vec::new();
            let mut expected_lossy = Lossy::default();
            xml::write_member_json(&mut expected, "id", map, &mut expected_lossy).expect("write");
            let mut body = Vec::new();
            let mut lossy = Lossy::default();
            let source = member_body(&case.to_string(), &mut body, &mut lossy).expect("parse");
            let mut got = Vec::new();
            xml::write_member_open(&mut got, source.as_deref(), &mut lossy).expect("open");
            xml::write_text_element(&mut got, "contactId", "id", &mut lossy).expect("id");
            got.extend_from_slice(&body);
            got.extend_from_slice(b"</member>\n");
            assert_eq!(
                String::from_utf8(got),
                String::from_utf8(expected),
                "{case}"
            );
            assert_eq!(lossy, expected_lossy, "{case}");
        }
    }
}
