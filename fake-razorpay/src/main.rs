//! fake-razorpay. Filled by the fake-razorpay issue.

fn main() {
    eprintln!("fake-razorpay is not built yet; see README.md");
    std::process::exit(1);
}
