//! Reading one vendor record without panicking: every accessor names the field it could
//! not read, so a bad record is reported (`Malformed`) and its page still syncs. Empty
//! values arrive as `null`, `""` or (Odoo) `false`; all three read as absent.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::paging::Malformed;

/// One record being read.
pub struct Fields<'a> {
    record: &'a Value,
    key: String,
}

fn is_empty(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false)) || value.as_str() == Some("")
}

impl<'a> Fields<'a> {
    /// Reads `record`, known in reports by its `key_field` (or `?`).
    pub fn new(record: &'a Value, key_field: &str) -> Self {
        let key = record
            .pointer(key_field)
            .or_else(|| record.get(key_field))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "?".to_owned());
        Self { record, key }
    }

    /// The record's key, for reports.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A malformed-record report for `field`.
    pub fn malformed(&self, field: &str, reason: impl Into<String>) -> Malformed {
        Malformed {
            key: self.key.clone(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The raw value at `field` (a name or a JSON pointer), if present and not empty.
    pub fn value(&self, field: &str) -> Option<&'a Value> {
        let value = if field.starts_with('/') {
            self.record.pointer(field)
        } else {
            self.record.get(field)
        };
        value.filter(|v| !is_empty(v))
    }

    /// A required text field (numbers are taken as their text).
    pub fn text(&self, field: &str) -> Result<String, Malformed> {
        match self.value(field) {
            None => Err(self.malformed(field, "required but missing or empty")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(self.malformed(field, format!("expected text, got {other}"))),
        }
    }

    /// An optional text field; a value of another type is a malformed record.
    pub fn opt_text(&self, field: &str) -> Result<Option<String>, Malformed> {
        self.value(field).map(|_| self.text(field)).transpose()
    }

    /// A required decimal, sent as a JSON number or a numeric string (`"50.000"`).
    pub fn decimal(&self, field: &str) -> Result<Decimal, Malformed> {
        match self.value(field) {
            None => Err(self.malformed(field, "required but missing or empty")),
            Some(value) => self.to_decimal(field, value),
        }
    }

    /// An optional decimal; absent reads as zero.
    pub fn decimal_or_zero(&self, field: &str) -> Result<Decimal, Malformed> {
        match self.value(field) {
            None => Ok(Decimal::ZERO),
            Some(value) => self.to_decimal(field, value),
        }
    }

    fn to_decimal(&self, field: &str, value: &Value) -> Result<Decimal, Malformed> {
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_owned(),
            other => return Err(self.malformed(field, format!("expected a number, got {other}"))),
        };
        text.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&text))
            .map(|d| d.normalize())
            .map_err(|_| self.malformed(field, format!("`{text}` is not a number")))
    }

    /// A flag sent as `1`/`0`, `true`/`false` or SAP's `"X"`/`""`.
    pub fn flag(&self, field: &str) -> bool {
        match self.value(field) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
            Some(Value::String(s)) => matches!(s.as_str(), "X" | "x" | "1" | "true"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_values_in_every_vendor_spelling_read_as_absent() {
        let record = json!({"name": "WO-1", "a": false, "b": "", "c": null, "qty": "50.000", "n": 2.5, "flag": "X"});
        let fields = Fields::new(&record, "name");
        for field in ["a", "b", "c", "missing"] {
            assert_eq!(fields.opt_text(field), Ok(None), "{field}");
        }
        assert_eq!(
            fields.decimal("qty").map(|d| d.to_string()),
            Ok("50".to_owned())
        );
        assert_eq!(
            fields.decimal("n").map(|d| d.to_string()),
            Ok("2.5".to_owned())
        );
        assert!(fields.flag("flag"));
        let error = fields.text("b").expect_err("empty");
        assert_eq!((error.key.as_str(), error.field.as_str()), ("WO-1", "b"));
        assert!(fields.decimal("name").is_err());
    }
}
