//! Export file names: `[YYYYMMDDHHmmss]_[filenumber]_[name].xml` (docs/contract.md §4).

use chrono::{NaiveDateTime, TimeZone};

/// The parts of an export file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFileName {
    /// The whole file name.
    pub name: String,
    /// `YYYYMMDDHHmmss`.
    pub timestamp: String,
    /// File number within the export, from 0.
    pub file_number: u32,
    /// The tenant-chosen part after the number (`customers`, `members`, …).
    pub label: String,
}

impl ExportFileName {
    /// Parses a file name; the error says what part is wrong.
    pub fn parse(name: &str) -> Result<ExportFileName, String> {
        let expected = "expected [YYYYMMDDHHmmss]_[filenumber]_[name].xml, \
                        e.g. 20190723144514_0_customers.xml";
        let stem = name
            .strip_suffix(".xml")
            .or_else(|| name.strip_suffix(".XML"))
            .ok_or_else(|| format!("the name does not end in .xml; {expected}"))?;
        let mut parts = stem.splitn(3, '_');
        let (Some(ts), Some(num), Some(label)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "the name has fewer than three `_`-separated parts; {expected}"
            ));
        };
        if ts.len() != 14 || NaiveDateTime::parse_from_str(ts, "%Y%m%d%H%M%S").is_err() {
            return Err(format!(
                "{ts:?} is not a YYYYMMDDHHmmss timestamp; {expected}"
            ));
        }
        let file_number = if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            num.parse::<u32>().ok()
        } else {
            None
        }
        .ok_or_else(|| format!("{num:?} is not a file number; {expected}"))?;
        if label.is_empty() {
            return Err(format!(
                "the name part after the file number is empty; {expected}"
            ));
        }
        Ok(ExportFileName {
            name: name.to_string(),
            timestamp: ts.to_string(),
            file_number,
            label: label.to_string(),
        })
    }

    /// The data version of the file's contacts: its timestamp in ms since the Unix epoch, read
    /// in the configured offset (Engage's time zone for file names is not documented; UTC
    /// unless `[export] timestamp_offset` says otherwise).
    pub fn version_ms(&self, offset_seconds: i32) -> i64 {
        let naive =
            NaiveDateTime::parse_from_str(&self.timestamp, "%Y%m%d%H%M%S").unwrap_or_default();
        chrono::FixedOffset::east_opt(offset_seconds)
            .and_then(|tz| tz.from_local_datetime(&naive).single())
            .map(|dt| dt.timestamp_millis())
            .unwrap_or_else(|| naive.and_utc().timestamp_millis())
    }

    /// Sort key: timestamp, then file number, then name.
    pub fn order_key(&self) -> (&str, u32, &str) {
        (&self.timestamp, self.file_number, &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_examples() {
        let f = ExportFileName::parse("20230507181112_16_members.xml").expect("valid");
        assert_eq!(f.timestamp, "20230507181112");
        assert_eq!(f.file_number, 16);
        assert_eq!(f.label, "members");
        let f = ExportFileName::parse("20190723144514_0_my_customers.xml").expect("valid");
        assert_eq!(f.label, "my_customers");
        assert_eq!(f.version_ms(0), 1_563_893_114_000);
        assert_eq!(f.version_ms(3600), 1_563_893_114_000 - 3_600_000);
    }

    #[test]
    fn rejects_other_names() {
        for bad in [
            "customers.xml",
            "20190723144514_customers.xml",
            "2019072314451_0_customers.xml",
            "20191323144514_0_customers.xml",
            "20190723144514_x_customers.xml",
            "20190723144514_0_.xml",
            "20190723144514_0_customers.txt",
        ] {
            assert!(ExportFileName::parse(bad).is_err(), "{bad}");
        }
    }
}
