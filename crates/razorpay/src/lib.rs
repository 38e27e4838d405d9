//! Razorpay client. Filled by the Razorpay client issue; builds and does nothing yet.
