//! GST documents as people read them: a voucher's fields in words and rupees (`voucher_view`),
//! shared by the printable page, the PDF (`voucher_pdf`) and the emails that attach it. The
//! voucher itself is issued and kept by `billing::receipts` and `store::vouchers`; nothing here
//! writes.

pub mod pdf_font;
pub mod voucher_pdf;
pub mod voucher_view;
