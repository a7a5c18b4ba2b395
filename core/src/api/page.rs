//! The browser page: the files of `web/dist`, embedded at compile time, and their answers.
//!
//! Invariants: every asset is served from the bytes compiled in (the core reads no file);
//! the gzip copy goes only to a request that accepts gzip, the plain bytes to any other;
//! each variant has its own strong ETag (an `If-None-Match` naming it gets a `304` without
//! a body); every answer carries the page's Content-Security-Policy and asks caches to
//! revalidate, so a new binary's page is seen at the next load.

use std::sync::OnceLock;

use crate::http::{RequestHead, Response};

/// The page's Content-Security-Policy: scripts, styles, fonts and images from this server
/// only, sockets and requests to this server only (`'self'` covers `ws:`/`wss:` to the same
/// host in CSP Level 3, which current Chromium and Firefox implement), no framing.
/// `style-src` allows inline styles because xterm.js creates `<style>` elements for its
/// theme and cell sizes; scripts stay strict (no inline script, no eval).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file of the page.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// The request path that names it.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The file's bytes.
    pub plain: &'static [u8],
    /// The same bytes gzip-compressed by the build (`None`: served plain only).
    pub gzip: Option<&'static [u8]>,
}

/// Every file of the page, by path.
static ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        plain: include_bytes!("../../../web/dist/index.html"),
        gzip: Some(include_bytes!("../../../web/dist/index.html.gz")),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        plain: include_bytes!("../../../web/dist/app.js"),
        gzip: Some(include_bytes!("../../../web/dist/app.js.gz")),
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        plain: include_bytes!("../../../web/dist/app.css"),
        gzip: Some(include_bytes!("../../../web/dist/app.css.gz")),
    },
    Asset {
        path: "/LICENSES.txt",
        content_type: "text/plain; charset=utf-8",
        plain: include_bytes!("../../../web/dist/LICENSES.txt"),
        gzip: None,
    },
];

/// The asset a path names (`/index.html` is `/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|asset| asset.path == path)
}

impl Asset {
    /// The answer to a `GET` of this asset: the variant the request accepts, or `304`.
    pub fn respond(&'static self, head: &RequestHead) -> Response {
        let gzip = self.gzip.filter(|_| accepts_gzip(head));
        let etag = self.etag(gzip.is_some());
        let headers = [
            ("ETag".to_string(), etag.to_string()),
            ("Cache-Control".to_string(), "no-cache".to_string()),
            ("Vary".to_string(), "Accept-Encoding".to_string()),
            (
                "Content-Security-Policy".to_string(),
                CONTENT_SECURITY_POLICY.to_string(),
            ),
            ("X-Content-Type-Options".to_string(), "nosniff".to_string()),
        ];
        if head
            .header("if-none-match")
            .is_some_and(|tags| matches_etag(tags, etag))
        {
            return Response::empty(304).with_headers(headers);
        }
        let mut response = Response::new(200, self.content_type, gzip.unwrap_or(self.plain));
        if gzip.is_some() {
            response = response.with_headers([("Content-Encoding".into(), "gzip".into())]);
        }
        response.with_headers(headers)
    }

    /// The ETag of the plain or the gzip variant: a hash of the plain bytes, computed once.
    fn etag(&'static self, gzip: bool) -> &'static str {
        static TAGS: OnceLock<Vec<(String, String)>> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|asset| {
                    let hash = sha1_smol::Sha1::from(asset.plain).digest().to_string();
                    let short = hash.get(..20).unwrap_or(&hash);
                    (format!("\"{short}\""), format!("\"{short}-gz\""))
                })
                .collect()
        });
        let index = ASSETS.iter().position(|a| std::ptr::eq(a, self));
        match (index.and_then(|i| tags.get(i)), gzip) {
            (Some((_, tag)), true) => tag,
            (Some((tag, _)), false) => tag,
            (None, _) => "\"unknown\"",
        }
    }
}

/// True when `Accept-Encoding` lists `gzip` (or `*`) without `q=0`.
fn accepts_gzip(head: &RequestHead) -> bool {
    let Some(accepted) = head.header("accept-encoding") else {
        return false;
    };
    accepted.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// True when an `If-None-Match` value names `etag` (or is `*`); `W/` prefixes are ignored
/// (If-None-Match compares weakly, RFC 9110 §13.1.2).
fn matches_etag(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag == etag
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::http::Method;

    fn get(path: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: Method::Get,
            path: path.into(),
            query: Vec::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn index_is_the_page_with_its_policy() {
        let asset = find("/").unwrap();
        let response = asset.respond(&get("/", &[]));
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(response.header("content-encoding"), None);
        let html = String::from_utf8(response.body.clone()).unwrap();
        assert!(html.contains("<script src=\"app.js\""), "{html}");
        assert!(!html.contains("<script>"), "no inline script under the CSP");
        let csp = response.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert_eq!(find("/index.html"), Some(asset));
    }

    #[test]
    fn gzip_only_when_accepted() {
        let asset = find("/app.js").unwrap();
        let gz = asset.respond(&get("/app.js", &[("Accept-Encoding", "gzip, deflate, br")]));
        assert_eq!(gz.header("content-encoding"), Some("gzip"));
        assert_eq!(&gz.body[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(gz.body.len() < asset.plain.len());
        assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
        for refusing in ["br", "gzip;q=0", "identity", ""] {
            let plain = asset.respond(&get("/app.js", &[("Accept-Encoding", refusing)]));
            assert_eq!(plain.header("content-encoding"), None, "{refusing:?}");
            assert_eq!(plain.body, asset.plain);
        }
        assert_ne!(
            gz.header("etag"),
            asset.respond(&get("/", &[])).header("etag")
        );
    }

    #[test]
    fn etag_revalidation_answers_304_without_body() {
        let asset = find("/app.css").unwrap();
        let first = asset.respond(&get("/app.css", &[("Accept-Encoding", "gzip")]));
        let etag = first.header("etag").unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with("-gz\""), "{etag}");
        let again = asset.respond(&get(
            "/app.css",
            &[("Accept-Encoding", "gzip"), ("If-None-Match", &etag)],
        ));
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        // The plain variant has another tag: a gzip tag does not validate it.
        let plain = asset.respond(&get("/app.css", &[("If-None-Match", &etag)]));
        assert_eq!(plain.status, 200);
        let weak = format!("\"x\", W/{}", plain.header("etag").unwrap());
        let weak = asset.respond(&get("/app.css", &[("If-None-Match", &weak)]));
        assert_eq!(weak.status, 304);
    }

    #[test]
    fn every_asset_is_there_and_unknown_paths_are_not() {
        for asset in &ASSETS {
            assert!(!asset.plain.is_empty(), "{}", asset.path);
        }
        let licences = std::str::from_utf8(find("/LICENSES.txt").unwrap().plain).unwrap();
        assert!(licences.contains("@xterm/xterm"));
        assert!(licences.contains("Permission is hereby granted"));
        assert_eq!(find("/app.jsx"), None);
        assert_eq!(find("/../Cargo.toml"), None);
    }
}
