//! The Kalp Credits web app. Filled by the web app issue.

fn main() {
    eprintln!("the Kalp Credits web app is not built yet; see README.md");
    std::process::exit(1);
}
