//! EPC binary encodings of the GS1 EPC Tag Data Standard (TDS 2.x §14): the hex an RFID
//! reader reports from a tag's EPC bank, to and from tag URIs (`urn:epc:tag:sgtin-96:…`)
//! and pure-identity URNs (`urn:epc:id:sgtin:…`), for SGTIN-96/-198, SSCC-96,
//! SGLN-96/-195, GRAI-96/-170, GIAI-96/-202 and GID-96.
//!
//! Hand-written: the one Rust crate for this (`gs1` 0.1) decodes only five of these schemes
//! and encodes none. Each scheme is a row of [`SCHEMES`]: a header, a filter, a partition
//! table (where the company prefix ends) and the fields after it; one decoder and one
//! encoder read the rows, so a scheme's layout is written once.
//!
//! Decoding takes the shortest hex (⌈bits/4⌉ digits, as TDS prints it) or the EPC bank's
//! (padded with zeros to a 16-bit word, as readers report it); encoding gives the latter.
//! Errors name the field: `header`, `partition`, `filter`, `company prefix`, `serial`, ...

use std::fmt::Write as _;

use crate::{
    Identifier,
    charset::Charset,
    epc::{push_escaped, unescape},
    error::{Gs1Error, Gs1ErrorKind, Result},
};

/// A field after the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// A decimal number of exactly `digits` digits (leading zeros kept) in `bits` bits.
    Padded { bits: u16, digits: u8 },
    /// A decimal number without leading zeros in `bits` bits.
    Integer { bits: u16 },
    /// Up to `bits / 7` characters of GS1 set 82, seven bits each, zero-terminated.
    Text { bits: u16 },
    /// Bits TDS reserves: written as zeros, not part of the URI.
    Reserved { bits: u16 },
}

/// One row of a partition table: the company prefix's bits and digits, and the field that
/// shares the rest of the partitioned bits with it.
type Partition = (u16, u8, Field);

const fn padded(bits: u16, digits: u8) -> Field {
    Field::Padded { bits, digits }
}

/// SGTIN: company prefix + indicator and item reference, 44 bits, 13 digits.
const SGTIN_PARTITIONS: [Partition; 7] = [
    (40, 12, padded(4, 1)),
    (37, 11, padded(7, 2)),
    (34, 10, padded(10, 3)),
    (30, 9, padded(14, 4)),
    (27, 8, padded(17, 5)),
    (24, 7, padded(20, 6)),
    (20, 6, padded(24, 7)),
];

/// SSCC: company prefix + extension digit and serial reference, 58 bits, 17 digits.
const SSCC_PARTITIONS: [Partition; 7] = [
    (40, 12, padded(18, 5)),
    (37, 11, padded(21, 6)),
    (34, 10, padded(24, 7)),
    (30, 9, padded(28, 8)),
    (27, 8, padded(31, 9)),
    (24, 7, padded(34, 10)),
    (20, 6, padded(38, 11)),
];

/// GRAI: company prefix + asset type, 44 bits, 12 digits.
const GRAI_PARTITIONS: [Partition; 7] = [
    (40, 12, padded(4, 0)),
    (37, 11, padded(7, 1)),
    (34, 10, padded(10, 2)),
    (30, 9, padded(14, 3)),
    (27, 8, padded(17, 4)),
    (24, 7, padded(20, 5)),
    (20, 6, padded(24, 6)),
];

/// SGLN: company prefix + location reference, 41 bits, 12 digits.
const GLN_PARTITIONS: [Partition; 7] = [
    (40, 12, padded(1, 0)),
    (37, 11, padded(4, 1)),
    (34, 10, padded(7, 2)),
    (30, 9, padded(11, 3)),
    (27, 8, padded(14, 4)),
    (24, 7, padded(17, 5)),
    (20, 6, padded(21, 6)),
];

/// GIAI-96: company prefix + an individual asset reference as a number, 82 bits.
const GIAI96_PARTITIONS: [Partition; 7] = [
    (40, 12, Field::Integer { bits: 42 }),
    (37, 11, Field::Integer { bits: 45 }),
    (34, 10, Field::Integer { bits: 48 }),
    (30, 9, Field::Integer { bits: 52 }),
    (27, 8, Field::Integer { bits: 55 }),
    (24, 7, Field::Integer { bits: 58 }),
    (20, 6, Field::Integer { bits: 62 }),
];

/// GIAI-202: company prefix + an individual asset reference as text, 188 bits.
const GIAI202_PARTITIONS: [Partition; 7] = [
    (40, 12, Field::Text { bits: 148 }),
    (37, 11, Field::Text { bits: 151 }),
    (34, 10, Field::Text { bits: 154 }),
    (30, 9, Field::Text { bits: 158 }),
    (27, 8, Field::Text { bits: 161 }),
    (24, 7, Field::Text { bits: 164 }),
    (20, 6, Field::Text { bits: 168 }),
];

/// How one binary scheme lays out its bits.
#[derive(Debug, PartialEq, Eq)]
pub struct Scheme {
    /// The 8-bit header that names it.
    pub header: u8,
    /// Its name in tag URIs (`sgtin-96`).
    pub name: &'static str,
    /// Its pure-identity scheme (`sgtin`).
    pub identity: &'static str,
    /// Its length in bits.
    pub bits: u16,
    /// Filter and partition, then these; `None` for GID, which has neither.
    partitions: Option<&'static [Partition; 7]>,
    /// The fields after the partitioned ones (GID: all of its fields).
    tail: &'static [(&'static str, Field)],
}

/// Every scheme this module reads and writes.
pub const SCHEMES: [Scheme; 10] = [
    Scheme {
        header: 0x30,
        name: "sgtin-96",
        identity: "sgtin",
        bits: 96,
        partitions: Some(&SGTIN_PARTITIONS),
        tail: &[("serial", Field::Integer { bits: 38 })],
    },
    Scheme {
        header: 0x36,
        name: "sgtin-198",
        identity: "sgtin",
        bits: 198,
        partitions: Some(&SGTIN_PARTITIONS),
        tail: &[("serial", Field::Text { bits: 140 })],
    },
    Scheme {
        header: 0x31,
        name: "sscc-96",
        identity: "sscc",
        bits: 96,
        partitions: Some(&SSCC_PARTITIONS),
        tail: &[("reserved", Field::Reserved { bits: 24 })],
    },
    Scheme {
        header: 0x32,
        name: "sgln-96",
        identity: "sgln",
        bits: 96,
        partitions: Some(&GLN_PARTITIONS),
        tail: &[("extension", Field::Integer { bits: 41 })],
    },
    Scheme {
        header: 0x39,
        name: "sgln-195",
        identity: "sgln",
        bits: 195,
        partitions: Some(&GLN_PARTITIONS),
        tail: &[("extension", Field::Text { bits: 140 })],
    },
    Scheme {
        header: 0x33,
        name: "grai-96",
        identity: "grai",
        bits: 96,
        partitions: Some(&GRAI_PARTITIONS),
        tail: &[("serial", Field::Integer { bits: 38 })],
    },
    Scheme {
        header: 0x37,
        name: "grai-170",
        identity: "grai",
        bits: 170,
        partitions: Some(&GRAI_PARTITIONS),
        tail: &[("serial", Field::Text { bits: 112 })],
    },
    Scheme {
        header: 0x34,
        name: "giai-96",
        identity: "giai",
        bits: 96,
        partitions: Some(&GIAI96_PARTITIONS),
        tail: &[],
    },
    Scheme {
        header: 0x38,
        name: "giai-202",
        identity: "giai",
        bits: 202,
        partitions: Some(&GIAI202_PARTITIONS),
        tail: &[],
    },
    Scheme {
        header: 0x35,
        name: "gid-96",
        identity: "gid",
        bits: 96,
        partitions: None,
        tail: &[
            ("general manager number", Field::Integer { bits: 28 }),
            ("object class", Field::Integer { bits: 24 }),
            ("serial", Field::Integer { bits: 36 }),
        ],
    },
];

/// Headers the TDS assigns to schemes this module does not decode (GDTI, GSRN, CPI,
/// SGCN, ITIP, ADI, USDOD, SGTIN+ and the other `+` schemes...): valid EPCs, refused as
/// unsupported rather than as unknown.
const OTHER_ASSIGNED_HEADERS: [u8; 16] = [
    0x2C, 0x2D, 0x2E, 0x2F, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x40, 0x41, 0xF7, 0xF8, 0xF9, 0xFA,
];

/// The longest EPC here, 202 bits, padded to a 16-bit word: 13 words.
const MAX_BYTES: usize = 26;

/// A decoded tag EPC: its scheme, filter and URI components (the company prefix, the
/// field after it and the tail, text unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEpc {
    pub scheme: &'static Scheme,
    /// The filter value, 0–7 (0 for GID, which has none).
    pub filter: u8,
    /// The URI's dot-separated components after the filter, unescaped, one after the
    /// other (decoding allocates once) ...
    components: String,
    /// ... each ending where this says.
    ends: [u8; 3],
    parts: u8,
}

fn error(kind: Gs1ErrorKind, field: &str, detail: impl std::fmt::Display) -> Gs1Error {
    Gs1Error::new(kind, format!("{field}: {detail}"))
}

fn syntax(field: &str, detail: impl std::fmt::Display) -> Gs1Error {
    error(Gs1ErrorKind::Syntax, field, detail)
}

/// Whether `text` looks like EPC hex: hex digits only, as long as some scheme's shortest
/// or word-padded form, and either a letter among them or the header of a scheme decoded
/// here (an all-digit raw element string such as `01…21…` is not hex).
pub fn looks_like_hex(text: &str) -> bool {
    let lengths = [24, 43, 44, 49, 50, 51, 52];
    if !lengths.contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let has_letter = text.bytes().any(|b| b.is_ascii_alphabetic());
    let header = u8::from_str_radix(&text[..2], 16).unwrap_or_default();
    has_letter || SCHEMES.iter().any(|s| s.header == header)
}

impl TagEpc {
    /// The URI's dot-separated components after the filter (company prefix, the field
    /// after it, the tail), unescaped.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        let ends = &self.ends[..usize::from(self.parts)];
        ends.iter().scan(0, |start, &end| {
            let component = self.components.get(*start..usize::from(end));
            *start = usize::from(end);
            component
        })
    }

    fn new(scheme: &'static Scheme, filter: u8) -> Self {
        Self {
            scheme,
            filter,
            components: String::with_capacity(48),
            ends: [0; 3],
            parts: 0,
        }
    }

    /// Ends the component appended last.
    fn end_component(&mut self) {
        if let Some(end) = self.ends.get_mut(usize::from(self.parts)) {
            *end = self.components.len() as u8;
            self.parts += 1;
        }
    }

    /// Decodes EPC hex (either case).
    pub fn from_hex(hex: &str) -> Result<Self> {
        let (bytes, available_bits) = hex_bytes(hex)?;
        let scheme = scheme_of_header(bytes[0])?;
        let bits = usize::from(scheme.bits);
        let padded = bits.div_ceil(16) * 16;
        if available_bits < bits {
            return Err(error(
                Gs1ErrorKind::WrongLength,
                "hex",
                format!(
                    "{} hex digits are {available_bits} bits, fewer than the {bits} of {} (truncated)",
                    hex.len(),
                    scheme.name
                ),
            ));
        }
        if available_bits > padded.max(bits.div_ceil(4) * 4) {
            return Err(error(
                Gs1ErrorKind::WrongLength,
                "hex",
                format!(
                    "{} hex digits are more than the {} of {}",
                    hex.len(),
                    padded / 4,
                    scheme.name
                ),
            ));
        }
        let mut reader = BitReader::new(&bytes, 8);
        scheme.decode(&mut reader)
    }

    /// Reads a tag URI (`urn:epc:tag:sgtin-96:3.0614141.812345.6789`).
    pub fn from_tag_uri(uri: &str) -> Result<Self> {
        crate::check_input_length(uri)?;
        let rest = uri
            .strip_prefix("urn:epc:tag:")
            .ok_or_else(|| syntax("tag URI", "expected urn:epc:tag:<scheme>:..."))?;
        let (name, body) = rest
            .split_once(':')
            .ok_or_else(|| syntax("tag URI", "expected urn:epc:tag:<scheme>:..."))?;
        let scheme = SCHEMES.iter().find(|s| s.name == name).ok_or_else(|| {
            syntax(
                "scheme",
                format!("`{name}` is not a binary scheme decoded here"),
            )
        })?;
        scheme.parse_tag_body(body)
    }

    /// The TDS binary encoding as the EPC bank holds it, padded to a 16-bit word, upper case.
    pub fn to_hex(&self) -> Result<String> {
        let mut writer = BitWriter::default();
        writer.push(u64::from(self.scheme.header), 8);
        self.scheme.encode(self, &mut writer)?;
        Ok(writer.to_hex(usize::from(self.scheme.bits).div_ceil(16) * 16))
    }

    /// `urn:epc:tag:<scheme>:<filter>.<components>` (GID: no filter).
    pub fn tag_uri(&self) -> String {
        let mut uri = String::with_capacity(64);
        uri.push_str("urn:epc:tag:");
        uri.push_str(self.scheme.name);
        uri.push(':');
        if self.scheme.partitions.is_some() {
            let _ = write!(uri, "{}.", self.filter);
        }
        self.push_components(&mut uri);
        uri
    }

    /// The pure-identity URN (`urn:epc:id:sgtin:0614141.812345.6789`).
    pub fn pure_identity(&self) -> String {
        let mut uri = String::with_capacity(64);
        uri.push_str("urn:epc:id:");
        uri.push_str(self.scheme.identity);
        uri.push(':');
        self.push_components(&mut uri);
        uri
    }

    /// The GS1 key it encodes, with the company prefix length; `None` for a GID, which
    /// names no GS1 key.
    pub fn identifier(&self) -> Option<Result<(Identifier, usize)>> {
        (self.scheme.identity != "gid").then(|| Identifier::from_epc_urn(&self.pure_identity()))
    }

    fn push_components(&self, uri: &mut String) {
        let text = self.scheme.has_text();
        for (index, component) in self.components().enumerate() {
            if index > 0 {
                uri.push('.');
            }
            if text {
                push_escaped(uri, component);
            } else {
                uri.push_str(component);
            }
        }
    }
}

/// `hex` as bytes (zero-padded to [`MAX_BYTES`]) and the bits it holds.
fn hex_bytes(hex: &str) -> Result<([u8; MAX_BYTES], usize)> {
    if hex.len() < 2 {
        return Err(error(
            Gs1ErrorKind::WrongLength,
            "hex",
            "no header: fewer than 2 hex digits",
        ));
    }
    if hex.len() > MAX_BYTES * 2 {
        return Err(error(
            Gs1ErrorKind::WrongLength,
            "hex",
            format!(
                "{} hex digits; the longest EPC here has {}",
                hex.len(),
                MAX_BYTES * 2
            ),
        ));
    }
    let mut bytes = [0u8; MAX_BYTES];
    for (index, c) in hex.bytes().enumerate() {
        let nibble = NIBBLES[usize::from(c)];
        if nibble > 0xF {
            return Err(error(
                Gs1ErrorKind::IllegalCharacter,
                "hex",
                format!("{:?} is not a hex digit", c as char),
            )
            .at(index));
        }
        bytes[index / 2] |= nibble << if index % 2 == 0 { 4 } else { 0 };
    }
    Ok((bytes, hex.len() * 4))
}

/// Each byte's value as a hex digit; 0xFF for bytes that are none.
const NIBBLES: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut digit = 0;
    while digit < 16 {
        let lower = b"0123456789abcdef"[digit];
        let upper = b"0123456789ABCDEF"[digit];
        table[lower as usize] = digit as u8;
        table[upper as usize] = digit as u8;
        digit += 1;
    }
    table
};

fn scheme_of_header(header: u8) -> Result<&'static Scheme> {
    if let Some(scheme) = SCHEMES.iter().find(|s| s.header == header) {
        return Ok(scheme);
    }
    let detail = if header == 0 {
        "00 is an unprogrammed tag, not an EPC".to_owned()
    } else if OTHER_ASSIGNED_HEADERS.contains(&header) {
        format!("{header:02X} is an EPC scheme Tracery does not decode")
    } else {
        format!("{header:02X} is assigned to no EPC scheme")
    };
    Err(error(Gs1ErrorKind::Syntax, "header", detail))
}

impl Scheme {
    fn decode(&'static self, reader: &mut BitReader) -> Result<TagEpc> {
        let mut epc = TagEpc::new(self, 0);
        if let Some(partitions) = self.partitions {
            epc.filter = reader.take(3) as u8;
            let partition = reader.take(3) as usize;
            let &(cp_bits, cp_digits, second) = partitions.get(partition).ok_or_else(|| {
                syntax(
                    "partition",
                    format!("{partition} is not in the partition table"),
                )
            })?;
            let company = padded(cp_bits, cp_digits);
            read_field(reader, "company prefix", company, &mut epc)?;
            read_field(reader, self.second_name(), second, &mut epc)?;
        }
        for &(name, field) in self.tail {
            read_field(reader, name, field, &mut epc)?;
        }
        Ok(epc)
    }

    /// Whether a field of it is text, which URIs escape.
    fn has_text(&self) -> bool {
        let text = |field: &Field| matches!(field, Field::Text { .. });
        self.tail.iter().any(|(_, field)| text(field))
            || self.partitions.is_some_and(|table| text(&table[0].2))
    }

    fn second_name(&self) -> &'static str {
        match self.identity {
            "sgtin" => "indicator and item reference",
            "sscc" => "extension and serial reference",
            "sgln" => "location reference",
            "grai" => "asset type",
            _ => "individual asset reference",
        }
    }

    /// The fields in URI order with their names, once the company prefix is known.
    fn fields(&self, company_prefix_digits: usize) -> Result<Vec<(&'static str, Field)>> {
        let mut fields = Vec::with_capacity(4);
        if let Some(partitions) = self.partitions {
            let &(cp_bits, cp_digits, second) = partitions
                .iter()
                .find(|(_, digits, _)| usize::from(*digits) == company_prefix_digits)
                .ok_or_else(|| {
                    error(
                        Gs1ErrorKind::WrongLength,
                        "company prefix",
                        format!("{company_prefix_digits} digits; a company prefix has 6 to 12"),
                    )
                })?;
            fields.push(("company prefix", padded(cp_bits, cp_digits)));
            fields.push((self.second_name(), second));
        }
        fields.extend(self.tail.iter().copied());
        Ok(fields)
    }

    fn parse_tag_body(&'static self, body: &str) -> Result<TagEpc> {
        let (filter, body) = match self.partitions {
            Some(_) => {
                let (filter, rest) = body
                    .split_once('.')
                    .ok_or_else(|| syntax("filter", "expected <filter>.<company prefix>..."))?;
                (parse_filter(filter)?, rest)
            }
            None => (0, body),
        };
        let company_prefix_digits = body.split('.').next().unwrap_or_default().len();
        let fields: Vec<(&str, Field)> = self
            .fields(company_prefix_digits)?
            .into_iter()
            .filter(|(_, f)| !matches!(f, Field::Reserved { .. }))
            .collect();
        // Text may hold dots: only the last component takes the rest.
        let parts: Vec<&str> = body.splitn(fields.len(), '.').collect();
        if parts.len() != fields.len() {
            return Err(syntax(
                self.name,
                format!(
                    "has {} dot-separated parts after the filter, not {}",
                    fields.len(),
                    parts.len()
                ),
            ));
        }
        let mut epc = TagEpc::new(self, filter);
        for (&(name, field), part) in fields.iter().zip(parts) {
            epc.components
                .push_str(&checked_component(name, field, part)?);
            epc.end_component();
        }
        Ok(epc)
    }

    fn encode(&self, epc: &TagEpc, writer: &mut BitWriter) -> Result<()> {
        let company_prefix_digits = epc.components().next().map_or(0, str::len);
        let fields = self.fields(company_prefix_digits)?;
        if let Some(partitions) = self.partitions {
            let partition = partitions
                .iter()
                .position(|(_, digits, _)| usize::from(*digits) == company_prefix_digits)
                .unwrap_or_default();
            writer.push(u64::from(epc.filter), 3);
            writer.push(partition as u64, 3);
        }
        let mut components = epc.components();
        for (name, field) in fields {
            match field {
                Field::Reserved { bits } => writer.push(0, bits),
                _ => {
                    let value = components.next().ok_or_else(|| syntax(name, "missing"))?;
                    write_field(writer, name, field, value)?;
                }
            }
        }
        Ok(())
    }
}

fn parse_filter(text: &str) -> Result<u8> {
    match text.parse::<u8>() {
        Ok(filter) if filter <= 7 && text.len() == 1 => Ok(filter),
        _ => Err(error(
            Gs1ErrorKind::Syntax,
            "filter",
            format!("`{text}` is not 0-7 (3 bits)"),
        )),
    }
}

/// A URI component checked against its field; text comes back unescaped.
fn checked_component(name: &str, field: Field, part: &str) -> Result<String> {
    match field {
        Field::Padded { digits, .. } => {
            if part.len() == usize::from(digits) && part.bytes().all(|b| b.is_ascii_digit()) {
                Ok(part.to_owned())
            } else {
                Err(error(
                    Gs1ErrorKind::WrongLength,
                    name,
                    format!("`{part}` must be {digits} digits with this company prefix"),
                ))
            }
        }
        Field::Integer { bits } => {
            integer_value(name, bits, part)?;
            Ok(part.to_owned())
        }
        Field::Text { bits } => text_value(name, bits, part),
        Field::Reserved { .. } => Ok(String::new()),
    }
}

/// The number `text` spells, checked to fit `bits` and to have no leading zero.
fn integer_value(name: &str, bits: u16, text: &str) -> Result<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(
            Gs1ErrorKind::IllegalCharacter,
            name,
            format!(
                "`{text}` is not a number; this scheme encodes only digits (a text scheme such as -198 takes others)"
            ),
        ));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(error(
            Gs1ErrorKind::Syntax,
            name,
            format!(
                "`{text}` has a leading zero, which a {bits}-bit number cannot keep (a text scheme can)"
            ),
        ));
    }
    match text.parse::<u64>() {
        Ok(value) if bits >= 64 || value < 1u64 << bits => Ok(value),
        _ => Err(error(
            Gs1ErrorKind::WrongLength,
            name,
            format!(
                "{text} does not fit in {bits} bits (at most {})",
                (1u64 << bits) - 1
            ),
        )),
    }
}

/// `part` unescaped, checked for set 82 and to fit `bits` at seven bits a character.
fn text_value(name: &str, bits: u16, part: &str) -> Result<String> {
    if let Some(raw) = part.chars().find(|c| "\"&/<>?".contains(*c)) {
        return Err(error(
            Gs1ErrorKind::IllegalCharacter,
            name,
            format!("{raw:?} must be percent-escaped in an EPC URI"),
        ));
    }
    let text = unescape(part).map_err(|e| error(e.kind, name, e.detail))?;
    Charset::Cset82
        .check(&text)
        .map_err(|e| error(e.kind, name, e.detail))?;
    let most = usize::from(bits / 7);
    if text.is_empty() || text.len() > most {
        return Err(error(
            Gs1ErrorKind::WrongLength,
            name,
            format!("{} characters; this scheme holds 1 to {most}", text.len()),
        ));
    }
    Ok(text)
}

/// Reads `field` and appends it to `epc` as a component; reserved bits are skipped and
/// append nothing.
fn read_field(reader: &mut BitReader, name: &str, field: Field, epc: &mut TagEpc) -> Result<()> {
    let out = &mut epc.components;
    match field {
        Field::Padded { bits, digits } => {
            let value = reader.take(bits);
            let digits = usize::from(digits);
            let written = if digits == 0 {
                0
            } else {
                push_decimal(out, value, digits)
            };
            if written > digits || (digits == 0 && value != 0) {
                return Err(error(
                    Gs1ErrorKind::WrongLength,
                    name,
                    format!("{value} does not fit in {digits} digits"),
                ));
            }
        }
        Field::Integer { bits } => {
            push_decimal(out, reader.take(bits), 1);
        }
        Field::Text { bits } => read_text(reader, name, bits, out)?,
        Field::Reserved { bits } => {
            reader.skip(bits);
            return Ok(());
        }
    }
    epc.end_component();
    Ok(())
}

/// Appends `value` in decimal, zero-padded to at least `width` digits; the digits written.
/// With `itoa`: with `format!`, formatting was a fifth of decoding a tag.
fn push_decimal(out: &mut String, value: u64, width: usize) -> usize {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(value);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
    digits.len().max(width)
}

fn read_text(reader: &mut BitReader, name: &str, bits: u16, out: &mut String) -> Result<()> {
    let end = reader.position + usize::from(bits);
    let mut text = String::new();
    for _ in 0..bits / 7 {
        let c = reader.take(7) as u8 as char;
        if c == '\0' {
            break;
        }
        if !Charset::Cset82.contains(c) {
            return Err(error(
                Gs1ErrorKind::IllegalCharacter,
                name,
                format!("character 0x{:02X} is not in GS1 set 82", c as u8),
            ));
        }
        text.push(c);
    }
    // Skip what the loop did not read: the zero terminator's rest and the spare bits.
    reader.seek(end);
    if text.is_empty() {
        return Err(error(Gs1ErrorKind::WrongLength, name, "empty"));
    }
    out.push_str(&text);
    Ok(())
}

fn write_field(writer: &mut BitWriter, name: &str, field: Field, value: &str) -> Result<()> {
    match field {
        Field::Padded { bits, .. } => writer.push(value.parse().unwrap_or(0), bits),
        Field::Integer { bits } => writer.push(integer_value(name, bits, value)?, bits),
        Field::Text { bits } => {
            let start = writer.len;
            for c in value.bytes() {
                writer.push(u64::from(c), 7);
            }
            writer.push(0, bits - (writer.len - start) as u16);
        }
        Field::Reserved { bits } => writer.push(0, bits),
    }
    Ok(())
}

/// Reads big-endian bit fields; fields of more than 64 bits are text, read 7 at a time.
struct BitReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8], position: usize) -> Self {
        Self { bytes, position }
    }

    /// The next `bits` (at most 64) as a number: the 16 bytes from the one it starts in,
    /// shifted so that it is on top, then down.
    fn take(&mut self, bits: u16) -> u64 {
        let bits = u32::from(bits);
        if bits == 0 {
            return 0;
        }
        let first = self.position / 8;
        let mut window = [0u8; 16];
        let available = self.bytes.len().saturating_sub(first).min(16);
        if available > 0 {
            window[..available].copy_from_slice(&self.bytes[first..first + available]);
        }
        let shifted = u128::from_be_bytes(window) << (self.position % 8);
        self.position += bits as usize;
        (shifted >> (128 - bits)) as u64
    }

    fn skip(&mut self, bits: u16) {
        self.position += usize::from(bits);
    }

    fn seek(&mut self, position: usize) {
        self.position = position;
    }
}

/// Writes big-endian bit fields.
#[derive(Default)]
struct BitWriter {
    bytes: [u8; MAX_BYTES],
    len: usize,
}

impl BitWriter {
    fn push(&mut self, value: u64, bits: u16) {
        for shift in (0..bits).rev() {
            let bit = if shift >= 64 { 0 } else { (value >> shift) & 1 };
            if bit == 1 {
                self.bytes[self.len / 8] |= 0x80 >> (self.len % 8);
            }
            self.len += 1;
        }
    }

    fn to_hex(&self, bits: usize) -> String {
        let mut hex = String::with_capacity(bits / 4);
        for byte in &self.bytes[..bits / 8] {
            let _ = write!(hex, "{byte:02X}");
        }
        hex
    }
}
