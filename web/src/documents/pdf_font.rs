//! The one font our PDFs use, DejaVu Sans (web/assets/fonts, Bitstream Vera licence beside it),
//! built into the binary so a document never depends on what the machine has installed. It has
//! ₹ (U+20B9), which the standard PDF fonts lack. Each PDF embeds only the glyphs it uses, as a
//! CID font with a ToUnicode map, so viewers can search and copy the text and `pdftotext`
//! extracts it.

use std::collections::BTreeMap;

use pdf_writer::{
    Filter, Finish, Name, Pdf, Rect, Ref, Str,
    types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap},
};
use subsetter::GlyphRemapper;

const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// What went wrong making a PDF: only a broken built-in font, which a test would catch first.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the built-in font cannot be read: {0}")]
    Font(String),
}

/// The glyphs one document uses, in the order it first used them, and how wide each is.
pub struct FontSubset {
    face: ttf_parser::Face<'static>,
    remapper: GlyphRemapper,
    /// New glyph id → the text it stands for (for the ToUnicode map).
    unicode: BTreeMap<u16, char>,
    units_per_em: f32,
}

impl FontSubset {
    pub fn new() -> Result<FontSubset, PdfError> {
        let face =
            ttf_parser::Face::parse(DEJAVU_SANS, 0).map_err(|e| PdfError::Font(e.to_string()))?;
        let units_per_em = f32::from(face.units_per_em());
        Ok(FontSubset {
            face,
            remapper: GlyphRemapper::new(),
            unicode: BTreeMap::new(),
            units_per_em,
        })
    }

    fn glyph(&self, c: char) -> ttf_parser::GlyphId {
        // A character the font lacks prints as its "missing" box (glyph 0) rather than failing.
        self.face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0))
    }

    /// How wide `text` is at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text
            .chars()
            .map(|c| u32::from(self.face.glyph_hor_advance(self.glyph(c)).unwrap_or(0)))
            .sum();
        // Font units are at most 16 bits each; a line is far below f32's exact range.
        units as f32 * size / self.units_per_em
    }

    /// `text` as the two-byte codes a content stream shows, adding its glyphs to the subset.
    pub fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut codes = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let old = self.glyph(c);
            let new = self.remapper.remap(old.0);
            self.unicode.entry(new).or_insert(c);
            codes.extend_from_slice(&new.to_be_bytes());
        }
        codes
    }

    /// Writes the font's objects, starting at `font` (the Type0 font a page names) and using
    /// the three references after it.
    pub fn write(&self, pdf: &mut Pdf, font: Ref) -> Result<(), PdfError> {
        let cid = Ref::new(font.get() + 1);
        let descriptor = Ref::new(font.get() + 2);
        let file = Ref::new(font.get() + 3);
        let cmap_ref = Ref::new(font.get() + 4);
        // A subset's name starts with six capital letters and a plus (PDF 32000-1, 9.6.4).
        let base_name = Name(b"KALPSS+DejaVuSans");
        let system_info = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };

        pdf.type0_font(font)
            .base_font(base_name)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap_ref);

        let scale = 1000.0 / self.units_per_em;
        let widths: Vec<f32> = self
            .remapper
            .remapped_gids()
            .map(|old| {
                f32::from(
                    self.face
                        .glyph_hor_advance(ttf_parser::GlyphId(old))
                        .unwrap_or(0),
                ) * scale
            })
            .collect();
        let mut cid_font = pdf.cid_font(cid);
        cid_font
            .subtype(CidFontType::Type2)
            .base_font(base_name)
            .system_info(system_info)
            .font_descriptor(descriptor)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        cid_font.widths().consecutive(0, widths);
        cid_font.finish();

        let bbox = self.face.global_bounding_box();
        pdf.font_descriptor(descriptor)
            .name(base_name)
            .flags(FontFlags::NON_SYMBOLIC)
            .bbox(Rect::new(
                f32::from(bbox.x_min) * scale,
                f32::from(bbox.y_min) * scale,
                f32::from(bbox.x_max) * scale,
                f32::from(bbox.y_max) * scale,
            ))
            .italic_angle(0.0)
            .ascent(f32::from(self.face.ascender()) * scale)
            .descent(f32::from(self.face.descender()) * scale)
            .cap_height(f32::from(self.face.capital_height().unwrap_or(0)) * scale)
            .stem_v(80.0)
            .font_file2(file);

        let subset = subsetter::subset(DEJAVU_SANS, 0, &self.remapper)
            .map_err(|e| PdfError::Font(format!("{e:?}")))?;
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&subset, 6);
        pdf.stream(file, &compressed)
            .filter(Filter::FlateDecode)
            .pair(
                Name(b"Length1"),
                i32::try_from(subset.len()).unwrap_or(i32::MAX),
            );

        let mut cmap = UnicodeCmap::new(Name(b"Kalp-UCS"), system_info);
        for (&glyph, &c) in &self.unicode {
            cmap.pair(glyph, c);
        }
        pdf.cmap(cmap_ref, &cmap.finish())
            .name(Name(b"Kalp-UCS"))
            .system_info(system_info);
        Ok(())
    }
}
