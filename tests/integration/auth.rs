//! Access control with a token: `--auth all` (the default) guards pages, APIs and `/ws`;
//! browsers sign in with a session cookie; sign-in cannot be forged from another site.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::support::{body_bytes, json, Server, TestApp};

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

/// A request from `addr` (as the listener records its peer) with a bearer token.
fn api_from(addr: &str, token: &str, forwarded_for: Option<&str>) -> Request<Body> {
    let peer: std::net::SocketAddr = format!("{addr}:40000").parse().unwrap();
    let mut request = Request::get("/api/v1/operations")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .extension(axum::extract::ConnectInfo(peer));
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.body(Body::empty()).unwrap()
}

fn login_from(addr: &str, token: &str) -> Request<Body> {
    let peer: std::net::SocketAddr = format!("{addr}:40000").parse().unwrap();
    Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .extension(axum::extract::ConnectInfo(peer))
        .body(Body::from(format!("token={token}")))
        .unwrap()
}

#[tokio::test]
async fn wrong_tokens_lock_out_their_address_and_no_other() {
    use vitals::server::auth::attempts::FAILURES_PER_ADDRESS;
    let app = signed_in_app();
    let right = "tok-7f3a9c21";
    // A browser signed in from the address before the guessing keeps its session.
    let signed_in = app.send(login_from("10.0.0.1", right)).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
    let session = session.split(';').next().unwrap().to_string();
    for i in 0..FAILURES_PER_ADDRESS {
        let status = app.send(api_from("10.0.0.1", &format!("guess-{i}"), None)).await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // Now even the right token from there is refused before it is compared, over the API and
    // the sign-in form alike.
    let locked = app.send(api_from("10.0.0.1", right, None)).await;
    assert_eq!(locked.headers()[header::RETRY_AFTER], "60");
    let (status, body) = json(locked).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("authorization"))
    );
    // A person at the sign-in form reads why, on the form.
    let form = app.send(login_from("10.0.0.1", right)).await;
    assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!form.headers().contains_key(header::SET_COOKIE));
    let html = String::from_utf8(body_bytes(form).await).unwrap();
    assert!(html.contains("too many wrong tokens from this address: try again in 60 s"), "{html}");
    assert!(html.contains(r#"data-testid="login-form""#), "{html}");
    // Another address, and the session, are untouched.
    assert_eq!(app.send(api_from("10.0.0.2", right, None)).await.status(), StatusCode::OK);
    assert_eq!(app.send(login_from("10.0.0.2", right)).await.status(), StatusCode::SEE_OTHER);
    let with_cookie = Request::get("/api/v1/operations")
        .header(header::COOKIE, session.as_str())
        .extension(axum::extract::ConnectInfo(
            "10.0.0.1:40000".parse::<std::net::SocketAddr>().unwrap(),
        ))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(with_cookie).await.status(), StatusCode::OK);
    // The exposition counts both.
    let scrape = Request::get("/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {right}"))
        .body(Body::empty())
        .unwrap();
    let text = String::from_utf8(body_bytes(app.send(scrape).await).await).unwrap();
    assert!(text.contains("\nvitals_auth_wrong_tokens_total 10\n"), "{text}");
    assert!(text.contains("\nvitals_auth_refused_total 2\n"), "{text}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    use vitals::server::auth::attempts::FAILURES_PER_ADDRESS;
    let app = TestApp::with(|c| {
        c.token = Some(vitals::server::config::Secret::new("tok-7f3a9c21"));
        c.trust_forwarded = true;
    });
    for i in 0..FAILURES_PER_ADDRESS {
        let guess = api_from("127.0.0.1", &format!("guess-{i}"), Some("203.0.113.1"));
        assert_eq!(app.send(guess).await.status(), StatusCode::UNAUTHORIZED);
    }
    let proxied = |client| api_from("127.0.0.1", "tok-7f3a9c21", Some(client));
    assert_eq!(app.send(proxied("203.0.113.1")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // The proxy's other clients share its address but not the lockout.
    assert_eq!(app.send(proxied("203.0.113.2")).await.status(), StatusCode::OK);
}

#[test]
fn the_server_counts_wrong_tokens_by_the_connecting_address() {
    use vitals::server::auth::attempts::FAILURES_PER_ADDRESS;
    let server = Server::spawn(&["--token", "tok-7f3a9c21"]);
    let (guesser, other) = ("127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap());
    let with = |token: &'static str| [("Authorization", format!("Bearer {token}"))];
    let call = |from, token: &'static str| {
        let headers = with(token);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server.request_from(from, "GET", "/api/v1/operations", &headers).0
    };
    for _ in 0..FAILURES_PER_ADDRESS {
        assert_eq!(call(guesser, "guess"), 401);
    }
    assert_eq!(call(guesser, "tok-7f3a9c21"), 429);
    assert_eq!(call(other, "tok-7f3a9c21"), 200);
}
