//! Labels: GS1 DataMatrix and GS1 Digital Link QR codes as SVG or PNG, and ZPL II.
//!
//! The symbols come from the `datamatrix` and `qrcode` crates; this module only draws their
//! module grids and writes the ZPL, which Zebra printers render themselves.

use tracery_gs1::{ElementString, tds::TagEpc};

use crate::domain::IdentityError;

/// Which symbol to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbology {
    /// GS1 DataMatrix (FNC1 first) carrying the element string.
    Gs1DataMatrix,
    /// QR Code carrying the GS1 Digital Link URI.
    DigitalLinkQr,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelFormat {
    /// Scalable vector graphics.
    Svg,
    /// A PNG bitmap.
    Png,
    /// ZPL II for Zebra printers, with the human-readable text under the code.
    Zpl,
}

/// A rendered label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The bytes.
    pub content: Vec<u8>,
    /// Their MIME type.
    pub content_type: &'static str,
}

/// Pixels per module in PNG output.
const PNG_SCALE: usize = 8;

/// A grid of dark (true) and light modules, row by row, without quiet zone.
struct Grid {
    width: usize,
    dark: Vec<bool>,
    quiet_zone: usize,
}

impl Grid {
    fn height(&self) -> usize {
        self.dark.len() / self.width.max(1)
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark.get(y * self.width + x).copied().unwrap_or(false)
    }
}

fn symbol(
    symbology: Symbology,
    elements: &ElementString,
    digital_link: &str,
) -> Result<Grid, IdentityError> {
    match symbology {
        Symbology::Gs1DataMatrix => {
            let code = datamatrix::DataMatrix::encode_gs1(
                elements.to_raw().as_bytes(),
                datamatrix::SymbolList::default(),
            )
            .map_err(|e| IdentityError::Label(format!("data does not fit a DataMatrix: {e:?}")))?;
            let bitmap = code.bitmap();
            Ok(Grid {
                width: bitmap.width(),
                dark: bitmap.bits().to_vec(),
                quiet_zone: 2,
            })
        }
        Symbology::DigitalLinkQr => {
            let code =
                qrcode::QrCode::with_error_correction_level(digital_link, qrcode::EcLevel::M)
                    .map_err(|e| {
                        IdentityError::Label(format!("data does not fit a QR code: {e}"))
                    })?;
            Ok(Grid {
                width: code.width(),
                dark: code
                    .to_colors()
                    .into_iter()
                    .map(|c| c == qrcode::Color::Dark)
                    .collect(),
                quiet_zone: 4,
            })
        }
    }
}

/// What a printer-encoder writes to the label's RFID tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagWrite {
    /// The EPC bank, in hex.
    pub hex: String,
    pub tag_uri: String,
}

/// The tag encoding of `epc_urn` (a pure-identity URN) in `scheme` (empty: its 96-bit
/// scheme) with `filter`, checked by decoding the hex back to the same identity.
pub fn tag_write(epc_urn: &str, scheme: &str, filter: u32) -> Result<TagWrite, IdentityError> {
    let (identity, body) = epc_urn
        .strip_prefix("urn:epc:id:")
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(|| {
            IdentityError::invalid(
                "identifier",
                "a tag holds one object: give its serial (or SSCC, GLN, GRAI, GIAI)",
            )
        })?;
    let scheme = if scheme.is_empty() {
        format!("{identity}-96")
    } else {
        scheme.to_owned()
    };
    if scheme.split_once('-').map(|(base, _)| base) != Some(identity) {
        return Err(IdentityError::invalid(
            "rfid.scheme",
            format!("`{scheme}` does not encode an {}", identity.to_uppercase()),
        ));
    }
    if filter > 7 {
        return Err(IdentityError::invalid("rfid.filter", "0 to 7 (3 bits)"));
    }
    let tag_uri = format!("urn:epc:tag:{scheme}:{filter}.{body}");
    let refused = |err: tracery_gs1::Gs1Error| IdentityError::invalid("rfid", err.to_string());
    let tag = TagEpc::from_tag_uri(&tag_uri).map_err(refused)?;
    let hex = tag.to_hex().map_err(refused)?;
    let decoded = TagEpc::from_hex(&hex).map_err(refused)?;
    if decoded.pure_identity() != epc_urn || decoded.tag_uri() != tag_uri {
        return Err(IdentityError::Corrupt(format!(
            "the tag encoding {hex} decodes to {}, not {epc_urn}",
            decoded.pure_identity()
        )));
    }
    Ok(TagWrite { hex, tag_uri })
}

/// Renders `elements` (and their Digital Link URI, for QR) as a label; with `tag`, a ZPL
/// label also has the printer write it to the label's RFID tag.
pub fn render(
    symbology: Symbology,
    format: LabelFormat,
    elements: &ElementString,
    digital_link: &str,
    tag: Option<&TagWrite>,
) -> Result<Label, IdentityError> {
    if tag.is_some() && format != LabelFormat::Zpl {
        return Err(IdentityError::invalid(
            "rfid",
            "only ZPL printer-encoders write tags: ask for LABEL_FORMAT_ZPL",
        ));
    }
    match format {
        LabelFormat::Zpl => Ok(Label {
            content: zpl(symbology, elements, digital_link, tag).into_bytes(),
            content_type: "application/vnd.zebra.zpl",
        }),
        LabelFormat::Svg => Ok(Label {
            content: svg(&symbol(symbology, elements, digital_link)?).into_bytes(),
            content_type: "image/svg+xml",
        }),
        LabelFormat::Png => Ok(Label {
            content: png(&symbol(symbology, elements, digital_link)?)?,
            content_type: "image/png",
        }),
    }
}

fn svg(grid: &Grid) -> String {
    let size_x = grid.width + 2 * grid.quiet_zone;
    let size_y = grid.height() + 2 * grid.quiet_zone;
    let mut path = String::new();
    for y in 0..grid.height() {
        for x in 0..grid.width {
            if grid.is_dark(x, y) {
                path.push_str(&format!(
                    "M{} {}h1v1h-1z",
                    x + grid.quiet_zone,
                    y + grid.quiet_zone
                ));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size_x} {size_y}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{size_x}\" height=\"{size_y}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

fn png(grid: &Grid) -> Result<Vec<u8>, IdentityError> {
    let width = (grid.width + 2 * grid.quiet_zone) * PNG_SCALE;
    let height = (grid.height() + 2 * grid.quiet_zone) * PNG_SCALE;
    let mut pixels = vec![255u8; width * height];
    for y in 0..grid.height() {
        for x in 0..grid.width {
            if !grid.is_dark(x, y) {
                continue;
            }
            for dy in 0..PNG_SCALE {
                let row = (y + grid.quiet_zone) * PNG_SCALE + dy;
                let start = row * width + (x + grid.quiet_zone) * PNG_SCALE;
                pixels[start..start + PNG_SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let size =
        |n: usize| u32::try_from(n).map_err(|_| IdentityError::Label("symbol too large".into()));
    let mut encoder = png::Encoder::new(&mut out, size(width)?, size(height)?);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let failed = |e: png::EncodingError| IdentityError::Label(format!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(&pixels).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

/// ZPL II: the symbol at the top, the human-readable text under it; with `tag`, `^RS8`
/// (a Gen 2 tag) and `^RFW,H,,,A` (write hex to the EPC bank, adjusting the PC word's
/// length bits, as Zebra's RFID programming guide has it) before them.
///
/// `^BX` with quality 200 is ECC 200 DataMatrix; declaring `_` as its escape character
/// makes `_1` an FNC1 (and `_5F` a literal underscore). The QR payload is prefixed `QA,`
/// (error correction Q, automatic data mode) as `^BQ` requires.
fn zpl(
    symbology: Symbology,
    elements: &ElementString,
    digital_link: &str,
    tag: Option<&TagWrite>,
) -> String {
    let (code, text) = match symbology {
        Symbology::Gs1DataMatrix => {
            let data = elements
                .to_raw()
                .replace('_', "_5F")
                .replace(tracery_gs1::element_string::GS, "_1");
            (
                format!("^BXN,8,200,0,0,1,_^FD_1{data}^FS"),
                elements.to_bracketed(),
            )
        }
        Symbology::DigitalLinkQr => (
            format!("^BQN,2,6^FDQA,{digital_link}^FS"),
            digital_link.to_owned(),
        ),
    };
    let encode = tag
        .map(|tag| format!("^RS8\n^RFW,H,,,A^FD{}^FS\n", tag.hex))
        .unwrap_or_default();
    format!(
        "^XA\n^CI28\n{encode}^FO40,40{code}\n^FO40,300^A0N,28,28^FB760,3,0,L^FD{}^FS\n^XZ\n",
        text.replace(['^', '~'], " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zpl_has_symbol_and_text() {
        let elements = ElementString::parse("(01)09506000134352(10)AB_1(21)12345").expect("valid");
        let zpl = String::from_utf8(
            render(
                Symbology::Gs1DataMatrix,
                LabelFormat::Zpl,
                &elements,
                "",
                None,
            )
            .expect("zpl")
            .content,
        )
        .expect("utf8");
        assert!(zpl.starts_with("^XA"), "{zpl}");
        assert!(zpl.contains("^FD_10109506000134352"), "{zpl}");
        assert!(
            zpl.contains("10AB_5F1_121"),
            "FNC1 separator and escaped underscore: {zpl}"
        );
        assert!(
            zpl.contains("^FD(01)09506000134352(10)AB_1(21)12345^FS"),
            "{zpl}"
        );
        assert!(zpl.trim_end().ends_with("^XZ"));
    }
}
