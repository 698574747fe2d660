//! `thesis-loadgen URL TOKEN RATE SECONDS [--stream] [--model M]`
//! `thesis-loadgen URL TOKEN --hold N [--stream] [--model M]`
//!
//! `--hold N` opens N requests at once and reads every one to its end (concurrent open
//! streams); it prints how many succeeded and how long the slowest took.
//!
//! Sends `POST URL` (a Responses API body) at a fixed rate for SECONDS — open loop: every
//! request is sent on its own schedule whatever the earlier ones are doing, so a slow server
//! cannot hold the sending back and hide its queueing (no coordinated omission). Latency runs
//! from the moment a request is sent to the last byte of its body (streams are read to their
//! end); how late the sends were against the schedule is reported apart (`send_late_p99_ms`:
//! the timer's millisecond granularity, or a starved load generator). Prints one JSON line:
//! offered and achieved rate, errors, latency percentiles (ms).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    Some(sorted[idx.min(sorted.len() - 1)])
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// `--stream` and `--model M` (default `bench`).
fn stream_and_model(args: &[String]) -> (bool, String) {
    let stream = args.iter().any(|a| a == "--stream");
    let model = args
        .iter()
        .position(|a| a == "--model")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "bench".into());
    (stream, model)
}

/// One request: Ok(()) once its whole body arrived with a 2xx status.
async fn one(client: &reqwest::Client, url: &str, token: &str, body: String) -> Result<(), String> {
    let res = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = res.status();
    if !status.is_success() {
        let text = res.text().await.unwrap_or_default();
        return Err(format!(
            "{status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    let mut s = res.bytes_stream();
    while let Some(chunk) = s.next().await {
        chunk.map_err(|e| format!("body: {e}"))?;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--hold") {
        let n: usize = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                eprintln!("--hold needs a number of requests");
                std::process::exit(2);
            });
        return hold(&args, n).await;
    }
    if args.len() < 5 {
        eprintln!("usage: thesis-loadgen URL TOKEN RATE SECONDS [--stream] [--model M]");
        std::process::exit(2);
    }
    let (Ok(rate), Ok(seconds)) = (args[3].parse::<f64>(), args[4].parse::<f64>()) else {
        eprintln!("RATE and SECONDS must be numbers");
        std::process::exit(2);
    };
    let url: Arc<str> = args[1].as_str().into();
    let token: Arc<str> = args[2].as_str().into();
    let (stream, model) = stream_and_model(&args);
    let body = serde_json::json!({"model": model, "input": "Say hello to the benchmark.", "stream": stream})
        .to_string();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("the HTTP client builds");
    let total = (rate * seconds).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    // (latency, lateness of the send) per successful request
    let samples: Arc<Mutex<Vec<(f64, f64)>>> =
        Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, token, body) = (client.clone(), url.clone(), token.clone(), body.clone());
        let (samples, errors, first_error) = (samples.clone(), errors.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            match one(&client, &url, &token, body).await {
                Ok(()) => {
                    let latency = sent.elapsed().as_secs_f64() * 1000.0;
                    let late = sent.duration_since(due).as_secs_f64() * 1000.0;
                    samples.lock().expect("not poisoned").push((latency, late));
                }
                Err(e) => {
                    first_error.lock().expect("not poisoned").get_or_insert(e);
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let samples = samples.lock().expect("not poisoned").clone();
    let l = sorted(samples.iter().map(|s| s.0).collect());
    let late = sorted(samples.iter().map(|s| s.1).collect());
    let out = serde_json::json!({
        "rate": rate,
        "seconds": seconds,
        "stream": stream,
        "requests": total,
        "ok": l.len(),
        "errors": errors.load(Ordering::Relaxed),
        "achieved_rps": l.len() as f64 / elapsed,
        "p50_ms": percentile(&l, 50.0),
        "p90_ms": percentile(&l, 90.0),
        "p99_ms": percentile(&l, 99.0),
        "max_ms": l.last().copied(),
        "send_late_p99_ms": percentile(&late, 99.0),
        "first_error": first_error.lock().expect("not poisoned").clone(),
    });
    println!("{out}");
}

/// `--hold N`: N requests at once, each read to its end.
async fn hold(args: &[String], n: usize) {
    let (url, token) = (args[1].clone(), args[2].clone());
    let (stream, model) = stream_and_model(args);
    let body =
        serde_json::json!({"model": model, "input": "Hold this stream open.", "stream": stream})
            .to_string();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(n)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(300))
        .build()
        .expect("the HTTP client builds");
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url, token, body) =
                (client.clone(), url.clone(), token.clone(), body.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                one(&client, &url, &token, body)
                    .await
                    .map(|()| sent.elapsed().as_secs_f64() * 1000.0)
            })
        })
        .collect();
    let mut latencies = vec![];
    let mut errors = 0u64;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(ms)) => latencies.push(ms),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let l = sorted(latencies);
    let out = serde_json::json!({
        "hold": n,
        "stream": stream,
        "ok": l.len(),
        "errors": errors,
        "seconds": start.elapsed().as_secs_f64(),
        "p50_ms": percentile(&l, 50.0),
        "max_ms": l.last().copied(),
        "first_error": first_error,
    });
    println!("{out}");
}
