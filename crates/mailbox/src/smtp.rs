//! The SMTP side (RFC 5321, the part a sender needs): greeting, EHLO/HELO, MAIL, RCPT, DATA
//! with dot-unstuffing, RSET, NOOP, QUIT. No TLS and no authentication: it listens on a local
//! address for development. Lines and messages are bounded, so a runaway client cannot grow
//! memory without end.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::Inbox;

/// The most a message may hold (as announced by EHLO's SIZE).
const MAX_MESSAGE: usize = 25 * 1024 * 1024;
/// The longest command or text line accepted (RFC 5321 allows 1000 with CRLF; be generous).
const MAX_LINE: usize = 64 * 1024;

pub async fn serve(listener: TcpListener, inbox: Inbox) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let (reader, writer) = stream.into_split();
            if let Err(e) = session(reader, writer, &inbox).await {
                tracing::debug!(error = %e, "SMTP session ended");
            }
        });
    }
}

/// Reads one line (up to CRLF or LF), at most `MAX_LINE` bytes; `None` at the end of input.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<()>> {
    line.clear();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') && n >= MAX_LINE {
        return Err(std::io::Error::other("line too long"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(()))
}

/// The address inside `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn path_argument(rest: &str) -> String {
    let rest = rest.trim();
    match (rest.find('<'), rest.find('>')) {
        (Some(open), Some(close)) if open < close => rest[open + 1..close].to_string(),
        _ => rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

async fn session<R, W>(reader: R, mut writer: W, inbox: &Inbox) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(reader);
    writer.write_all(b"220 mailbox ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    while read_line(&mut reader, &mut line).await?.is_some() {
        let text = String::from_utf8_lossy(&line).to_string();
        let (verb, rest) = text.split_once(' ').unwrap_or((text.as_str(), ""));
        let verb = verb.to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                let greeting = format!(
                    "250-mailbox\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_MESSAGE}\r\n"
                );
                writer.write_all(greeting.as_bytes()).await?;
                continue;
            }
            "HELO" => b"250 mailbox\r\n",
            "MAIL" if rest.to_ascii_uppercase().starts_with("FROM:") => {
                from = Some(path_argument(&rest[5..]));
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" if rest.to_ascii_uppercase().starts_with("TO:") => {
                if from.is_none() {
                    b"503 MAIL first\r\n"
                } else {
                    to.push(path_argument(&rest[3..]));
                    b"250 OK\r\n"
                }
            }
            "DATA" => {
                if from.is_none() || to.is_empty() {
                    b"503 MAIL and RCPT first\r\n"
                } else {
                    writer
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let Some(message) = read_data(&mut reader).await? else {
                        writer.write_all(b"552 Message too large\r\n").await?;
                        from = None;
                        to.clear();
                        continue;
                    };
                    inbox.add(
                        message,
                        from.take().unwrap_or_default(),
                        std::mem::take(&mut to),
                    );
                    b"250 OK: queued\r\n"
                }
            }
            "RSET" => {
                from = None;
                to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        writer.write_all(reply).await?;
    }
    Ok(())
}

/// The message after DATA, up to the line holding a single dot, with leading dots unstuffed;
/// `None` if it is larger than `MAX_MESSAGE` (the rest is read and dropped).
async fn read_data<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut too_large = false;
    let mut line = Vec::new();
    while read_line(reader, &mut line).await?.is_some() {
        if line == b"." {
            return Ok(if too_large { None } else { Some(message) });
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + content.len() + 2 > MAX_MESSAGE {
            too_large = true;
            message.clear();
            continue;
        }
        if !too_large {
            message.extend_from_slice(content);
            message.extend_from_slice(b"\r\n");
        }
    }
    Err(std::io::Error::other("the connection closed inside DATA"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_stores_the_message_with_dots_unstuffed() {
        let script = b"EHLO client\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n\
DATA\r\nSubject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n";
        let inbox = Inbox::default();
        let mut output = Vec::new();
        session(&script[..], &mut output, &inbox)
            .await
            .expect("session");
        let replies = String::from_utf8(output).expect("text");
        assert!(replies.contains("250 OK: queued"), "{replies}");
        assert!(replies.ends_with("221 Bye\r\n"), "{replies}");
        let messages = inbox.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].envelope_to, vec!["b@example.com".to_string()]);
        assert_eq!(messages[0].subject, "hi");
        assert!(
            messages[0].text.contains(".leading dot"),
            "{:?}",
            messages[0].text
        );
    }

    #[tokio::test]
    async fn data_before_a_recipient_is_refused() {
        let inbox = Inbox::default();
        let mut output = Vec::new();
        session(&b"HELO x\r\nDATA\r\nQUIT\r\n"[..], &mut output, &inbox)
            .await
            .expect("session");
        assert!(String::from_utf8_lossy(&output).contains("503"));
        assert!(inbox.messages().is_empty());
    }
}
