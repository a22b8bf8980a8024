//! The archive password: seed 003's rule, and sealing so it is never stored in plaintext.
//!
//! Rule (Huawei AICC's export task): only letters, digits and `_ @ %`, 1 to 12 characters.
//! Letters are ASCII: 7-Zip and the ZIP AES format derive the key from the password's bytes,
//! and non-ASCII letters encode differently across tools, so such an archive may not open.
//!
//! The password lives in the task only sealed ([`crate::crypto::Sealer`]), bound to the tenant and
//! task id, and is dropped once the archive is written.

use crate::error::FieldError;

pub const MAX_LEN: usize = 12;

/// Every way the password breaks the rule, each with its own message (empty when it is fine).
pub fn check(field: &str, pw: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let len = pw.chars().count();
    if len == 0 {
        errs.push(FieldError::new(field, "must not be empty; leave it out for an archive without a password"));
    }
    if len > MAX_LEN {
        errs.push(FieldError::new(field, format!("is {len} characters long; at most {MAX_LEN} are allowed")));
    }
    let mut bad: Vec<char> =
        pw.chars().filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '%'))).collect();
    bad.sort_unstable();
    bad.dedup();
    if !bad.is_empty() {
        let shown: Vec<String> = bad
            .iter()
            .map(|c| match c {
                ' ' => "space".to_owned(),
                c if c.is_control() => format!("U+{:04X}", *c as u32),
                c => format!("`{c}`"),
            })
            .collect();
        errs.push(FieldError::new(
            field,
            format!(
                "{} not allowed; use only the letters A–Z and a–z, the digits 0–9 and _ @ %",
                if shown.len() == 1 { format!("{} is", shown[0]) } else { format!("{} are", shown.join(", ")) }
            ),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(pw: &str) -> Vec<String> {
        check("password", pw).into_iter().map(|e| e.reason).collect()
    }

    #[test]
    fn the_seed_rule_with_one_message_per_violation() {
        for ok in ["a", "Secret_1@%", "ABCDEFGHIJKL", "123456789012", "_@%"] {
            assert!(reasons(ok).is_empty(), "{ok}: {:?}", reasons(ok));
        }
        assert_eq!(reasons("ABCDEFGHIJKLM"), vec!["is 13 characters long; at most 12 are allowed"]);
        assert!(reasons("")[0].contains("must not be empty"));
        assert!(reasons("pass word")[0].starts_with("space is not allowed"), "{:?}", reasons("pass word"));
        assert!(reasons("pass#1")[0].starts_with("`#` is not allowed"));
        assert!(reasons("pässwörd")[0].starts_with("`ä`, `ö` are not allowed"), "{:?}", reasons("pässwörd"));
        assert!(reasons("密码")[0].contains("not allowed"));
        // Two violations at once: two messages.
        assert_eq!(reasons("this is far too long!").len(), 2);
    }
}
