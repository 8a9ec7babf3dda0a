//! The HTTP surface through the router: health, pages, 404, headers, compression, limits, assets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::Value;

use crate::support::{body_bytes, body_text, TestApp};

#[tokio::test]
async fn health_reports_components_and_version() {
    let app = TestApp::new();
    let response = app.get("/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_secs"].is_u64());
    assert!(["ok", "degraded"].contains(&body["status"].as_str().unwrap()), "{body}");
    let data_dir = &body["components"]["data_dir"];
    assert_eq!(data_dir["status"], "ok", "{body}");
    assert!(data_dir["response_time_ms"].is_f64());
    assert!(data_dir["detail"].as_str().unwrap().contains("writable"));
}

#[tokio::test]
async fn health_is_503_when_a_component_is_down() {
    let app = TestApp::new();
    std::fs::remove_dir_all(&app.state.config.data_dir).unwrap();
    let response = app.get("/health").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_eq!(body["status"], "down");
    assert_eq!(body["components"]["data_dir"]["status"], "down");
}

#[tokio::test]
async fn every_page_is_server_rendered() {
    let app = TestApp::new();
    for (path, heading) in [
        ("/", "Dashboard"),
        ("/operations", "Operations"),
        ("/alerts", "Alerts"),
        ("/reports", "Reports"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = body_text(response).await;
        assert!(html.contains(&format!("<h1>{heading}</h1>")), "{path}: {html}");
        assert!(html.contains("data-testid=\"live-badge\""), "{path}");
        assert!(html.contains(&format!("<title>{heading} · Vitals</title>")), "{path}");
    }
}

#[tokio::test]
async fn unknown_paths_answer_404_with_the_app_page() {
    let app = TestApp::new();
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = body_text(response).await;
    assert!(html.contains("Page not found"), "{html}");
    let response = app.get("/pkg/0000/vitals.js").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn security_headers_on_pages_and_json() {
    let app = TestApp::new();
    let page = app.get("/").await;
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_string();
    let html = body_text(page).await;
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "inline scripts must carry the nonce");
    let json = app.get("/health").await;
    assert_eq!(json.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(json.headers()[header::REFERRER_POLICY], "same-origin");
    assert_eq!(
        json.headers()[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn html_and_json_are_compressed() {
    let app = TestApp::new();
    for (path, coding) in [("/", "br"), ("/", "gzip"), ("/health", "gzip"), ("/health", "br")] {
        let response = app
            .send(
                Request::get(path)
                    .header(header::ACCEPT_ENCODING, coding)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        // Said in full when it fails (once in many CI runs it had no Content-Encoding).
        let status = response.status();
        let headers = format!("{:?}", response.headers());
        let encoding = response.headers().get(header::CONTENT_ENCODING).cloned();
        assert_eq!(
            encoding.as_ref().map(|v| v.as_bytes()),
            Some(coding.as_bytes()),
            "{path} {status} {headers}"
        );
    }
}

/// Building a router while a page renders must not keep the page's data from loading (leptos
/// route generation suppresses every `Resource` while it runs; the integration tests build many
/// routers at once, and one page in several CI runs waited until its 408).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_routers_are_built() {
    let app = TestApp::with(|c| c.request_timeout_secs = 3);
    // Builds routers until dropped (also when an assertion fails, so no other test sees it).
    struct Builder(Arc<AtomicBool>);
    impl Drop for Builder {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let building = Builder(Arc::new(AtomicBool::new(false)));
    let (stop, state) = (Arc::clone(&building.0), app.state.clone());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            drop(vitals::server::router(state.clone()));
        }
    });
    for path in ["/", "/operations", "/alerts", "/values"].repeat(5) {
        let page = async {
            let response = app.get(path).await;
            (response.status(), body_text(response).await)
        };
        // A page whose data never loads may also stall after its head: bound the whole answer.
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), page).await;
        let (status, html) = answer.unwrap_or_else(|_| panic!("{path} never finished"));
        assert_eq!(status, StatusCode::OK, "{path} waited for its data: {html}");
        assert!(html.contains("<main"), "{path}: {html}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::with(|c| c.max_body_bytes = 1024);
    let response = app
        .send(
            Request::post("/health")
                .header(header::CONTENT_LENGTH, "4096")
                .body(Body::from(vec![b'x'; 4096]))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn favicon_is_served_with_short_caching() {
    let app = TestApp::new();
    let response = app.get("/favicon.ico").await;
    if response.status() == StatusCode::NOT_FOUND && std::env::var("VITALS_REQUIRE_BUNDLE").is_err()
    {
        eprintln!(
            "site not built; skipping (scripts/test builds it and sets VITALS_REQUIRE_BUNDLE)"
        );
        return;
    }
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=3600");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/x-icon");
}

#[tokio::test]
async fn bundle_is_served_under_a_content_hash_and_cached_for_a_year() {
    let app = TestApp::new();
    let html = body_text(app.get("/").await).await;
    let js = html
        .split('"')
        .find(|s| s.starts_with("/pkg/") && s.ends_with("/vitals.js"))
        .expect("page links the JS bundle")
        .to_string();
    let wasm = html
        .split('"')
        .find(|s| s.starts_with("/pkg/") && s.ends_with(".wasm"))
        .expect("page preloads the WASM bundle")
        .to_string();
    assert_eq!(
        wasm,
        js.replace("/vitals.js", "/vitals.wasm"),
        "the page must load the built bundle"
    );
    let response = app
        .send(
            Request::get(&wasm).header(header::ACCEPT_ENCODING, "br").body(Body::empty()).unwrap(),
        )
        .await;
    if response.status() == StatusCode::NOT_FOUND && std::env::var("VITALS_REQUIRE_BUNDLE").is_err()
    {
        eprintln!(
            "site not built; skipping (scripts/test builds it and sets VITALS_REQUIRE_BUNDLE)"
        );
        return;
    }
    assert_eq!(response.status(), StatusCode::OK, "{wasm}");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
    let stale = app.get(&js.replace(js.split('/').nth(2).unwrap(), "0123456789ab")).await;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_embedded_bundle_is_split_into_its_pages_and_healthy() {
    let app = TestApp::new();
    let health: Value =
        serde_json::from_slice(&body_bytes(app.get("/health").await).await).unwrap();
    let bundle = &health["components"]["ui_bundle"];
    if bundle["status"] != "ok" && std::env::var("VITALS_REQUIRE_BUNDLE").is_err() {
        eprintln!(
            "site not built; skipping (scripts/test builds it and sets VITALS_REQUIRE_BUNDLE)"
        );
        return;
    }
    // A bundle built without `--split` renders pages that never hydrate.
    assert_eq!(bundle["status"], "ok", "{bundle}");
    // A lazily loaded page asks for its own parts of the bundle at once, beside the loader.
    let operations = body_text(app.get("/operations").await).await;
    assert!(operations.contains(r#"rel="modulepreload""#) && operations.contains("/__wasm_split."));
    let parts = operations
        .split('"')
        .filter(|s| s.starts_with("/pkg/") && s.ends_with(".wasm") && !s.ends_with("/vitals.wasm"))
        .collect::<Vec<_>>();
    assert!(
        parts.iter().any(|p| p.contains("/split___operations_route_view_")),
        "the Operations page preloads its part: {parts:?}"
    );
    // The Dashboard needs none of them.
    let dashboard = body_text(app.get("/").await).await;
    assert!(!dashboard.contains("/split___"), "the Dashboard preloads no page's part");
}
