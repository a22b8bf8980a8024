//! Bounds on the *shape* of a JSON document, checked by one pass over its bytes before it is
//! parsed: a few megabytes of tiny values (`[0,0,0,…]`) or deep nesting cost far more memory as
//! `serde_json::Value`s than as bytes, so a body is refused by its value count and depth, not
//! only by its length.

use crate::error::{ApiError, FieldError};

/// How much of a document may be parsed into values.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Values of any kind (object keys included), counted as separators and containers.
    pub max_values: usize,
    /// Containers inside containers.
    pub max_depth: usize,
}

/// Refuses `bytes` (for the body part `field`) when it holds more values or deeper nesting
/// than `bounds`; malformed JSON is left for the parser to describe.
pub fn check(bytes: &[u8], field: &str, bounds: Bounds) -> Result<(), ApiError> {
    let (mut values, mut depth, mut in_string, mut escaped) = (1usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            // A key and its value are two values: `:` counts the value, `,` the next item.
            b',' | b':' => values += 1,
            b'[' | b'{' => {
                depth += 1;
                values += 1;
                if depth > bounds.max_depth {
                    return Err(ApiError::Invalid(vec![FieldError::new(
                        field,
                        format!("nested more than {} levels deep", bounds.max_depth),
                    )]));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if values > bounds.max_values {
            return Err(ApiError::Invalid(vec![FieldError::new(
                field,
                format!("holds more than {} JSON values; send fewer or smaller parts", bounds.max_values),
            )]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { max_values: 10, max_depth: 3 };

    fn reason(bytes: &[u8]) -> Option<String> {
        match check(bytes, "report", B) {
            Ok(()) => None,
            Err(ApiError::Invalid(e)) => {
                assert_eq!(e[0].field, "report");
                Some(e[0].reason.clone())
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn counts_values_and_depth_outside_strings() {
        assert_eq!(reason(br#"{"a":[1,2,3],"b":"x,y:z[[[["}"#), None);
        assert!(reason(b"[0,0,0,0,0,0,0,0,0,0,0]").unwrap().contains("more than 10 JSON values"));
        assert!(reason(b"[[[[1]]]]").unwrap().contains("nested more than 3"));
        assert_eq!(reason(br#"["\"[[[[[[", 1]"#), None, "an escaped quote does not end the string");
        assert_eq!(reason(b"[[1],[2],[3]]"), None, "depth is nesting, not the number of containers");
    }
}
