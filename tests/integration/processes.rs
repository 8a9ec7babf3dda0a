//! The top processes of the host over HTTP: scanned by the collector, stored, and answered by
//! `GET /api/v1/host/processes`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::support::TestApp;

#[tokio::test]
async fn the_top_processes_are_stored_and_answered_over_a_range() {
    let app = TestApp::new();
    let started = Instant::now();
    // The first scan is a base; the next comes with the sample one interval later.
    let answer = loop {
        let (status, answer) = app.get_json("/api/v1/host/processes?from=-5m").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if answer["scans"].as_u64().unwrap() > 0 {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no process scan stored: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    };
    let by_memory = answer["by_memory"].as_array().unwrap();
    assert!(!by_memory.is_empty() && by_memory.len() <= 5, "{answer}");
    for p in by_memory {
        assert!(!p["name"].as_str().unwrap().is_empty(), "{p}");
        assert!(p["rss_max_bytes"].as_u64().unwrap() > 0, "{p}");
    }
    assert!(answer["by_cpu"].as_array().unwrap().len() <= 5, "{answer}");
    assert!(answer["from_ms"].as_u64().unwrap() < answer["to_ms"].as_u64().unwrap());
    // A range before any scan has none.
    let (status, old) = app.get_json("/api/v1/host/processes?from=-3h&to=-2h").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((old["scans"].as_u64(), old["by_cpu"].as_array().map(Vec::len)), (Some(0), Some(0)));
}

#[tokio::test]
async fn a_bad_range_is_a_400_naming_the_parameter() {
    let app = TestApp::new();
    for (uri, field) in [
        ("/api/v1/host/processes?from=yesterday", "from"),
        ("/api/v1/host/processes?to=soon", "to"),
        ("/api/v1/host/processes?from=-1h&to=-2h", "from"),
    ] {
        let (status, body) = app.get_json(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["field"], field, "{uri}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with(field), "{uri}: {body}");
    }
    let (status, body) = app.get_json("/api/v1/host/processes?from=-1h").await;
    assert_eq!(status, StatusCode::OK, "the server answers after the bad ranges: {body}");
}
