//! Bounds on untrusted documents, checked while they are read and never by recursing on
//! their depth: a body nested thousands of levels deep is refused after one flat pass
//! instead of overflowing the stack of the thread that parses (or drops) it.

use serde_json::Value;

use crate::EpcisError;

/// Nesting a document may have unless configured otherwise (`limits.max_nesting_depth`):
/// the standard's own structure needs about eight levels, extensions the rest.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// How deep and how wide one document may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// JSON arrays and objects, or XML elements, inside one another.
    pub max_depth: usize,
    /// Attributes on one XML element.
    pub max_attributes: usize,
    /// Namespace declarations in one XML document.
    pub max_namespaces: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self::with_depth(DEFAULT_MAX_DEPTH)
    }
}

impl Bounds {
    /// The default widths with `max_depth`.
    pub fn with_depth(max_depth: usize) -> Self {
        Self {
            max_depth,
            max_attributes: 64,
            max_namespaces: 64,
        }
    }

    /// The error for a document nesting `depth` levels deep.
    pub fn too_deep(&self, what: &str, depth: usize) -> EpcisError {
        EpcisError::OverLimit(format!(
            "the {what} nests {depth} levels deep; at most {} (limits.max_nesting_depth)",
            self.max_depth
        ))
    }
}

/// The depth at which JSON text first nests deeper than `max` (`[`/`{` outside strings).
pub fn json_nesting_beyond(json: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parses untrusted JSON text whose nesting is first checked against `bounds`.
pub fn parse_json(json: &[u8], bounds: &Bounds) -> Result<Value, EpcisError> {
    if let Some(depth) = json_nesting_beyond(json, bounds.max_depth) {
        return Err(bounds.too_deep("JSON", depth));
    }
    serde_json::from_slice(json).map_err(|err| EpcisError::MalformedJson(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_json_is_refused_without_parsing() {
        let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        let err = parse_json(deep.as_bytes(), &Bounds::default()).expect_err("too deep");
        assert!(err.to_string().contains("33 levels"), "{err}");
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(r#"{{"a": "{}"}}"#, "[{".repeat(100));
        assert!(parse_json(text.as_bytes(), &Bounds::default()).is_ok());
    }
}
