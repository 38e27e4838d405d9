//! Reading the app's pages the way a form-filling client must: the CSRF token and the hidden
//! fields of a form.

use anyhow::{Context, Result};

pub fn csrf_of(html: &str) -> Result<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).context("no CSRF token on the page")? + marker.len();
    Ok(html[start..start + 64].to_string())
}

pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#39;", "'")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|part| {
            let attr = |name: &str| {
                part.split_once(&format!("{name}=\""))
                    .and_then(|(_, r)| r.split_once('"'))
                    .map(|(v, _)| unescape(v))
            };
            Some((attr("name")?, attr("value")?))
        })
        .collect()
}

pub fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}
