//! Billing: My Credits, Top up → Add Credits, paying through Razorpay and coming back.

pub mod amount;
pub mod lifecycle;
pub mod refunds;
pub mod routes;
pub mod settle;
pub mod topups;
pub mod uncredited;
