//! Invisible characters and foreign digits that come with keys copied from other systems.
//!
//! A number copied out of a right-to-left web page arrives wrapped in bidi marks, a spreadsheet
//! adds a zero-width space, a Japanese keyboard types full-width digits. None of these change
//! what the key is, so every key is cleaned of them before it is compared or stored; otherwise
//! the same person would get a second key that no lookup can ever find.

/// Whether `c` is a Unicode format character (general category Cf) that can hide in copied
/// text: soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width space and
/// joiners, left-to-right and right-to-left marks, bidi embeddings, overrides and isolates,
/// word joiner and invisible operators, byte-order mark, interlinear annotation marks.
pub fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// `raw` without format characters (borrowed when it has none: ASCII never has).
pub fn strip_format(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.is_ascii() || !raw.chars().any(is_format_char) {
        std::borrow::Cow::Borrowed(raw)
    } else {
        std::borrow::Cow::Owned(raw.chars().filter(|c| !is_format_char(*c)).collect())
    }
}

/// The first code point of each run of ten decimal digits that phone numbers are written in,
/// as libphonenumber reads them: ASCII, Arabic-Indic, Extended Arabic-Indic (Persian, Urdu),
/// Devanagari, Bengali, Thai, Myanmar, Khmer, Mongolian, full-width.
const DIGIT_ZEROS: [u32; 10] = [
    0x0030, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1040, 0x17E0, 0x1810, 0xFF10,
];

/// The ASCII digit a decimal digit of any of [`DIGIT_ZEROS`]' scripts stands for.
pub fn ascii_digit(c: char) -> Option<char> {
    let cp = c as u32;
    DIGIT_ZEROS
        .iter()
        .find(|zero| (**zero..**zero + 10).contains(&cp))
        .and_then(|zero| char::from_digit(cp - zero, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_characters_are_stripped_and_nothing_else() {
        assert_eq!(
            strip_format("\u{202A}070-123\u{200B} 45 67\u{202C}"),
            "070-123 45 67"
        );
        assert_eq!(strip_format("\u{2066}a\u{2069}\u{FEFF}"), "a");
        assert_eq!(strip_format("Åsa Öberg"), "Åsa Öberg");
        assert!(matches!(
            strip_format("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
        // NBSP is a space, not a format character: trimming handles it.
        assert_eq!(strip_format("\u{A0}x"), "\u{A0}x");
    }

    #[test]
    fn digits_of_other_scripts_read_as_ascii() {
        assert_eq!(ascii_digit('7'), Some('7'));
        assert_eq!(ascii_digit('\u{FF10}'), Some('0'));
        assert_eq!(ascii_digit('\u{FF19}'), Some('9'));
        assert_eq!(ascii_digit('\u{0667}'), Some('7'));
        assert_eq!(ascii_digit('\u{06F4}'), Some('4'));
        assert_eq!(ascii_digit('\u{096B}'), Some('5'));
        assert_eq!(ascii_digit('a'), None);
        assert_eq!(ascii_digit('\u{FF1A}'), None);
        assert_eq!(ascii_digit('/'), None);
    }
}
