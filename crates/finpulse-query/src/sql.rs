//! Values and names spliced into SQL text: the one place they are quoted.
//!
//! DataFusion's dialect reads a text literal between single quotes with a quote doubled inside
//! and no backslash escapes, and an identifier between double quotes likewise.

/// A quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted SQL text literal: whatever `value` holds, it stays one literal.
pub fn text_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quoted_text_and_names_stay_one_literal_and_one_name() {
        let ctx = datafusion::prelude::SessionContext::new();
        let hostile = "q' OR '1'='1 \\' --";
        let sql = format!("SELECT {} AS {}", text_literal(hostile), ident("we\"ird name"));
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        assert_eq!(batches[0].schema().field(0).name(), "we\"ird name");
        let values = crate::text_values(batches[0].column(0)).unwrap();
        assert_eq!(values, vec![Some(hostile.to_string())]);
    }
}
