//! The HTTP client: Basic auth, timeouts, typed errors, and retries only where safe. It
//! stays one file: every endpoint goes through one `send`, whose retries, metrics and error
//! mapping are read together.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    error::{Error, Refusal},
    retry::RetryPolicy,
    secret::Secret,
    wire::{
        CaptureRequest, Collection, CreateOrder, CreateRefund, ErrorEnvelope, ListQuery, Order,
        Payment, Refund,
    },
};

/// Where and how to reach Razorpay. Pointing `base_url` at fake-razorpay or at
/// `https://api.razorpay.com` is the only difference between local runs and production.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub key_id: String,
    pub key_secret: Secret,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, key_id: impl Into<String>, key_secret: Secret) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            key_id: key_id.into(),
            key_secret,
            connect_timeout: Duration::from_secs(5),
            // The Go SDK waits 10 s; captures and order creation are quick, a slow answer is a
            // fault worth surfacing.
            request_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
        }
    }
}

/// Whether a request may be sent again after an unclear failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Safety {
    /// A read: repeating it changes nothing.
    Read,
    /// A write without an idempotency key: repeated only if it provably never left us.
    UnsafeWrite,
    /// A write carrying an idempotency key: Razorpay applies it at most once.
    IdempotentWrite,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key_id: String,
    key_secret: Secret,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("key_id", &self.key_id)
            .field("key_secret", &self.key_secret)
            .finish()
    }
}

const USER_AGENT: &str = concat!("kalp-credits-razorpay/", env!("CARGO_PKG_VERSION"));

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| Error::Config(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(Error::Config(format!(
                "base URL {base_url:?} must be http(s)://host[:port]"
            )));
        }
        // Whitespace pasted with a key makes Razorpay answer "The id provided does not exist"
        // or 401 on every call; say so at start instead.
        for (name, value) in [
            ("key id", config.key_id.as_str()),
            ("key secret", config.key_secret.expose()),
        ] {
            if value.is_empty() {
                return Err(Error::Config(format!("the {name} is empty")));
            }
            if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::Config(format!("the {name} contains whitespace")));
            }
        }
        // ring instead of aws-lc (see Cargo.toml); installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base_url,
            key_id: config.key_id,
            key_secret: config.key_secret,
            retry: config.retry,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `POST /v1/orders`. Not retried once it may have reached Razorpay: orders have no
    /// idempotency key, and a duplicate order is worse than a clear failure.
    pub async fn create_order(&self, order: &CreateOrder) -> Result<Order, Error> {
        if let Some(receipt) = &order.receipt
            && receipt.chars().count() > 40
        {
            return Err(Error::InvalidRequest(
                "a receipt is at most 40 characters".into(),
            ));
        }
        if order.notes.len() > 15 {
            return Err(Error::InvalidRequest("at most 15 notes".into()));
        }
        self.send(
            Method::POST,
            "/v1/orders",
            None,
            Some(order),
            None,
            Safety::UnsafeWrite,
        )
        .await
    }

    pub async fn fetch_order(&self, order_id: &str) -> Result<Order, Error> {
        let path = format!("/v1/orders/{}", checked_id(order_id)?);
        self.get(&path, None).await
    }

    /// Every payment attempt on an order, failed ones included.
    pub async fn order_payments(&self, order_id: &str) -> Result<Collection<Payment>, Error> {
        let path = format!("/v1/orders/{}/payments", checked_id(order_id)?);
        self.get(&path, None).await
    }

    pub async fn list_orders(&self, query: &ListQuery) -> Result<Collection<Order>, Error> {
        self.get("/v1/orders", Some(checked_query(query)?)).await
    }

    pub async fn list_payments(&self, query: &ListQuery) -> Result<Collection<Payment>, Error> {
        self.get("/v1/payments", Some(checked_query(query)?)).await
    }

    pub async fn fetch_payment(&self, payment_id: &str) -> Result<Payment, Error> {
        let path = format!("/v1/payments/{}", checked_id(payment_id)?);
        self.get(&path, None).await
    }

    /// `POST /v1/payments/:id/capture`. A retry after an unclear failure could meet "already
    /// captured", so it is not retried; fetch the payment to learn the outcome.
    pub async fn capture_payment(
        &self,
        payment_id: &str,
        capture: &CaptureRequest,
    ) -> Result<Payment, Error> {
        let path = format!("/v1/payments/{}/capture", checked_id(payment_id)?);
        self.send(
            Method::POST,
            &path,
            None,
            Some(capture),
            None,
            Safety::UnsafeWrite,
        )
        .await
    }

    /// `POST /v1/payments/:id/refund`. With an idempotency key (at least 10 of
    /// `[A-Za-z0-9_-]`), Razorpay refunds at most once per key, so the call is retried.
    pub async fn refund_payment(
        &self,
        payment_id: &str,
        refund: &CreateRefund,
        idempotency_key: Option<&str>,
    ) -> Result<Refund, Error> {
        let path = format!("/v1/payments/{}/refund", checked_id(payment_id)?);
        let (header, safety) = match idempotency_key {
            Some(key) => {
                let valid = key.len() >= 10
                    && key.len() <= 64
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(Error::InvalidRequest(
                        "a refund idempotency key is 10 to 64 of A-Z a-z 0-9 _ -".into(),
                    ));
                }
                (Some(key), Safety::IdempotentWrite)
            }
            None => (None, Safety::UnsafeWrite),
        };
        self.send(Method::POST, &path, None, Some(refund), header, safety)
            .await
    }

    /// Every refund of a payment, pending and failed ones included.
    pub async fn payment_refunds(&self, payment_id: &str) -> Result<Collection<Refund>, Error> {
        let path = format!("/v1/payments/{}/refunds", checked_id(payment_id)?);
        self.get(&path, None).await
    }

    /// Refunds created in a time range, newest first.
    pub async fn list_refunds(&self, query: &ListQuery) -> Result<Collection<Refund>, Error> {
        self.get("/v1/refunds", Some(checked_query(query)?)).await
    }

    pub async fn fetch_refund(&self, refund_id: &str) -> Result<Refund, Error> {
        let path = format!("/v1/refunds/{}", checked_id(refund_id)?);
        self.get(&path, None).await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: Option<&ListQuery>,
    ) -> Result<T, Error> {
        self.send::<T, ()>(Method::GET, path, query, None, None, Safety::Read)
            .await
    }

    async fn send<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: Option<&ListQuery>,
        body: Option<&B>,
        idempotency_key: Option<&str>,
        safety: Safety,
    ) -> Result<T, Error> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::InvalidRequest(format!("request body: {e}")))?;
        let url = format!("{}{path}", self.base_url);
        let endpoint = format!("{method} {}", endpoint_of(path));
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let attempt_started = Instant::now();
            let mut request = self
                .http
                .request(method.clone(), &url)
                .basic_auth(&self.key_id, Some(self.key_secret.expose()))
                .header(header::ACCEPT, "application/json");
            if let Some(query) = query {
                request = request.query(query);
            }
            if let Some(body) = &body {
                request = request
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let Some(key) = idempotency_key {
                request = request.header("X-Refund-Idempotency", key);
            }
            let (status, outcome) = match request.send().await {
                Ok(response) => (
                    response.status().as_u16().to_string(),
                    read_response::<T>(response).await,
                ),
                Err(e) => {
                    let error = transport_error(&e);
                    let kind = match error {
                        Error::Timeout => "timeout",
                        Error::Connect(_) => "connect",
                        _ => "transport",
                    };
                    (kind.to_string(), Err(error))
                }
            };
            metrics::counter!(
                "kalp_razorpay_requests_total",
                "endpoint" => endpoint.clone(),
                "status" => status
            )
            .increment(1);
            metrics::histogram!(
                "kalp_razorpay_request_duration_seconds",
                "endpoint" => endpoint.clone()
            )
            .record(attempt_started.elapsed().as_secs_f64());
            let error = match outcome {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let retry_after = match &error {
                Error::RateLimited { retry_after, .. } => *retry_after,
                _ => None,
            };
            let delay = self.retry.delay(attempt, retry_after);
            let may_retry = attempt < self.retry.max_attempts
                && started.elapsed() + delay <= self.retry.max_elapsed
                && safe_to_retry(safety, &error);
            if !may_retry {
                return Err(error);
            }
            tracing::warn!(
                %method, path, attempt, delay_ms = delay.as_millis() as u64, error = %error,
                "retrying Razorpay request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// A path as a metrics label: ids (`pay_…`, `order_…`, `rfnd_…`) become `{id}`, so there is one
/// series per endpoint, not per payment.
fn endpoint_of(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            // Razorpay's ids are `<prefix>_<base62>`; none of its path words has an underscore.
            if segment.contains('_') {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn safe_to_retry(safety: Safety, error: &Error) -> bool {
    match safety {
        Safety::Read => error.is_transient(),
        Safety::UnsafeWrite => matches!(error, Error::Connect(_)),
        Safety::IdempotentWrite => error.is_transient() || matches!(error, Error::Conflict(_)),
    }
}

fn transport_error(e: &reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout
    } else if e.is_connect() {
        Error::Connect(e.to_string())
    } else {
        Error::Transport(e.to_string())
    }
}

async fn read_response<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, Error> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response.bytes().await.map_err(|e| transport_error(&e))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| Error::UnexpectedBody {
            status: status.as_u16(),
            detail: format!("{e}; body starts {:?}", snippet(&bytes)),
        });
    }
    let api = serde_json::from_slice::<ErrorEnvelope>(&bytes)
        .ok()
        .map(|envelope| Box::new(Refusal::from_body(status.as_u16(), envelope.error)));
    Err(classify(status, api, retry_after, &bytes))
}

fn classify(
    status: StatusCode,
    api: Option<Box<Refusal>>,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Error {
    let code = status.as_u16();
    let bare = |default_code: &str| {
        Box::new(Refusal::bare(
            code,
            default_code,
            format!(
                "HTTP {code} without Razorpay's error body: {:?}",
                snippet(body)
            ),
        ))
    };
    match status {
        StatusCode::UNAUTHORIZED => {
            Error::Authentication(api.unwrap_or_else(|| bare("BAD_REQUEST_ERROR")))
        }
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
            retry_after,
            error: api,
        },
        StatusCode::CONFLICT => Error::Conflict(api.unwrap_or_else(|| bare("BAD_REQUEST_ERROR"))),
        s if s.is_server_error() => {
            let api = api.unwrap_or_else(|| bare("SERVER_ERROR"));
            if api.code == "GATEWAY_ERROR"
                || matches!(s, StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT)
            {
                Error::Gateway(api)
            } else {
                Error::Server(api)
            }
        }
        s if s.is_client_error() => match api {
            Some(api) if api.description == "The id provided does not exist" => {
                Error::NotFound(api)
            }
            Some(api) if s == StatusCode::NOT_FOUND => Error::NotFound(api),
            Some(api) => Error::BadRequest(api),
            None => Error::UnexpectedBody {
                status: code,
                detail: format!("no error envelope; body starts {:?}", snippet(body)),
            },
        },
        _ => Error::UnexpectedBody {
            status: code,
            detail: format!("unexpected status; body starts {:?}", snippet(body)),
        },
    }
}

fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

/// Ids go into URL paths: only Razorpay's id alphabet is let through.
fn checked_id(id: &str) -> Result<&str, Error> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(Error::InvalidRequest(format!(
            "{id:?} is not a Razorpay id"
        )))
    }
}

fn checked_query(query: &ListQuery) -> Result<&ListQuery, Error> {
    if let Some(count) = query.count
        && !(1..=100).contains(&count)
    {
        return Err(Error::InvalidRequest("count is 1 to 100".into()));
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(Error::InvalidRequest("from is after to".into()));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_labelled_without_their_ids() {
        assert_eq!(
            endpoint_of("/v1/payments/pay_29QQoUBi66xm2f/refund"),
            "/v1/payments/{id}/refund"
        );
        assert_eq!(endpoint_of("/v1/orders"), "/v1/orders");
        assert_eq!(
            endpoint_of("/v1/refunds/rfnd_abcdefghijklmn"),
            "/v1/refunds/{id}"
        );
    }
}
