//! A data subject's identifiers as the DPO works with them: every plaintext form to scrub from
//! free text, and the identifiers a user typed into a filter. Their normalisation for the index
//! is part of the record model ([`crate::record::subject`], re-exported here).

use crate::query::TERM_KEYS;
use crate::record::Subject;
pub use crate::record::subject::*;

/// Every plaintext form of a subject's identifiers worth scrubbing from free text: e-mails as
/// written and case-folded, phones as written and as digits, names.
pub fn identifiers(s: &Subject) -> Vec<String> {
    let mut out = Vec::new();
    for e in &s.emails {
        if norm_email(e).is_some() {
            out.push(e.trim().to_owned());
            out.push(e.trim().to_lowercase());
        }
    }
    for p in &s.phones {
        let d = phone_digits(p);
        if d.len() >= MIN_DIGITS {
            out.push(p.trim().to_owned());
            out.push(d);
        }
    }
    for n in [&s.first_name, &s.last_name].into_iter().flatten() {
        if norm_name(n).is_some() {
            out.push(n.trim().to_owned());
        }
    }
    out.retain(|v| v.len() >= 3 && v != ANONYMIZED);
    // Longest first, so "+420 777 123 456" is replaced before "777".
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    out.dedup();
    out
}

/// The identifiers a user typed into a search, an export or a schedule, as a subject, so that the
/// self-audit record that keeps them (`AUDIT_SEARCH`, `SIGN_IN_SEARCH`, `DATA_EXPORT_CREATE`, …) is
/// found by a DPO search for them and scrubbed by their erasure, like any record that names the
/// person. Read from the string values under [`TERM_KEYS`] at any depth of `data`:
/// - every word that is an e-mail address;
/// - a value that is a phone number as a whole (only digits and the separators a phone search
///   accepts, at least [`MIN_DIGITS`] digits);
/// - a value of two or more words of letters, as first name(s) and last name (the name search
///   needs both).
pub fn typed_subject(data: &serde_json::Value) -> Option<Subject> {
    fn terms<'a>(v: &'a serde_json::Value, under_term: bool, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) if under_term => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| terms(x, under_term, out)),
            serde_json::Value::Object(m) => {
                m.iter().for_each(|(k, x)| terms(x, under_term || TERM_KEYS.contains(&k.as_str()), out))
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    terms(data, false, &mut found);
    let mut s = Subject::default();
    for t in found {
        let t = t.trim();
        // The value as typed (what a DPO search for it looks up), and each word of it (an
        // address inside `"Max" <max@example.org>, …`).
        let words = t.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '"' | '\''));
        for w in std::iter::once(t).chain(words) {
            if norm_email(w).is_some() && !s.emails.iter().any(|e| e == w) {
                s.emails.push(w.to_owned());
            }
        }
        if t.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c)) && phone_digits(t).len() >= MIN_DIGITS {
            s.phones.push(t.to_owned());
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        if s.last_name.is_none()
            && words.len() >= 2
            && words.iter().all(|w| w.chars().all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '.')))
            && let Some((last, first)) = words.split_last()
        {
            s.first_name = Some(first.join(" "));
            s.last_name = Some((*last).to_owned());
        }
    }
    (!s.emails.is_empty() || !s.phones.is_empty() || s.last_name.is_some()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_typed_into_filters_become_the_self_audit_record_subject() {
        let s = typed_subject(&serde_json::json!({"q": "max@Example.org", "user": "Jana Nováková", "limit": 50,
            "from": "2026-01-01", "filter": {"q": "+420 777 123 456"}, "criteria": {"email": "a1b2c3d4"}}))
        .unwrap();
        assert_eq!(s.emails, vec!["max@Example.org"]);
        assert_eq!(s.phones, vec!["+420 777 123 456"]);
        assert_eq!((s.first_name.as_deref(), s.last_name.as_deref()), (Some("Jana"), Some("Nováková")));
        // Dates, limits and hashed criteria are not under a typed field; plain words are no name.
        assert!(typed_subject(&serde_json::json!({"q": "timeout", "from": "2026-01-01", "returned": 3})).is_none());
        assert!(typed_subject(&serde_json::json!({"criteria": {"email": "x@y.z"}})).is_none());
        // A name search finds it, a phone search on the last digits too.
        let mut r = crate::record::Record::system("t", "AUDIT_SEARCH", Default::default(), None, serde_json::json!({}));
        r.subject = Some(s);
        let k = keys(&r);
        assert!(k.contains(&"e:max@example.org".to_owned()) && k.contains(&"n:jana|nováková".to_owned()), "{k:?}");
        assert!(k.contains(&"p:654321777024".to_owned()), "{k:?}");
    }
}
