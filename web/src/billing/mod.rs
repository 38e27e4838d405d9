//! Billing: My Credits, Top up → Add Credits, paying through Razorpay and coming back.

pub mod amount;
pub mod routes;
pub mod settle;
pub mod topups;
