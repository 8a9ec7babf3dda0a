//! Access control with a token: `--auth all` (the default) guards pages, APIs and `/ws`;
//! browsers sign in with a session cookie; sign-in cannot be forged from another site.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::support::{body_bytes, json, TestApp};

fn signed_in_app() -> TestApp {
    TestApp::with(|c| c.token = Some(vitals::server::config::Secret::new("tok-7f3a9c21")))
}

#[tokio::test]
async fn with_a_token_everything_needs_it_and_browsers_sign_in() {
    let app = signed_in_app();
    // APIs and the stream: 401 JSON without the token, 200 with it.
    let (status, body) = json(app.get("/api/v1/operations").await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNAUTHORIZED, Some("authorization")));
    let with_token = Request::get("/api/v1/operations")
        .header(header::AUTHORIZATION, "Bearer tok-7f3a9c21")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(with_token).await.status(), StatusCode::OK);
    let wrong = Request::get("/api/v1/operations")
        .header(header::AUTHORIZATION, "Bearer tok-7f3a9c2")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(wrong).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/ws").await.status(), StatusCode::UNAUTHORIZED);
    // Health and the bundle stay open; a page sends the browser to the sign-in form.
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    let page = app.get("/operations?window=1h").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[header::LOCATION], "/login?next=/operations%3Fwindow%3D1h");
    let form = app.get("/login?next=/operations").await;
    assert_eq!(form.status(), StatusCode::OK);
    let html = String::from_utf8(body_bytes(form).await).unwrap();
    assert!(html.contains(r#"name="token""#) && html.contains(r#"value="/operations""#));

    let login = |token: &str| {
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}&next=%2Foperations")))
            .unwrap()
    };
    let refused = app.send(login("guess")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(!refused.headers().contains_key(header::SET_COOKIE));
    let signed_in = app.send(login("tok-7f3a9c21")).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[header::LOCATION], "/operations");
    let cookie = signed_in.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("tok-7f3a9c21"), "the token must not be the cookie: {cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let with_cookie = |uri: &str| {
        Request::get(uri).header(header::COOKIE, session.as_str()).body(Body::empty()).unwrap()
    };
    assert_eq!(app.send(with_cookie("/operations")).await.status(), StatusCode::OK);
    assert_eq!(app.send(with_cookie("/api/v1/operations")).await.status(), StatusCode::OK);
    // Signing out ends the session.
    let out = Request::post("/logout").header(header::COOKIE, session.as_str()).body(Body::empty());
    assert_eq!(app.send(out.unwrap()).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.send(with_cookie("/api/v1/operations")).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_foreign_page_cannot_sign_a_browser_in() {
    let app = signed_in_app();
    let forged = Request::post("/login")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "http://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("token=tok-7f3a9c21"))
        .unwrap();
    let (status, body) = json(app.send(forged).await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::FORBIDDEN, Some("origin")));
}

#[tokio::test]
async fn sign_in_never_sends_the_browser_to_another_host() {
    // Without a token, `/login` goes straight on to `next`: only to a local path.
    let app = TestApp::new();
    for next in ["/%09/evil.example", "/%0A/evil.example", "/%5Cevil.example", "//evil.example"] {
        let response = app.get(&format!("/login?next={next}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(response.headers()[header::LOCATION], "/", "{next}");
    }
    let response = app.get("/login?next=/operations%3Fwindow%3D1h").await;
    assert_eq!(response.headers()[header::LOCATION], "/operations?window=1h");
}
