//! A contact as the replica stores it, built from Engage attribute names and values (from an
//! export file or the API), normalised, and stripped to keys in keys mode.

use rusqlite::ToSql;
use serde_json::Value;

use crate::config::Mode;
use crate::normalize::{normalize_email, normalize_plain, phone_key, Country};

/// The contact type the XML export implies when a member carries none: Engage exports only
/// Members (docs/engage-api.md §5.2).
pub const DEFAULT_CONTACT_TYPE: &str = "Member";

/// One contact's columns. `attributes` and the names are `None` in keys mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactRow {
    /// Engage GUID, lower-case.
    pub contact_id: String,
    /// `memberNumber`.
    pub member_number: Option<String>,
    /// `email`, normalised.
    pub email: Option<String>,
    /// `mobilePhone`, E.164 where it could be normalised, else as given (trimmed).
    pub mobile_phone: Option<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `socialSecurityNumber`.
    pub social_security_number: Option<String>,
    /// `contactType`.
    pub contact_type: Option<String>,
    /// `firstName` (full mode).
    pub first_name: Option<String>,
    /// `lastName` (full mode).
    pub last_name: Option<String>,
    /// Every field as a JSON object (full mode).
    pub attributes: Option<String>,
    /// `mobile_phone` is kept as Engage sent it: it could not be read as a phone number
    /// (counted in the import summary; not stored).
    pub phone_as_sent: bool,
}

impl ContactRow {
    /// The key columns, in the order of `queries::KEY_COLUMNS` (`member_number`, `email`,
    /// `mobile_phone`, `external_id`, `social_security_number`).
    pub fn keys(&self) -> [&Option<String>; 5] {
        [
            &self.member_number,
            &self.email,
            &self.mobile_phone,
            &self.external_id,
            &self.social_security_number,
        ]
    }

    /// The columns after the keys: `contact_type`, `first_name`, `last_name`, `attributes`.
    pub fn payload(&self) -> [&Option<String>; 4] {
        [
            &self.contact_type,
            &self.first_name,
            &self.last_name,
            &self.attributes,
        ]
    }

    /// Every data column ([`keys`](Self::keys) then [`payload`](Self::payload)) as statement
    /// parameters: the one place a row is bound to columns, so that the replica's and the till
    /// store's statements, which list them in this order, cannot drift apart.
    pub fn data_columns(&self) -> [&dyn ToSql; 9] {
        let [m, e, p, x, s] = self.keys();
        let [t, f, l, a] = self.payload();
        [m, e, p, x, s, t, f, l, a]
    }

    /// Bytes the row's strings hold on the heap.
    pub fn heap_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.contact_id.capacity()
            + opt(&self.member_number)
            + opt(&self.email)
            + opt(&self.mobile_phone)
            + opt(&self.external_id)
            + opt(&self.social_security_number)
            + opt(&self.contact_type)
            + opt(&self.first_name)
            + opt(&self.last_name)
            + opt(&self.attributes)
    }

    /// Builds the row from attribute name/value pairs (Engage's camelCase names). In full mode
    /// every pair goes into `attributes`; in keys mode nothing but the keys is kept.
    pub fn from_fields(
        contact_id: String,
        fields: Vec<(String, Value)>,
        mode: Mode,
        country: Country,
    ) -> ContactRow {
        let mut row = ContactRow {
            contact_id,
            ..ContactRow::default()
        };
        for (name, value) in &fields {
            if let Value::String(s) = value {
                row.take_column(name, s, mode, country);
            }
        }
        if row.contact_type.is_none() {
            row.contact_type = Some(DEFAULT_CONTACT_TYPE.to_string());
        }
        if mode == Mode::Full {
            row.attributes = Some(attributes_json(&row.contact_id, &fields));
        }
        row
    }

    fn take_column(&mut self, name: &str, value: &str, mode: Mode, country: Country) {
        match name {
            "memberNumber" => self.member_number = normalize_plain(value),
            "email" => self.email = normalize_email(value),
            "mobilePhone" => match phone_key(value, country) {
                Ok(key) => self.mobile_phone = Some(key),
                Err(_) => {
                    // Engage accepted it: keep it as sent (trimmed), and count it.
                    self.mobile_phone = trimmed(value);
                    self.phone_as_sent = self.mobile_phone.is_some();
                }
            },
            "externalId" => self.external_id = normalize_plain(value),
            "socialSecurityNumber" => self.social_security_number = normalize_plain(value),
            "contactType" => self.contact_type = normalize_plain(value),
            "firstName" if mode == Mode::Full => self.first_name = trimmed(value),
            "lastName" if mode == Mode::Full => self.last_name = trimmed(value),
            _ => {}
        }
    }
}

/// A value trimmed as it is, `None` when empty: names keep every character they were sent
/// with (a right-to-left mark can belong to a name), and so does a phone number that is kept
/// as sent.
fn trimmed(value: &str) -> Option<String> {
    let t = value.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The JSON object of every field plus `contactId`, keys in byte order, a repeated key
/// keeping its last value, `contactId` always the contact's id: exactly what collecting the
/// pairs into a `serde_json::Map` and printing it gives, written straight into one string
/// (building the map cost an import of 1,000,000 full-mode contacts about a CPU-second of
/// allocations and frees on the parser threads).
fn attributes_json(contact_id: &str, fields: &[(String, Value)]) -> String {
    let mut entries: Vec<(&str, Option<&Value>)> = Vec::with_capacity(fields.len() + 1);
    entries.extend(
        fields
            .iter()
            .map(|(name, value)| (name.as_str(), Some(value))),
    );
    // Last, so that it wins over a field of the same name (None stands for the id).
    entries.push(("contactId", None));
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(64 + fields.len() * 32);
    out.push(b'{');
    let mut first = true;
    for (i, &(name, value)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == name) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing into a Vec cannot fail, and strings and JSON values always serialise.
        let _ = serde_json::to_writer(&mut out, name);
        out.push(b':');
        let _ = match value {
            Some(value) => serde_json::to_writer(&mut out, value),
            None => serde_json::to_writer(&mut out, contact_id),
        };
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    /// The import's batches are bounded by these bytes: every string of a row counts, once.
    /// Lengths are powers of two, so the sum tells which field was left out or counted twice.
    #[test]
    fn heap_bytes_counts_every_string_once() {
        let s = |bits: u32| Some("x".repeat(1 << bits));
        let row = super::ContactRow {
            contact_id: "x".to_string(),
            member_number: s(1),
            email: s(2),
            mobile_phone: s(3),
            external_id: s(4),
            social_security_number: s(5),
            contact_type: s(6),
            first_name: s(7),
            last_name: s(8),
            attributes: s(9),
            phone_as_sent: false,
        };
        let capacities: usize = std::iter::once(row.contact_id.capacity())
            .chain(
                row.keys()
                    .into_iter()
                    .chain(row.payload())
                    .map(|v| v.as_ref().map_or(0, String::capacity)),
            )
            .sum();
        assert_eq!(capacities, (1 << 10) - 1, "each string at least its length");
        assert_eq!(row.heap_bytes(), capacities);
        assert_eq!(super::ContactRow::default().heap_bytes(), 0);
    }

    use super::*;
    use crate::normalize::Country;

    fn fields() -> Vec<(String, Value)> {
        [
            ("firstName", "Åsa"),
            ("lastName", "Öberg"),
            ("email", " Asa@Example.com"),
            ("mobilePhone", "070-123 45 67"),
            ("memberNumber", " M1 "),
            ("externalId", "X-9"),
            ("socialSecurityNumber", "198001011234"),
            ("contactType", "Contact"),
            ("street", "Storgatan 1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
    }

    /// The keys of [`fields`], normalised, in their columns; nothing else.
    fn keys_of_fields() -> ContactRow {
        ContactRow {
            contact_id: "abc".into(),
            member_number: Some("M1".into()),
            email: Some("asa@example.com".into()),
            mobile_phone: Some("+46701234567".into()),
            external_id: Some("X-9".into()),
            social_security_number: Some("198001011234".into()),
            contact_type: Some("Contact".into()),
            ..ContactRow::default()
        }
    }

    #[test]
    fn keys_mode_keeps_keys_only() {
        let se = Country::from_iso("SE").expect("SE");
        let row = ContactRow::from_fields("abc".into(), fields(), Mode::Keys, se);
        assert_eq!(
            row,
            keys_of_fields(),
            "every key, and no name or other field"
        );
        let untyped: Vec<_> = fields()
            .into_iter()
            .filter(|(name, _)| name != "contactType")
            .collect();
        let row = ContactRow::from_fields("abc".into(), untyped, Mode::Keys, se);
        assert_eq!(row.contact_type.as_deref(), Some(DEFAULT_CONTACT_TYPE));
    }

    /// The JSON is what a `serde_json::Map` of the same pairs prints, for repeated names,
    /// a field named `contactId`, nested objects, arrays, escapes and non-ASCII names.
    #[test]
    fn attributes_json_matches_a_map() {
        let obj = |pairs: &[(&str, Value)]| {
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            )
        };
        let s = |v: &str| Value::String(v.into());
        let cases: Vec<Vec<(&str, Value)>> = vec![
            vec![],
            vec![("b", s("1")), ("a", s("2")), ("b", s("3"))],
            vec![
                ("contactId", s("not the id")),
                ("zeta", s("\"quoted\"\n\u{7}")),
            ],
            vec![
                (
                    "address",
                    obj(&[("street", s("Storgatan")), ("city", s("Umeå"))]),
                ),
                (
                    "tags",
                    Value::Array(vec![s("x"), Value::Null, Value::Bool(true)]),
                ),
                ("Ärende", s("é")),
                ("Z", Value::from(12.5)),
                ("", s("empty name")),
            ],
        ];
        for case in cases {
            let fields: Vec<(String, Value)> = case
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let mut map = Map::new();
            for (k, v) in &fields {
                map.insert(k.clone(), v.clone());
            }
            map.insert("contactId".into(), s("the-id"));
            assert_eq!(
                attributes_json("the-id", &fields),
                Value::Object(map).to_string(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn full_mode_keeps_every_field() {
        let se = Country::from_iso("SE").expect("SE");
        let row = ContactRow::from_fields("abc".into(), fields(), Mode::Full, se);
        let attrs: Value =
            serde_json::from_str(row.attributes.as_deref().expect("attrs")).expect("json");
        assert_eq!(attrs["street"], "Storgatan 1");
        assert_eq!(attrs["contactId"], "abc");
        let full = ContactRow {
            first_name: Some("Åsa".into()),
            last_name: Some("Öberg".into()),
            attributes: row.attributes.clone(),
            ..keys_of_fields()
        };
        assert_eq!(row, full, "every key and name in its column");
    }
}
