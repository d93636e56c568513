//! HTTP bodies: a JSON array of records, or NDJSON.

use crate::{Decoded, FormatError, Position, record_from_json};

/// Decodes a body: a JSON array (`[{...}, ...]`) or NDJSON (one object per line; a single
/// object is one line). Malformed JSON inside an array fails the whole body, with line and
/// column; a malformed NDJSON line fails only that line.
pub fn decode_body(body: &[u8]) -> Result<Vec<Decoded>, FormatError> {
    let text = std::str::from_utf8(body).map_err(|e| FormatError::Utf8(e.valid_up_to()))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| FormatError::Json { line: e.line(), column: e.column(), message: e.to_string() })?;
        return Ok(values
            .into_iter()
            .enumerate()
            .map(|(i, v)| Decoded { position: Position::Index(i), record: record_from_json(v) })
            .collect());
    }
    if !trimmed.is_empty() && !trimmed.starts_with('{') {
        return Err(FormatError::NotRecords);
    }
    Ok(decode_ndjson(text, 0))
}

/// Decodes NDJSON text whose first line is `first_line + 1`.
pub(crate) fn decode_ndjson(text: &str, first_line: usize) -> Vec<Decoded> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| Decoded {
            position: Position::Line(first_line + i + 1),
            record: serde_json::from_str::<serde_json::Value>(line)
                .map_err(|e| format!("malformed JSON at column {}: {e}", e.column()))
                .and_then(record_from_json),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use finpulse_core::RawValue;

    #[test]
    fn arrays_and_ndjson_decode_with_positions() {
        let d = decode_body(br#"[{"type":"payment","amount_fen":5},{"type":"x"}]"#).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].position, Position::Index(1));
        let rec = d[0].record.as_ref().unwrap();
        assert!(rec.fields.contains(&("amount_fen".into(), RawValue::Int(5))));
        let d = decode_body(b"{\"a\":1}\n\n{\"b\":true}\n").unwrap();
        assert_eq!(d.iter().map(|x| x.position).collect::<Vec<_>>(), vec![Position::Line(1), Position::Line(3)]);
    }

    #[test]
    fn malformed_json_array_reports_line_and_column() {
        let err = decode_body(b"[{\"a\":1},\n {\"b\": }]").unwrap_err();
        match err {
            FormatError::Json { line, column, .. } => assert_eq!((line, column), (2, 8)),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_malformed_ndjson_line_fails_alone() {
        let d = decode_body(b"{\"a\":1}\n{oops}\n{\"c\":[1]}\n{\"d\":1}").unwrap();
        assert!(d[0].record.is_ok());
        assert!(d[1].record.as_ref().unwrap_err().contains("malformed JSON"));
        assert!(d[2].record.as_ref().unwrap_err().contains("field 'c'"));
        assert!(d[3].record.is_ok());
    }

    #[test]
    fn invalid_utf8_and_non_records_are_refused() {
        assert!(matches!(decode_body(b"[{\"a\":\"\xff\"}]"), Err(FormatError::Utf8(7))));
        assert!(matches!(decode_body(b"42"), Err(FormatError::NotRecords)));
        let d = decode_body(b"[1, {\"a\":1}]").unwrap();
        assert!(d[0].record.is_err() && d[1].record.is_ok());
        let d = decode_body(br#"[{"big": 18446744073709551615}]"#).unwrap();
        assert!(d[0].record.as_ref().unwrap_err().contains("out of the 64-bit"));
    }
}
