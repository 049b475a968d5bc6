//! The event hash's one spelling for a GS1 identifier: the constrained canonical Digital
//! Link on `https://id.gs1.org`, finest identification level only, no query string.
//!
//! This is not `tracery-gs1`'s canonical link: the hash standard fixes its own rules for
//! which characters are percent-encoded (only `!()*+,:`, with URN escapes left as
//! written) and which inputs are recognised at all, and the golden vectors depend on
//! them, so the rules are followed here character for character.

use tracery_gs1::charset::with_check_digit;

const ROOT: &str = "https://id.gs1.org";

/// The canonical Digital Link for an EPC URN, EPC class or pattern URN, or a GS1 Digital
/// Link URI; `None` for anything else.
pub fn normalise(uri: &str) -> Option<String> {
    if let Some(rest) = uri.strip_prefix("urn:epc:id:") {
        return instance_urn(rest);
    }
    if let Some(rest) = uri.strip_prefix("urn:epc:class:lgtin:") {
        let [prefix, item, lot] = parts(rest)?;
        urn_chars(lot, 20).then_some(())?;
        return Some(format!(
            "{ROOT}/01/{}/10/{}",
            gtin(prefix, item)?,
            encode(lot)
        ));
    }
    if let Some(rest) = uri.strip_prefix("urn:epc:idpat:") {
        return pattern_urn(rest);
    }
    digital_link(uri)
}

fn instance_urn(rest: &str) -> Option<String> {
    let (scheme, body) = rest.split_once(':')?;
    match scheme {
        "sgtin" => {
            let [prefix, item, serial] = parts(body)?;
            urn_chars(serial, 20).then_some(())?;
            Some(format!(
                "{ROOT}/01/{}/21/{}",
                gtin(prefix, item)?,
                encode(serial)
            ))
        }
        "sscc" => {
            let [prefix, serial_ref] = two(body)?;
            (digits(prefix, serial_ref, 17) && !serial_ref.is_empty()).then_some(())?;
            let raw = format!("{}{prefix}{}", &serial_ref[..1], &serial_ref[1..]);
            Some(format!("{ROOT}/00/{}", with_check_digit(&raw)?))
        }
        "sgln" => {
            let [prefix, location, extension] = parts(body)?;
            (digits(prefix, location, 12) && urn_chars(extension, 20)).then_some(())?;
            let gln = with_check_digit(&format!("{prefix}{location}"))?;
            Some(if extension == "0" {
                format!("{ROOT}/414/{gln}")
            } else {
                format!("{ROOT}/414/{gln}/254/{}", encode(extension))
            })
        }
        "grai" => {
            let [prefix, asset_type, serial] = parts(body)?;
            (digits(prefix, asset_type, 12) && urn_chars(serial, 16)).then_some(())?;
            let grai = with_check_digit(&format!("0{prefix}{asset_type}"))?;
            Some(format!("{ROOT}/8003/{grai}{}", encode(serial)))
        }
        "giai" => {
            let [prefix, asset] = two(body)?;
            (company_prefix(prefix) && urn_chars(asset, 30 - prefix.len())).then_some(())?;
            Some(format!("{ROOT}/8004/{prefix}{}", encode(asset)))
        }
        "gsrn" | "gsrnp" => {
            let [prefix, service] = two(body)?;
            digits(prefix, service, 17).then_some(())?;
            let ai = if scheme == "gsrn" { "8018" } else { "8017" };
            Some(format!(
                "{ROOT}/{ai}/{}",
                with_check_digit(&format!("{prefix}{service}"))?
            ))
        }
        "gdti" => {
            let [prefix, document_type, serial] = parts(body)?;
            (digits(prefix, document_type, 12) && urn_chars(serial, 17)).then_some(())?;
            let gdti = with_check_digit(&format!("{prefix}{document_type}"))?;
            Some(format!("{ROOT}/253/{gdti}{}", encode(serial)))
        }
        "sgcn" => {
            let [prefix, coupon, serial] = parts(body)?;
            let serial_ok = (1..=12).contains(&serial.len()) && all_digits(serial);
            (digits(prefix, coupon, 12) && serial_ok).then_some(())?;
            let gcn = with_check_digit(&format!("{prefix}{coupon}"))?;
            Some(format!("{ROOT}/255/{gcn}{serial}"))
        }
        "cpi" => {
            let (head, serial) = body.rsplit_once('.')?;
            let [prefix, part] = two(head)?;
            let serial_ok = (1..=12).contains(&serial.len()) && all_digits(serial);
            (company_prefix(prefix) && !part.is_empty() && serial_ok).then_some(())?;
            Some(format!(
                "{ROOT}/8010/{}/8011/{serial}",
                encode(&format!("{prefix}{part}"))
            ))
        }
        "ginc" => {
            let [prefix, consignment] = two(body)?;
            (company_prefix(prefix) && urn_chars(consignment, 30 - prefix.len())).then_some(())?;
            Some(format!("{ROOT}/401/{prefix}{}", encode(consignment)))
        }
        "gsin" => {
            let [prefix, shipper] = two(body)?;
            digits(prefix, shipper, 16).then_some(())?;
            Some(format!(
                "{ROOT}/402/{}",
                with_check_digit(&format!("{prefix}{shipper}"))?
            ))
        }
        "pgln" => {
            let [prefix, party] = two(body)?;
            digits(prefix, party, 12).then_some(())?;
            Some(format!(
                "{ROOT}/417/{}",
                with_check_digit(&format!("{prefix}{party}"))?
            ))
        }
        "itip" => {
            let mut fields = body.splitn(5, '.');
            let (prefix, item, piece, total, serial) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            let counts_ok = [piece, total].iter().all(|v| v.len() == 2 && all_digits(v));
            (counts_ok && urn_chars(serial, 20)).then_some(())?;
            Some(format!(
                "{ROOT}/8006/{}{piece}{total}/21/{}",
                gtin(prefix, item)?,
                encode(serial)
            ))
        }
        "upui" => {
            let [prefix, item, tpx] = parts(body)?;
            urn_chars(tpx, 28).then_some(())?;
            Some(format!(
                "{ROOT}/01/{}/235/{}",
                gtin(prefix, item)?,
                encode(tpx)
            ))
        }
        _ => None,
    }
}

fn pattern_urn(rest: &str) -> Option<String> {
    let (scheme, body) = rest.split_once(':')?;
    match scheme {
        "sgtin" | "upui" => {
            let [prefix, item, star] = parts(body)?;
            (star == "*").then_some(())?;
            Some(format!("{ROOT}/01/{}", gtin(prefix, item)?))
        }
        "grai" | "gdti" | "sgcn" => {
            let [prefix, reference, star] = parts(body)?;
            (star == "*" && digits(prefix, reference, 12)).then_some(())?;
            let (ai, raw) = match scheme {
                "grai" => ("8003", format!("0{prefix}{reference}")),
                "gdti" => ("253", format!("{prefix}{reference}")),
                _ => ("255", format!("{prefix}{reference}")),
            };
            Some(format!("{ROOT}/{ai}/{}", with_check_digit(&raw)?))
        }
        "cpi" => {
            let [prefix, part, star] = parts(body)?;
            (star == "*" && company_prefix(prefix) && !part.is_empty()).then_some(())?;
            Some(format!(
                "{ROOT}/8010/{}",
                encode(&format!("{prefix}{part}"))
            ))
        }
        "itip" => {
            let mut fields = body.splitn(5, '.');
            let (prefix, item, piece, total, star) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            (star == "*").then_some(())?;
            Some(format!("{ROOT}/8006/{}{piece}{total}", gtin(prefix, item)?))
        }
        _ => None,
    }
}

/// Primary keys a Digital Link path may carry, as AI or as short name.
const PRIMARY_KEYS: &[(&str, &str)] = &[
    ("01", "gtin"),
    ("8006", "itip"),
    ("8010", "cpid"),
    ("414", "gln"),
    ("417", "party"),
    ("8017", "gsrnp"),
    ("8018", "gsrn"),
    ("255", "gcn"),
    ("00", "sscc"),
    ("253", "gdti"),
    ("401", "ginc"),
    ("402", "gsin"),
    ("8003", "grai"),
    ("8004", "giai"),
];

/// The order in which a foreign resolver's path is searched for its primary key.
const REBASE_ORDER: &[&str] = &[
    "00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8017",
    "8018",
];

const SHORT_NAMES: &[(&str, &str)] = &[
    ("gtin", "01"),
    ("itip", "8006"),
    ("cpid", "8010"),
    ("gln", "414"),
    ("party", "417"),
    ("gsrnp", "8017"),
    ("gsrn", "8018"),
    ("gcn", "255"),
    ("sscc", "00"),
    ("gdti", "253"),
    ("ginc", "401"),
    ("gsin", "402"),
    ("grai", "8003"),
    ("giai", "8004"),
    ("cpv", "22"),
    ("lot", "10"),
    ("ser", "21"),
];

fn digital_link(uri: &str) -> Option<String> {
    let after_scheme = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    let path = after_scheme.split(['?', '#']).next().unwrap_or_default();
    let has_primary_key = path.split('/').collect::<Vec<_>>().windows(2).any(|pair| {
        let is_key = PRIMARY_KEYS
            .iter()
            .any(|(ai, name)| pair[0] == *ai || pair[0] == *name);
        is_key && pair[1].len() > 4 && pair[1].bytes().take(4).all(|b| b.is_ascii_digit())
    });
    if !has_primary_key {
        return None;
    }
    let mut uri = uri.split('?').next().unwrap_or_default().to_owned();
    for (name, ai) in SHORT_NAMES {
        uri = uri.replace(&format!("/{name}/"), &format!("/{ai}/"));
    }
    if !on_canonical_root(&uri) {
        let start = REBASE_ORDER
            .iter()
            .find_map(|ai| uri.find(&format!("/{ai}/")));
        if let Some(start) = start {
            uri = format!("{ROOT}{}", &uri[start..]);
        }
    }
    let path = uri.strip_prefix(ROOT)?.trim_start_matches('/').to_owned();
    let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    if segments.first().map(String::as_str) == Some("01")
        && let Some(gtin) = segments.get_mut(1)
    {
        let digit_run = gtin.bytes().take_while(u8::is_ascii_digit).count();
        let padding = match digit_run {
            13 => 1,
            12 => 2,
            8..=11 => 6,
            _ => 0,
        };
        gtin.insert_str(0, &"0".repeat(padding));
    }
    let segments = drop_coarser_qualifiers(segments);
    let uri = format!("{ROOT}/{}", segments.join("/"));
    valid_output(&segments).then_some(uri)
}

fn on_canonical_root(uri: &str) -> bool {
    let Some(path) = uri.strip_prefix("https://id.gs1.org/") else {
        return false;
    };
    let mut segments = path.split('/');
    let key_ok = matches!(
        segments.next(),
        Some(
            "01" | "8006"
                | "8010"
                | "414"
                | "417"
                | "8017"
                | "8018"
                | "255"
                | "00"
                | "253"
                | "401"
                | "402"
                | "8003"
                | "8004"
        )
    );
    key_ok
        && segments
            .next()
            .is_some_and(|v| v.len() > 4 && v.bytes().take(4).all(|b| b.is_ascii_digit()))
}

/// Drops the CPV (AI 22), and the lot when a serial is present: only the finest level
/// of identification takes part in the hash.
fn drop_coarser_qualifiers(segments: Vec<String>) -> Vec<String> {
    let key = segments.first().cloned().unwrap_or_default();
    if key != "01" && key != "8006" {
        return segments;
    }
    let mut pairs: Vec<(String, String)> = segments[2.min(segments.len())..]
        .chunks(2)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect();
    pairs.retain(|(ai, _)| ai != "22");
    if pairs.iter().any(|(ai, _)| ai == "21") {
        pairs.retain(|(ai, _)| ai != "10");
    }
    let mut out: Vec<String> = segments.into_iter().take(2).collect();
    for (ai, value) in pairs {
        out.push(ai);
        out.push(value);
    }
    out
}

fn valid_output(segments: &[String]) -> bool {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let dl = |v: &str, max: usize| v.len() <= max && v.bytes().all(is_dl_char);
    match parts.as_slice() {
        ["00", sscc] => sscc.len() == 18 && all_digits(sscc),
        ["01", gtin] => gtin.len() == 14 && all_digits(gtin),
        ["01", gtin, ai, value] => {
            let max = match *ai {
                "21" | "10" => 20,
                "235" => 28,
                _ => return false,
            };
            gtin.len() == 14 && all_digits(gtin) && dl(value, max)
        }
        ["253", gdti] => starts_with_digits(gdti, 13) && dl(&gdti[13..], 17),
        ["255", gcn] => starts_with_digits(gcn, 13) && gcn.len() <= 25 && all_digits(gcn),
        ["401", ginc] => dl(ginc, 30),
        ["402", gsin] => gsin.len() == 17 && all_digits(gsin),
        ["414", gln] | ["417", gln] => gln.len() == 13 && all_digits(gln),
        ["414", gln, "254", extension] => gln.len() == 13 && all_digits(gln) && dl(extension, 20),
        ["8003", grai] => starts_with_digits(grai, 14) && dl(&grai[14..], 16),
        ["8004", giai] => dl(giai, 30),
        ["8006", itip] => itip.len() == 18 && all_digits(itip),
        ["8006", itip, "21" | "10", value] => itip.len() == 18 && all_digits(itip) && dl(value, 20),
        ["8010", cpid] => cpid_ok(cpid),
        ["8010", cpid, "8011", serial] => cpid_ok(cpid) && serial.len() <= 12 && all_digits(serial),
        ["8017", gsrn] | ["8018", gsrn] => gsrn.len() == 18 && all_digits(gsrn),
        _ => false,
    }
}

fn cpid_ok(cpid: &str) -> bool {
    cpid.len() <= 30
        && cpid
            .bytes()
            .all(|b| b == b'#' || b == b'-' || b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// The characters the hash's Digital Link output allows in an alphanumeric value.
fn is_dl_char(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'-' | b'.' | b';'..=b'?' | b'_') || b.is_ascii_alphanumeric()
}

/// The GTIN-14 of an SGTIN-style company prefix and item reference (13 digits together).
fn gtin(prefix: &str, item: &str) -> Option<String> {
    (digits(prefix, item, 13) && !item.is_empty()).then_some(())?;
    with_check_digit(&format!("{}{prefix}{}", &item[..1], &item[1..]))
}

fn parts(body: &str) -> Option<[&str; 3]> {
    let mut fields = body.splitn(3, '.');
    Some([fields.next()?, fields.next()?, fields.next()?])
}

fn two(body: &str) -> Option<[&str; 2]> {
    body.split_once('.').map(|(a, b)| [a, b])
}

fn company_prefix(prefix: &str) -> bool {
    (6..=12).contains(&prefix.len()) && all_digits(prefix)
}

/// A company prefix and a reference that together have `total` digits.
fn digits(prefix: &str, reference: &str, total: usize) -> bool {
    company_prefix(prefix) && prefix.len() + reference.len() == total && all_digits(reference)
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

fn starts_with_digits(text: &str, count: usize) -> bool {
    text.len() >= count && all_digits(&text[..count])
}

/// 1 to `max` URN characters, a `%xx` escape counting as one.
fn urn_chars(text: &str, max: usize) -> bool {
    let bytes = text.as_bytes();
    let (mut i, mut count) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escape_ok = bytes.get(i + 1).is_some_and(|b| (b'2'..=b'7').contains(b))
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !escape_ok {
                return false;
            }
            i += 3;
        } else if bytes[i].is_ascii_alphanumeric() || b"!')(*+,.:;=_-".contains(&bytes[i]) {
            i += 1;
        } else {
            return false;
        }
        count += 1;
    }
    (1..=max).contains(&count)
}

/// Percent-encodes the characters GS1 Digital Link forbids that URNs allow.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '!' => out.push_str("%21"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '*' => out.push_str("%2A"),
            '+' => out.push_str("%2B"),
            ',' => out.push_str("%2C"),
            ':' => out.push_str("%3A"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn epc_urns_become_canonical_links() {
        let cases = [
            (
                "urn:epc:id:sgtin:0614141.107346.2017",
                "https://id.gs1.org/01/10614141073464/21/2017",
            ),
            (
                "urn:epc:id:sscc:4012345.0000000333",
                "https://id.gs1.org/00/040123450000003338",
            ),
            (
                "urn:epc:id:sgln:4012345.00011.987",
                "https://id.gs1.org/414/4012345000115/254/987",
            ),
            (
                "urn:epc:id:sgln:4012345.00011.0",
                "https://id.gs1.org/414/4012345000115",
            ),
            (
                "urn:epc:class:lgtin:4012345.012345.998877",
                "https://id.gs1.org/01/04012345123456/10/998877",
            ),
            (
                "urn:epc:idpat:sgtin:4012345.012345.*",
                "https://id.gs1.org/01/04012345123456",
            ),
            (
                "urn:epc:id:pgln:4012345.00000",
                "https://id.gs1.org/417/4012345000009",
            ),
        ];
        for (urn, link) in cases {
            assert_eq!(normalise(urn).as_deref(), Some(link), "{urn}");
        }
    }

    #[test]
    fn digital_links_move_to_the_canonical_root_with_the_finest_key_only() {
        assert_eq!(
            normalise("https://id.gs1.de/01/04012345999990/21/XYZ-1234").as_deref(),
            Some("https://id.gs1.org/01/04012345999990/21/XYZ-1234")
        );
        assert_eq!(
            normalise("https://example.com/gtin/4012345999990/lot/A1/ser/7?17=261231").as_deref(),
            Some("https://id.gs1.org/01/04012345999990/21/7")
        );
    }

    #[test]
    fn other_text_is_left_alone() {
        for text in [
            "OBSERVE",
            "urn:epcglobal:cbv:bt:4012345000009:ASN1099",
            "",
            "2.5",
        ] {
            assert_eq!(normalise(text), None, "{text}");
        }
    }
}
