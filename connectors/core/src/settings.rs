//! What every connector checks in its settings, said once.

use crate::ConnectorError;

/// `page_size`, refused when zero (a scan of zero-row pages would never end).
pub fn page_size(page_size: u32) -> Result<u32, ConnectorError> {
    match page_size {
        0 => Err(ConnectorError::Config(
            "page_size must be at least 1".to_owned(),
        )),
        rows => Ok(rows),
    }
}

/// The site root of `base_url` (see [`site_root`]), once `page_size` is known to be usable:
/// the check every connector makes of the two settings they all have.
pub fn site(base_url: &str, page_size: u32) -> Result<String, ConnectorError> {
    self::page_size(page_size)?;
    Ok(site_root(base_url))
}

/// `base_url` without a trailing `/`, so paths can be joined with one.
pub fn site_root(base_url: &str) -> String {
    base_url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_no_rows_is_refused() {
        assert!(page_size(0).is_err());
        assert_eq!(page_size(100).ok(), Some(100));
    }

    #[test]
    fn the_site_root_has_no_trailing_slash() {
        assert_eq!(
            site_root("https://erp.example.com//"),
            "https://erp.example.com"
        );
    }
}
