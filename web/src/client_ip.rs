//! The client's address, for limits per address: the connection's, or the first address of the
//! proxy header configured in `server.client_ip_header` (only behind a proxy that sets it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

use crate::{configuration::Settings, state::AppState};

/// The client's address: the connection's, or the first address of the configured proxy header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn of(parts: &Parts, settings: &Settings) -> ClientIp {
        let header = settings.server.client_ip_header.trim();
        if !header.is_empty()
            && let Some(ip) = parts
                .headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return ClientIp(ip);
        }
        ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        )
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(parts, &state.settings))
    }
}
