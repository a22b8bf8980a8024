//! Every CSV the product writes (export rows of both views, the DPO report) goes through
//! `write_row`: RFC 4180 fields, CRLF rows, and cells a spreadsheet would run as a formula
//! neutralised as OWASP recommends (CSV injection).

use std::borrow::Cow;

/// Characters that make a spreadsheet treat a cell as a formula (or split it into one).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as it may be opened in a spreadsheet: one starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return gets a leading `'`, so it is shown as text and never evaluated.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) { Cow::Owned(format!("'{cell}")) } else { Cow::Borrowed(cell) }
}

/// Appends one CSV row: each cell neutralised, quoted when neutralised or when it holds a
/// comma, quote or line break (quotes doubled), rows ended by CRLF.
pub fn write_row<I, S>(out: &mut Vec<u8>, cells: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let raw = cell.as_ref();
        let cell = neutralise(raw);
        let quote = matches!(cell, Cow::Owned(_)) || cell.contains([',', '"', '\r', '\n']);
        if quote {
            out.push(b'"');
            for part in cell.split_inclusive('"') {
                out.extend_from_slice(part.as_bytes());
                if part.ends_with('"') {
                    out.push(b'"');
                }
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn formula_cells_are_quoted_text_and_others_round_trip() {
        let cells = [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+1+2",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "",
            "Příliš žluťoučký kůň",
            "a=b",
        ];
        let mut out = Vec::new();
        write_row(&mut out, cells);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",\"'+1+2\","), "{text}");
        assert!(text.ends_with(",a=b\r\n"), "{text}");
        let row = &parse(&out)[0];
        for (got, sent) in row.iter().zip(cells) {
            if sent.starts_with(FORMULA_STARTS) {
                assert_eq!(*got, format!("'{sent}"));
            } else {
                assert_eq!(got, sent);
            }
        }
    }
}
