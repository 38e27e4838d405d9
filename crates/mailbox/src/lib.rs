//! A development mailbox: an SMTP server that accepts every message and keeps the newest
//! [`KEEP`] in memory (`smtp`), and a page that lists them, shows each one's parts and serves
//! them as JSON (`web`). `cargo xtask dev` starts it and points the app at it; the web app's
//! tests start one in-process to read what was sent. It delivers nothing anywhere.

pub mod received;
pub mod smtp;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use received::ReceivedMessage;

/// How many messages are kept (the oldest go first): memory stays bounded however much is sent.
pub const KEEP: usize = 1_000;

/// The messages received so far, shared by the SMTP server and the page.
#[derive(Clone, Default)]
pub struct Inbox {
    messages: Arc<Mutex<Vec<ReceivedMessage>>>,
}

impl Inbox {
    fn add(&self, raw: Vec<u8>, envelope_from: String, envelope_to: Vec<String>) {
        let mut messages = match self.messages.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let id = messages.last().map_or(1, |m| m.id + 1);
        messages.push(ReceivedMessage::parse(id, raw, envelope_from, envelope_to));
        if messages.len() > KEEP {
            let excess = messages.len() - KEEP;
            messages.drain(..excess);
        }
    }

    /// Every message kept, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        match self.messages.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Forgets every message.
    pub fn clear(&self) {
        match self.messages.lock() {
            Ok(mut guard) => guard.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }
}

/// A running mailbox: its addresses, and what it has received.
pub struct RunningMailbox {
    pub smtp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub inbox: Inbox,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningMailbox {
    /// `smtp://127.0.0.1:<port>`, the value for `KALP__EMAIL__SMTP_URL`.
    pub fn smtp_url(&self) -> String {
        format!("smtp://{}", self.smtp_addr)
    }

    /// The page that lists the messages.
    pub fn page_url(&self) -> String {
        format!("http://{}/", self.http_addr)
    }

    /// Stops listening: senders find nothing there until another mailbox starts.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for RunningMailbox {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the SMTP server and the page on these addresses (port 0: any free port).
pub async fn start(smtp: &str, http: &str) -> std::io::Result<RunningMailbox> {
    let inbox = Inbox::default();
    let smtp_listener = tokio::net::TcpListener::bind(smtp).await?;
    let http_listener = tokio::net::TcpListener::bind(http).await?;
    let smtp_addr = smtp_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    let tasks = vec![
        tokio::spawn(smtp::serve(smtp_listener, inbox.clone())),
        tokio::spawn(web::serve(http_listener, inbox.clone())),
    ];
    Ok(RunningMailbox {
        smtp_addr,
        http_addr,
        inbox,
        tasks,
    })
}
