//! Subject identifiers, normalised for the index (seed 002): e-mail trimmed and case-folded;
//! phone reduced to its digits (separators and `+` dropped) and stored reversed, so "the last N
//! digits" is a prefix of the key — a key-range lookup, never a scan; first + last name
//! normalised together. Contacts and consents are found only by phone or e-mail, as in the seed.
//! Part of the record model: every adapter derives a record's index entries from it.

use super::{Category, Record};

/// What erasure writes where personal data was.
pub const ANONYMIZED: &str = "{Anonymized by DPO}";

/// The fewest phone digits a search may use.
pub const MIN_DIGITS: usize = 3;

pub fn norm_email(e: &str) -> Option<String> {
    let e = e.trim().to_lowercase();
    (e.contains('@') && e.len() >= 3 && e != ANONYMIZED.to_lowercase()).then_some(e)
}

pub fn phone_digits(p: &str) -> String {
    p.chars().filter(char::is_ascii_digit).collect()
}

pub fn norm_name(n: &str) -> Option<String> {
    let n = n.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    (!n.is_empty() && n != ANONYMIZED.to_lowercase()).then_some(n)
}

pub fn email_key(e: &str) -> Option<String> {
    norm_email(e).map(|e| format!("e:{e}"))
}

/// `p:` + the digits reversed; a search on the last N digits is the prefix `p:` + those N
/// digits reversed.
pub fn phone_key(p: &str) -> Option<String> {
    let d = phone_digits(p);
    (d.len() >= MIN_DIGITS).then(|| format!("p:{}", d.chars().rev().collect::<String>()))
}

pub fn name_key(first: &str, last: &str) -> Option<String> {
    Some(format!("n:{}|{}", norm_name(first)?, norm_name(last)?))
}

/// Whether names index this category (the seed: name search finds directory entries and
/// campaign customers, never contacts; consents are linked to the phone number).
pub fn names_indexed(c: Category) -> bool {
    !matches!(c, Category::Contact | Category::Consent)
}

/// The index keys of a record's subject, deduplicated.
pub fn keys(r: &Record) -> Vec<String> {
    let Some(s) = &r.subject else { return Vec::new() };
    let mut out: Vec<String> = s.emails.iter().filter_map(|e| email_key(e)).collect();
    out.extend(s.phones.iter().filter_map(|p| phone_key(p)));
    if names_indexed(r.category)
        && let (Some(f), Some(l)) = (&s.first_name, &s.last_name)
        && let Some(k) = name_key(f, l)
    {
        out.push(k);
    }
    out.sort();
    out.dedup();
    out
}

/// The index key of an uploaded attachment (`POST /v1/attachments`) a record names: the records
/// naming one upload are found like a subject's, so a purge keeps a file another record still
/// names. Not a subject identifier: DPO searches never look these up.
pub fn upload_key(blob: &str) -> String {
    format!("u:{blob}")
}

/// Every index entry of a record: its subject's identifiers ([`keys`]) and the uploads it names
/// (attachments other than an error report's own file), deduplicated.
pub fn index_keys(r: &Record) -> Vec<String> {
    let mut out = keys(r);
    out.extend(r.attachments.iter().filter(|a| !a.is_error_report()).map(|a| upload_key(&a.blob)));
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keys_make_last_digit_searches_prefix_lookups() {
        assert_eq!(phone_key("+420 777-123-456").as_deref(), Some("p:654321777024"));
        assert_eq!(phone_key("(777) 123 456").as_deref(), Some("p:654321777"));
        // The last 6 digits 123456 reversed is a prefix of the stored key.
        assert!(phone_key("+420 777-123-456").unwrap().starts_with(&format!("p:{}", "654321")));
        assert_eq!(phone_key("12"), None);
        assert_eq!(email_key("  Jan.Novak@Example.COM ").as_deref(), Some("e:jan.novak@example.com"));
        assert_eq!(name_key(" Jan ", "Novák  Starší").as_deref(), Some("n:jan|novák starší"));
        assert_eq!(email_key(ANONYMIZED), None);
        assert_eq!(name_key(ANONYMIZED, "x"), None);
    }
}
