//! The headers every answer carries so that a browser holds the pages to what they are: no
//! framing by another site (a staff top-up's confirmation cannot be clicked through a frame), no
//! script but the two handlers the pages carry, no content-type guessing, no address of a page
//! sent to another site.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine as _;

/// The print button of a receipt.
pub const PRINT_HANDLER: &str = "window.print()";

/// The import page reads the chosen file into its text area, so the form stays a plain post.
pub const CSV_FILE_HANDLER: &str =
    "const f=this.files[0];if(f){f.text().then(t=>{document.getElementById('csv').value=t;});}";

/// The policy: nothing is loaded from elsewhere, forms post only here, and the only script is
/// the handlers above, allowed by their hashes. Styles are embedded in each page.
static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hashes: Vec<String> = [PRINT_HANDLER, CSV_FILE_HANDLER]
        .iter()
        .map(|handler| {
            let digest = ring::digest::digest(&ring::digest::SHA256, handler.as_bytes());
            let encoded = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
            format!("'sha256-{encoded}'")
        })
        .collect();
    format!(
        "default-src 'none'; script-src 'unsafe-hashes' {}; style-src 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        hashes.join(" ")
    )
});

/// Adds the headers to `response`, leaving any it already has.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if let Ok(policy) = HeaderValue::from_str(&CONTENT_SECURITY_POLICY) {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(policy);
    }
    response
}
