//! GST for prepaid credits (issue 19): an advance received for services is taxable when it is
//! received, so every credited top-up gets a receipt voucher (CGST Rules, rule 50) and every
//! refund a refund voucher (rule 51). This module holds the rules that need no database: the
//! GSTIN, the tax inside an amount paid, the amount in words, and voucher numbers.
//! (The vouchers themselves, their pages and PDFs, and the emails are still to come.)

pub mod gstin;
pub mod profile;
pub mod tax;
pub mod voucher_number;
pub mod words;
