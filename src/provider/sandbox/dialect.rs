//! How the sandbox's answers go on the wire in each [`Dialect`]: the format whatever `fmt`
//! asked, the HTTP status of an error, the charset and its label, a trailer, and the servers
//! that never answer at all (an HTML page, a redirect).
//!
//! Contract: [`answers_in`] picks the format, [`respond`] turns rendered text into the HTTP
//! response, [`instead_of_answers`] is the whole response of a server that never answers.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1251};

use crate::config::Dialect;
use crate::provider::answer::Fmt;

/// The page a server that only ever answers HTML serves (a proxy's login page).
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form method=\"post\"><p>Enter your login or password</p></form></body></html>\n";

/// Where [`Dialect::Redirect`] sends every request.
pub const REDIRECT_TO: &str = "https://smsc.example/sys/info.php";

/// The format answers are in: the one asked for, unless the dialect ignores `fmt`.
pub fn answers_in(dialect: Dialect, asked: Fmt) -> Fmt {
    match dialect {
        Dialect::TextFormat => Fmt::Text,
        Dialect::CsvFormat => Fmt::Csv,
        Dialect::XmlFormat => Fmt::Xml,
        _ => asked,
    }
}

/// The format an error is in: [`Dialect::ErrorText`] writes errors as text.
pub fn errors_in(dialect: Dialect, fmt: Fmt) -> Fmt {
    match dialect {
        Dialect::ErrorText => Fmt::Text,
        _ => fmt,
    }
}

/// The HTTP status of an error with the provider's `code`: 200, as the provider's page has
/// it, or a fitting status in [`Dialect::ErrorHttp`].
pub fn error_status(dialect: Dialect, code: i64) -> StatusCode {
    match (dialect, code) {
        (Dialect::ErrorHttp, 1) => StatusCode::BAD_REQUEST,
        (Dialect::ErrorHttp, 2) => StatusCode::UNAUTHORIZED,
        (Dialect::ErrorHttp, 3) => StatusCode::NOT_FOUND,
        (Dialect::ErrorHttp, 4) => StatusCode::FORBIDDEN,
        (Dialect::ErrorHttp, _) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    }
}

/// The charset bodies are encoded in, and the label the header gives (none: no charset).
fn charset(dialect: Dialect) -> (&'static Encoding, Option<&'static str>) {
    match dialect {
        Dialect::Cp1251 => (WINDOWS_1251, Some("windows-1251")),
        Dialect::Cp1251Unlabelled => (WINDOWS_1251, None),
        Dialect::Cp1251LabelledUtf8 => (WINDOWS_1251, Some("utf-8")),
        Dialect::Utf8LabelledCp1251 => (UTF_8, Some("windows-1251")),
        _ => (UTF_8, Some("utf-8")),
    }
}

/// The HTTP response carrying `text` in `fmt`.
pub fn respond(dialect: Dialect, fmt: Fmt, status: StatusCode, mut text: String) -> Response {
    if dialect == Dialect::TrailingComment && fmt == Fmt::Json {
        text.push_str("\n<!-- served in 3 ms by node-7 -->\n");
    }
    let mime = match fmt {
        Fmt::Json => "application/json",
        Fmt::Xml => "text/xml",
        Fmt::Text | Fmt::Csv => "text/plain",
    };
    let (encoding, label) = charset(dialect);
    let content_type = match label {
        Some(label) => format!("{mime}; charset={label}"),
        None => mime.to_string(),
    };
    let (body, _, _) = encoding.encode(&text);
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.into_owned(),
    )
        .into_response()
}

/// What a server that never answers serves instead, whatever was asked.
pub fn instead_of_answers(dialect: Dialect) -> Option<Response> {
    match dialect {
        Dialect::HtmlOnly => Some(
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                HTML_PAGE,
            )
                .into_response(),
        ),
        Dialect::Redirect => Some(
            (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, REDIRECT_TO)],
            )
                .into_response(),
        ),
        _ => None,
    }
}
