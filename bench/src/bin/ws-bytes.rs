//! `ws-bytes`: one live viewer; counts the bytes of the update frames received over a fixed
//! time (payload and WebSocket frame headers), with the snapshot on connect counted apart.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use hyper::Method;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;
use vitals_bench::http::Conn;

#[derive(Parser)]
#[command(about = "Bytes on the wire for one live viewer")]
struct Args {
    /// e.g. ws://127.0.0.1:3000/ws
    #[arg(long)]
    url: String,
    /// Counting time after the snapshot.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Distinct operations to ingest over HTTP first (they ride on every fifth update).
    #[arg(long, default_value_t = 0)]
    load_operations: usize,
}

/// Header bytes of an unmasked server-to-client frame carrying `len` payload bytes (RFC 6455).
fn frame_header(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    }
}

/// IPv4 (20) + TCP (20) + TCP timestamps (12): one segment's headers on loopback.
const TCP_IP_HEADERS: usize = 52;

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

/// Ingests `count` distinct operations (three samples each) through `POST /api/v1/ingest`.
async fn load_operations(ws_url: &str, count: usize) -> Result<()> {
    let rest = ws_url.strip_prefix("ws://").context("only ws:// URLs are supported")?;
    let addr = rest.split('/').next().unwrap_or(rest);
    let ops: Vec<serde_json::Value> = (0..count * 3)
        .map(|k| {
            serde_json::json!({
                "name": format!("bench.view.{:03}", k % count),
                "duration_ms": (k * 37 % 1000) as f64,
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "operations": ops }))?;
    let mut conn = Conn::connect(addr).await?;
    let (status, answer) =
        conn.request(Method::POST, "/api/v1/ingest", Some(Bytes::from(body))).await?;
    if status.as_u16() != 202 {
        bail!("loading operations answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    if args.load_operations > 0 {
        load_operations(&args.url, args.load_operations).await?;
    }
    let (mut ws, _) = timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(&args.url))
        .await
        .context("connect timed out")??;
    let snapshot = match timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => t,
        other => bail!("expected a snapshot first, got {other:?}"),
    };
    // Count whole intervals: start at the first update after the snapshot.
    let (mut updates, mut with_ops, mut payload, mut headers, mut other) =
        (0u64, 0u64, 0usize, 0usize, 0usize);
    let mut sizes = Vec::new();
    let mut deadline = None;
    let give_up = Instant::now() + Duration::from_secs(args.secs + 15);
    loop {
        let limit = deadline.unwrap_or(give_up);
        let message = match timeout_at(limit, ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(m))) => m,
            Ok(_) => bail!("the server closed the stream"),
        };
        let len = message.len();
        match message {
            Message::Text(t) if t.contains("\"type\":\"update\"") => {
                if deadline.is_none() {
                    deadline = Some(
                        Instant::now() + Duration::from_secs(args.secs)
                            - Duration::from_millis(500),
                    );
                }
                updates += 1;
                if t.contains("\"operations\"") {
                    with_ops += 1;
                }
                payload += len;
                headers += frame_header(len);
                sizes.push(len);
            }
            _ => {
                other += len + frame_header(len);
            }
        }
    }
    let _ = ws.close(None).await;
    let ws_total = payload + headers + other;
    let tcp_ip = (updates as usize) * TCP_IP_HEADERS;
    sizes.sort_unstable();
    println!(
        "ws-bytes url={} secs={} operations_loaded={}",
        args.url, args.secs, args.load_operations
    );
    println!("  snapshot on connect     {} bytes", snapshot.len());
    println!("  updates                 {updates} ({with_ops} carrying operations)");
    println!(
        "  update sizes            min {} B, median {} B, max {} B",
        sizes.first().unwrap_or(&0),
        sizes.get(sizes.len() / 2).unwrap_or(&0),
        sizes.last().unwrap_or(&0)
    );
    println!("  payload bytes           {payload}");
    println!(
        "  frame headers           {headers} ({:.1} % overhead)",
        headers as f64 / payload.max(1) as f64 * 100.0
    );
    println!("  other frames (ping)     {other}");
    println!(
        "  WebSocket bytes         {ws_total} = {:.2} KiB per {} s",
        ws_total as f64 / 1024.0,
        args.secs
    );
    println!(
        "  + TCP/IP headers        {} B (52 B per segment, one segment per update; ACKs not counted) = {:.2} KiB",
        tcp_ip,
        (ws_total + tcp_ip) as f64 / 1024.0
    );
    println!(
        "summary viewer url={} loaded_operations={} secs={} updates={} with_operations={} \
         payload_bytes={} frame_header_bytes={} ws_kib={:.2} with_tcpip_kib={:.2} snapshot_bytes={}",
        args.url,
        args.load_operations,
        args.secs,
        updates,
        with_ops,
        payload,
        headers,
        ws_total as f64 / 1024.0,
        (ws_total + tcp_ip) as f64 / 1024.0,
        snapshot.len()
    );
    Ok(())
}
