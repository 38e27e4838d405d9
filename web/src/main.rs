//! `cargo run -p web` serves the app; `cargo run -p web -- migrate` only applies migrations.

use std::process::ExitCode;

use web::{configuration::Settings, startup};

#[tokio::main]
async fn main() -> ExitCode {
    web::init_tracing();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kalp: {e}");
            return ExitCode::from(2);
        }
    };
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let result = match command.as_str() {
        "serve" => serve(settings).await,
        "migrate" => startup::connect(settings)
            .await
            .map(|_| println!("migrations applied")),
        "-h" | "--help" | "help" => {
            println!(
                "usage: web [serve|migrate]\nSettings: web/config/base.toml, config/local.toml, KALP__* variables."
            );
            Ok(())
        }
        other => Err(anyhow::anyhow!(
            "unknown command {other:?}; try serve or migrate"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kalp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public = settings.public_url().to_string();
    let app = startup::Application::build(settings).await?;
    tracing::info!("Kalp Credits on port {} ({public})", app.port());
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping");
    })
    .await
}
