//! Connector errors: what went wrong talking to an ERP/PLM system, typed so the sync can
//! decide (re-authenticate, back off, skip a record, give up) and the run report can say it.

use std::time::Duration;

/// Errors of a connector.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The connector's settings are unusable (missing secret, bad URL).
    #[error("configuration: {0}")]
    Config(String),
    /// The system refused the credentials (after one re-authentication).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The credentials are valid but lack a permission.
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// A write was refused for a missing or stale CSRF token (after one refetch).
    #[error("CSRF token refused: {0}")]
    Csrf(String),
    /// The system does not know the resource.
    #[error("not found: {0}")]
    NotFound(String),
    /// The system kept throttling after every retry.
    #[error("rate limited{}: {message}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// What the system last asked us to wait.
        retry_after: Option<Duration>,
        /// The system's message.
        message: String,
    },
    /// The system answered with an error status.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The system's own message, decoded from its error body.
        message: String,
    },
    /// A response was not what the documented API returns.
    #[error("malformed response: {field}: {reason}")]
    Malformed {
        /// The offending field (JSON path).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The request never got an answer (connect error, timeout).
    #[error("transport: {0}")]
    Transport(String),
}

impl ConnectorError {
    /// A malformed-response error at `field`.
    pub fn malformed(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Malformed {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Whether re-authenticating may cure it.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Auth(_))
    }

    /// Whether sending again later may succeed: throttling, unavailability and lost
    /// answers may pass; a refusal of the document itself or of our credentials will not
    /// until someone changes something.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Transport(_) | Self::Csrf(_) => true,
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Config(_)
            | Self::Auth(_)
            | Self::Forbidden(_)
            | Self::NotFound(_)
            | Self::Malformed { .. } => false,
        }
    }
}

/// The human message in a vendor's error body: SAP OData (`error.message.value`), OData v4
/// and Odoo JSON-2 (`error.message`, `message`), Frappe (`_server_messages`, a JSON string
/// of JSON strings, or `exception`). Falls back to the body itself, shortened.
pub fn vendor_message(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return shorten(body);
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    if let Some(message) = json.pointer("/error/message/value").and_then(text) {
        return message;
    }
    if let Some(message) = json.pointer("/error/data/message").and_then(text) {
        return message;
    }
    if let Some(message) = json.pointer("/error/message").and_then(text) {
        return message;
    }
    if let Some(messages) = json.get("_server_messages").and_then(|v| v.as_str())
        && let Ok(list) = serde_json::from_str::<Vec<String>>(messages)
    {
        let decoded: Vec<String> = list
            .iter()
            .map(|m| {
                serde_json::from_str::<serde_json::Value>(m)
                    .ok()
                    .and_then(|v| v.get("message").and_then(text))
                    .unwrap_or_else(|| m.clone())
            })
            .collect();
        if !decoded.is_empty() {
            return decoded.join("; ");
        }
    }
    for key in ["exception", "message", "exc_type"] {
        if let Some(message) = json.get(key).and_then(text) {
            return message;
        }
    }
    shorten(body)
}

fn shorten(body: &str) -> String {
    const LIMIT: usize = 300;
    let trimmed = body.trim();
    match trimmed.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &trimmed[..end]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::vendor_message;

    #[test]
    fn vendor_messages_are_decoded() {
        let sap = r#"{"error":{"code":"RU/505","message":{"lang":"en","value":"Order 1000123 is not released"}}}"#;
        assert_eq!(vendor_message(sap), "Order 1000123 is not released");
        let frappe = r#"{"exc_type":"ValidationError","_server_messages":"[\"{\\\"message\\\": \\\"Insufficient stock\\\"}\"]"}"#;
        assert_eq!(vendor_message(frappe), "Insufficient stock");
        let odoo_rpc = r#"{"jsonrpc":"2.0","id":7,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"odoo.exceptions.AccessError","message":"no access"}}}"#;
        assert_eq!(vendor_message(odoo_rpc), "no access");
        let odoo_json2 =
            r#"{"name":"werkzeug.exceptions.Unauthorized","message":"Invalid apikey"}"#;
        assert_eq!(vendor_message(odoo_json2), "Invalid apikey");
        assert_eq!(
            vendor_message("<html>Bad gateway</html>"),
            "<html>Bad gateway</html>"
        );
    }
}
