//! Billing's money work: the amount typed into Add Credits, starting a top-up (its Razorpay
//! order), crediting a payment exactly once, and applying refunds. The pages that drive it are
//! in `pages::billing` and `pages::topup`.
//!
//! Imports go downward only: `checkout` and `refunds` → `crediting` → `take_back`, `receipts` →
//! the store.

pub mod amount;
pub mod checkout;
pub mod crediting;
pub mod receipts;
pub mod refunds;
pub mod take_back;
