//! Masking of personal data in logs and errors (docs/contract.md §8): enough left to recognise a
//! value when support compares it with the till, not enough to identify the person.

/// `anna@example.com` → `a***@example.com`.
pub fn email(value: &str) -> String {
    match value.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => keep_ends(value, 1, 0),
    }
}

/// `+46701234567` → `+4670*****67`.
pub fn phone(value: &str) -> String {
    keep_ends(value, 5, 2)
}

/// Personal identity numbers, member numbers and other keys: only the last two characters.
pub fn key(value: &str) -> String {
    keep_ends(value, 0, 2)
}

/// Masks what looks like personal data in free text that came from outside (an error body or
/// a bulk row's message from Engage, which may quote the value it rejected): tokens with an `@`
/// as e-mail addresses, and tokens of digits and `+-.` holding at least six digits as keys
/// (phone, personal number). GUIDs contain letters and stay readable for support.
pub fn scrub(text: &str) -> String {
    let is_sep = |c: char| c.is_whitespace() || "\"'`,;:()<>[]{}=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if is_sep(c) {
            out.push_str(&scrub_token(&token));
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    out.pop();
    out
}

fn scrub_token(token: &str) -> String {
    if token.contains('@') {
        return email(token);
    }
    let digits = token.chars().filter(char::is_ascii_digit).count();
    let key_like = token
        .chars()
        .all(|c| c.is_ascii_digit() || "+-.".contains(c));
    if digits >= 6 && key_like {
        return key(token);
    }
    token.to_string()
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest; a value too short to
/// hide anything is starred completely.
fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail + 2 {
        return "*".repeat(chars.len().max(3));
    }
    let mut out = String::with_capacity(value.len());
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_as_the_spec_shows() {
        assert_eq!(phone("+46701234567"), "+4670*****67");
        assert_eq!(email("anna@example.com"), "a***@example.com");
        assert_eq!(key("198001011234"), "**********34");
        assert_eq!(key("12"), "***");
    }

    #[test]
    fn a_value_too_short_to_hide_anything_is_starred_completely() {
        // Without an `@`, an "e-mail" keeps its first character only when 3 are left to star.
        assert_eq!(email("abc"), "***");
        assert_eq!(email("ab"), "***");
        assert_eq!(email("abcd"), "a***");
    }

    #[test]
    fn scrub_masks_keys_and_addresses_but_keeps_ids_and_short_numbers() {
        let id = "6f1c2e4a-3b1d-4c8e-9a0b-000000000001";
        assert_eq!(
            scrub(&format!(
                "contact {id} rejected: row 12345, phone +46 701234567"
            )),
            format!("contact {id} rejected: row 12345, phone +46 *******67")
        );
        assert_eq!(
            scrub("\"anna@example.com\" (198001011234)"),
            "\"a***@example.com\" (**********34)"
        );
    }
}
