//! Serving the fake: its routes, and a fake on a local port for tests.

use std::net::SocketAddr;

use axum::Router;

use crate::{
    api, checkout, control,
    fake::Fake,
    settings::{FakeSettings, Faults},
};

/// Every route: the REST API, the hosted checkout and the control API.
pub fn router(fake: &Fake) -> Router {
    Router::new()
        .merge(api::routes(fake.clone()))
        .merge(checkout::routes())
        .merge(control::routes())
        .with_state(fake.clone())
}

/// A fake running on a local port, for tests. Stops when dropped.
pub struct RunningFake {
    pub fake: Fake,
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningFake {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningFake {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a fake on `127.0.0.1` and a free port.
pub async fn spawn(settings: FakeSettings, faults: Faults) -> anyhow::Result<RunningFake> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    serve_on(listener, settings, faults).await
}

pub async fn serve_on(
    listener: tokio::net::TcpListener,
    settings: FakeSettings,
    faults: Faults,
) -> anyhow::Result<RunningFake> {
    let addr = listener.local_addr()?;
    let fake = Fake::new(settings, faults)?;
    let app = router(&fake);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "fake-razorpay stopped");
        }
    });
    Ok(RunningFake {
        fake,
        addr,
        shutdown: Some(tx),
    })
}
