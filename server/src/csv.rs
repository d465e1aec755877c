//! CSV answers of the list endpoints: every list answers `text/csv` instead of JSON when the
//! request's `Accept` header asks for it (contract, "Supervisor and department API").
//!
//! Format (one helper for every list, so all exports look alike):
//! - RFC 4180 through the `csv` crate: comma separated, CRLF line ends, fields quoted when
//!   they hold a comma, a quote (doubled) or a line break;
//! - UTF-8 with a byte-order mark, so spreadsheet programs (Excel, WPS) show Chinese text;
//! - a header row with the endpoint's columns, in a fixed order, also for an empty page;
//!   a dotted column (`current.value`) reads a nested member;
//! - cells: `null` → empty, strings as they are, numbers and booleans as JSON writes them,
//!   arrays and objects as JSON text (e.g. tags `["elderly_alone","veteran"]`);
//! - formula neutralising (CSV injection): a text cell starting with `=`, `+`, `-`, `@`, a
//!   tab or a carriage return gets a leading `'`, so a spreadsheet shows it as text instead
//!   of running it. Numbers are JSON numbers, never text, and are not touched.
//!
//! Pagination is the JSON list's: the same `limit`/`cursor`, and the next page's cursor in
//! the `X-Next-Cursor` response header (absent on the last page).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::error::{AppError, AppResult};

/// The UTF-8 byte-order mark every CSV body starts with.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The content type of CSV answers.
pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8";
/// The header carrying the next page's cursor in a CSV answer.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// Whether the request asks for CSV (`Accept: text/csv`, possibly among other types).
pub fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
        })
}

fn lookup<'a>(item: &'a Value, column: &str) -> &'a Value {
    if let Some(v) = item.get(column) {
        return v;
    }
    column
        .split('.')
        .try_fold(item, |v, key| v.get(key))
        .unwrap_or(&Value::Null)
}

/// The text of one cell (see the module notes).
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => {
            if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `items` as a CSV document with a BOM and a header row of `columns`.
pub fn to_csv(columns: &[&str], items: &[Value]) -> AppResult<Vec<u8>> {
    let mut out = BOM.to_vec();
    {
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .quote_style(::csv::QuoteStyle::Necessary)
            .from_writer(&mut out);
        writer.write_record(columns).map_err(AppError::internal)?;
        for item in items {
            writer
                .write_record(columns.iter().map(|c| cell(lookup(item, c))))
                .map_err(AppError::internal)?;
        }
        writer.flush().map_err(AppError::internal)?;
    }
    Ok(out)
}

/// A CSV download of `items`; `name` is the suggested file name (without `.csv`).
pub fn csv_response(
    name: &str,
    columns: &[&str],
    items: &[Value],
    next_cursor: Option<&str>,
) -> AppResult<HttpResponse> {
    let body = to_csv(columns, items)?;
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        resp.insert_header((header::CONTENT_DISPOSITION, v));
    }
    if let Some(c) = next_cursor.and_then(|c| HeaderValue::from_str(c).ok()) {
        resp.insert_header((NEXT_CURSOR_HEADER, c));
    }
    Ok(resp.body(body))
}

/// Answer a list page as JSON `{"items", "next_cursor"}`, or as CSV when the request asks
/// for it.
pub fn list_response(
    req: &HttpRequest,
    name: &str,
    columns: &[&str],
    items: Vec<Value>,
    next_cursor: Option<String>,
) -> AppResult<HttpResponse> {
    if wants_csv(req) {
        csv_response(name, columns, &items, next_cursor.as_deref())
    } else {
        Ok(HttpResponse::Ok().json(json!({"items": items, "next_cursor": next_cursor})))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn quoting_bom_and_cells() {
        let items = vec![
            json!({"a": "幸福路1号, 3栋", "b": {"c": "say \"hi\"\nbye"}, "n": -3, "t": ["x", "y"], "z": null}),
            json!({"a": "=SUM(A1)", "b": {"c": true}, "n": 1.5, "t": [], "z": "ok"}),
        ];
        let out = to_csv(&["a", "b.c", "n", "t", "z"], &items).unwrap();
        assert!(out.starts_with(BOM));
        let text = std::str::from_utf8(&out[3..]).unwrap();
        assert_eq!(
            text,
            "a,b.c,n,t,z\r\n\"幸福路1号, 3栋\",\"say \"\"hi\"\"\nbye\",-3,\"[\"\"x\"\",\"\"y\"\"]\",\r\n'=SUM(A1),true,1.5,[],ok\r\n"
        );
        let empty = to_csv(&["id"], &[]).unwrap();
        assert_eq!(&empty[3..], b"id\r\n");
    }

    #[test]
    fn accept_negotiation() {
        let csv = TestRequest::default()
            .insert_header(("accept", "application/json;q=0.5, text/csv"))
            .to_http_request();
        assert!(wants_csv(&csv));
        let json = TestRequest::default()
            .insert_header(("accept", "application/json"))
            .to_http_request();
        assert!(!wants_csv(&json));
        assert!(!wants_csv(&TestRequest::default().to_http_request()));
    }
}
