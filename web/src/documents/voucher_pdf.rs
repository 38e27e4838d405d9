//! A voucher as a one-page A4 PDF, written in-process with `pdf-writer` and the built-in font
//! (`pdf_font`): the same words as the printable page (`voucher_view`), laid out as a document
//! an accountant files.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use super::{
    pdf_font::{FontSubset, PdfError},
    voucher_view::VoucherView,
};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const FONT: Name<'static> = Name(b"F1");

/// Lines of text placed top-down on one page.
struct PageWriter {
    content: Content,
    font: FontSubset,
    /// The baseline of the next line, from the bottom of the page.
    y: f32,
}

impl PageWriter {
    fn text_at(&mut self, x: f32, y: f32, size: f32, text: &str) {
        let codes = self.font.encode(text);
        self.content
            .begin_text()
            .set_font(FONT, size)
            .next_line(x, y)
            .show(Str(&codes))
            .end_text();
    }

    /// One line at the left margin, then down by its height.
    fn line(&mut self, size: f32, text: &str) {
        self.text_at(MARGIN, self.y, size, text);
        self.y -= size * 1.45;
    }

    /// `text` right-aligned so that it ends at `right`.
    fn right_aligned(&mut self, right: f32, y: f32, size: f32, text: &str) {
        let x = right - self.font.width(text, size);
        self.text_at(x, y, size, text);
    }

    /// Words wrapped to lines no wider than `width`, each hard line break kept.
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.lines() {
            let mut current = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if current.is_empty() {
                    word.to_string()
                } else {
                    format!("{current} {word}")
                };
                if self.font.width(&candidate, size) > width && !current.is_empty() {
                    lines.push(std::mem::replace(&mut current, word.to_string()));
                } else {
                    current = candidate;
                }
            }
            lines.push(current);
        }
        lines
    }

    fn paragraph(&mut self, size: f32, width: f32, text: &str) {
        for line in self.wrap(text, size, width) {
            self.line(size, &line);
        }
    }

    fn rule(&mut self, from: f32, to: f32) {
        let y = self.y;
        self.content
            .set_line_width(0.5)
            .move_to(from, y)
            .line_to(to, y)
            .stroke();
    }

    /// A party's block (supplier or recipient) in a column starting at `x`; returns the lowest
    /// baseline it used.
    fn party(&mut self, x: f32, top: f32, heading: &str, lines: &[&str]) -> f32 {
        let width = (PAGE_WIDTH - 2.0 * MARGIN) / 2.0 - 12.0;
        self.text_at(x, top, 11.0, heading);
        let mut y = top - 16.0;
        for text in lines {
            for line in self.wrap(text, 10.0, width) {
                self.text_at(x, y, 10.0, &line);
                y -= 14.0;
            }
        }
        y
    }
}

/// The voucher as PDF bytes.
pub fn voucher_pdf(view: &VoucherView) -> Result<Vec<u8>, PdfError> {
    let mut page = PageWriter {
        content: Content::new(),
        font: FontSubset::new()?,
        y: PAGE_HEIGHT - MARGIN - 10.0,
    };
    let right = PAGE_WIDTH - MARGIN;
    let text_width = right - MARGIN;

    page.line(20.0, view.title);
    page.paragraph(9.0, text_width, &view.legal_basis);
    page.y -= 4.0;
    page.line(11.0, &format!("Voucher number: {}", view.number));
    page.line(11.0, &format!("Date: {}", view.date));
    page.y -= 10.0;

    let top = page.y;
    let seller_gstin = format!("GSTIN {}", view.seller_gstin);
    let buyer_gstin = format!("GSTIN {}", view.buyer_gstin);
    let left_end = page.party(
        MARGIN,
        top,
        "Supplier",
        &[&view.seller_name, &view.seller_address, &seller_gstin],
    );
    let right_end = page.party(
        PAGE_WIDTH / 2.0 + 6.0,
        top,
        "Recipient",
        &[&view.buyer_name, &view.buyer_address, &buyer_gstin],
    );
    page.y = left_end.min(right_end) - 14.0;

    // The table: description and SAC on the left, amounts right-aligned.
    let sac_x = right - 170.0;
    let y = page.y;
    page.text_at(MARGIN, y, 10.0, "Description");
    page.text_at(sac_x, y, 10.0, "SAC");
    page.right_aligned(right, y, 10.0, "Amount");
    page.y = y - 5.0;
    page.rule(MARGIN, right);
    page.y -= 14.0;
    let description = page.wrap(view.description, 10.0, sac_x - MARGIN - 10.0);
    let y = page.y;
    page.text_at(sac_x, y, 10.0, &view.sac);
    page.right_aligned(right, y, 10.0, &view.taxable);
    for line in description {
        page.line(10.0, &line);
    }
    for (label, amount) in &view.taxes {
        let y = page.y;
        page.right_aligned(right, y, 10.0, amount);
        page.line(10.0, label);
    }
    page.y += 6.0;
    page.rule(MARGIN, right);
    page.y -= 18.0;
    let y = page.y;
    page.right_aligned(right, y, 12.0, &view.amount);
    page.line(12.0, view.total_label);
    page.paragraph(10.0, text_width, &view.in_words);
    page.y -= 10.0;

    page.line(10.0, &format!("Place of supply: {}", view.place_of_supply));
    page.line(10.0, "Tax payable on reverse charge: No");
    page.line(10.0, &format!("Razorpay payment: {}", view.payment_id));
    if let Some(refund) = &view.refund_id {
        page.line(10.0, &format!("Razorpay refund: {refund}"));
    }
    page.y -= 16.0;
    page.paragraph(
        8.0,
        text_width,
        "This voucher is computer-generated and needs no signature.",
    );

    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let page_ref = Ref::new(3);
    let content_ref = Ref::new(4);
    let info = Ref::new(5);
    let font = Ref::new(6);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page_ref]).count(1);
    let mut pdf_page = pdf.page(page_ref);
    pdf_page
        .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
        .parent(pages)
        .contents(content_ref);
    pdf_page.resources().fonts().pair(FONT, font);
    pdf_page.finish();
    let stream = page.content.finish();
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&stream, 6);
    pdf.stream(content_ref, &compressed)
        .filter(pdf_writer::Filter::FlateDecode);
    let title = format!("{} {}", view.title, view.number);
    pdf.document_info(info)
        .title(pdf_writer::TextStr(&title))
        .producer(pdf_writer::TextStr("Kalp Credits"));
    page.font.write(&mut pdf, font)?;
    Ok(pdf.finish())
}
