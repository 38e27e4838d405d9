//! The mailbox's page: every message kept, newest first, each with its text part, its HTML part
//! (in a sandboxed frame) and its attachments; `/api/messages` is the same as JSON.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;

use crate::{Inbox, received::ReceivedMessage};

pub async fn serve(listener: TcpListener, inbox: Inbox) {
    let app = Router::new()
        .route("/", get(list))
        .route("/messages/{id}", get(show))
        .route("/messages/{id}/raw", get(raw))
        .route("/api/messages", get(json))
        .with_state(inbox);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the mailbox page stopped");
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2430}\
table{border-collapse:collapse;width:100%}td,th{padding:.4rem .6rem;border-bottom:1px solid #ddd;\
text-align:left}pre{white-space:pre-wrap;background:#f5f6f8;padding:1rem}iframe{width:100%;\
height:480px;border:1px solid #ddd}</style>";

async fn list(State(inbox): State<Inbox>) -> Html<String> {
    let mut rows = String::new();
    for m in inbox.messages().iter().rev() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><a href=\"/messages/{}\">{}</a></td><td>{}</td></tr>",
            escape(&m.received_at),
            escape(&m.to),
            m.id,
            escape(&m.subject),
            m.attachments.len()
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">No messages yet.</td></tr>");
    }
    Html(format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Mailbox</title>{STYLE}<h1>Mailbox</h1>\
         <p>Every email sent to this development SMTP server (newest first; nothing is \
         delivered).</p><table><tr><th>Received</th><th>To</th><th>Subject</th>\
         <th>Attachments</th></tr>{rows}</table>"
    ))
}

fn find(inbox: &Inbox, id: u64) -> Option<ReceivedMessage> {
    inbox.messages().into_iter().find(|m| m.id == id)
}

async fn show(State(inbox): State<Inbox>, Path(id): Path<u64>) -> Response {
    let Some(m) = find(&inbox, id) else {
        return (StatusCode::NOT_FOUND, "no such message").into_response();
    };
    let attachments: String = m
        .attachments
        .iter()
        .map(|a| {
            format!(
                "<li>{} ({}, {} bytes)</li>",
                escape(&a.file_name),
                escape(&a.content_type),
                a.size
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{subject}</title>{STYLE}\
         <p><a href=\"/\">All messages</a> · <a href=\"/messages/{id}/raw\">Raw</a></p>\
         <h1>{subject}</h1><p>From {from} to {to}<br>Message-ID {message_id}</p>\
         <h2>HTML part</h2><iframe sandbox srcdoc=\"{html}\"></iframe>\
         <h2>Text part</h2><pre>{text}</pre><h2>Attachments</h2><ul>{attachments}</ul>",
        subject = escape(&m.subject),
        from = escape(&m.from),
        to = escape(&m.to),
        message_id = escape(&m.message_id),
        html = escape(&m.html),
        text = escape(&m.text),
    ))
    .into_response()
}

async fn raw(State(inbox): State<Inbox>, Path(id): Path<u64>) -> Response {
    match find(&inbox, id) {
        Some(m) => ([(header::CONTENT_TYPE, "message/rfc822")], m.raw).into_response(),
        None => (StatusCode::NOT_FOUND, "no such message").into_response(),
    }
}

async fn json(State(inbox): State<Inbox>) -> Json<Vec<ReceivedMessage>> {
    Json(inbox.messages())
}
