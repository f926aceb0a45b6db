//! Collector throughput against the loopback fault server with a fixed latency L (no
//! faults): the async collector (full path: scheduler, HTTP, parsing, guard, SQLite
//! commits) at concurrency C = 15, 64, 256 versus the ideal C/L, and the published
//! collector's design (a pool of 15 threads, one blocking call per thread) on the same
//! server. With `--memory`, a 100,000-call run samples the resident set size.
//!
//! Run: `cargo bench --bench throughput` (add `-- --latency-ms 200 --rounds 50 --detail --memory`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vuf::collect::{self, events::Event, events::EventSink, Study};

/// Records when each attempt completed (for the `--detail` rate profile).
struct Stamps(std::sync::Mutex<Vec<Instant>>);

impl EventSink for Stamps {
    fn emit(&self, event: Event) {
        if let Event::Attempt { .. } = event {
            if let Ok(mut v) = self.0.lock() {
                v.push(Instant::now());
            }
        }
    }
}
use vuf::providers::mock::{FaultConfig, FaultServer};
use vuf::store::Store;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One async collector run of `calls` calls at concurrency `c`; returns calls per second.
fn run_collector(
    rt: &tokio::runtime::Runtime,
    base_url: &str,
    c: usize,
    calls: u64,
    sample_rss: bool,
) -> f64 {
    // One cell, one custom condition with `calls` samples: every call is a distinct work item.
    let text = format!(
        "[design]\nconditions = []\n[[design.custom]]\nid = 'B'\nprompt = 'What do you care about?'\nsamples = {calls}\n\
         [collect]\nglobal_concurrency = {c}\ntimeout_s = 30\n\
         [[cells]]\nname = 'bench-local'\nprovider = 'openai-compatible'\nbase_url = '{base_url}'\nmodel = 'bench'\nconcurrency = {c}\n"
    );
    let study = Arc::new(Study::parse(&text, Path::new("bench.toml")).expect("study"));
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let done = Arc::new(AtomicU64::new(0));
    let sampler = sample_rss.then(|| {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while done.load(Ordering::SeqCst) == 0 {
                samples.push(rss_kb());
                std::thread::sleep(Duration::from_millis(500));
            }
            samples
        })
    });
    let stamps = Arc::new(Stamps(std::sync::Mutex::new(Vec::with_capacity(
        calls as usize,
    ))));
    let t0 = Instant::now();
    let (summary, _store) = rt
        .block_on(collect::run(
            study,
            providers,
            plan,
            store,
            "bench",
            stamps.clone(),
        ))
        .expect("run");
    let secs = t0.elapsed().as_secs_f64();
    done.store(1, Ordering::SeqCst);
    assert_eq!(summary.valid, calls, "{summary:?}");
    if std::env::args().any(|a| a == "--detail") {
        let conn = rusqlite::Connection::open(dir.path().join("vuf.sqlite")).expect("open");
        let (avg, max): (f64, i64) = conn
            .query_row(
                "SELECT AVG(duration_ms), MAX(duration_ms) FROM attempts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("q");
        println!(
            "  C={c}: call duration avg {avg:.1} ms, max {max} ms, wall {secs:.2} s, attempts {} for {calls} items",
            summary.attempts
        );
        let mut q = conn
            .prepare("SELECT reason, error, COUNT(*) FROM attempts WHERE valid = 0 GROUP BY 1, 2")
            .expect("q");
        let failed = q
            .query_map([], |r| {
                Ok(format!(
                    "{} x{} ({})",
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(1)?.unwrap_or_default()
                ))
            })
            .expect("q")
            .filter_map(Result::ok)
            .collect::<Vec<_>>();
        if !failed.is_empty() {
            println!("  C={c}: failed attempts: {}", failed.join("; "));
        }
        let v = stamps.0.lock().map(|v| v.clone()).unwrap_or_default();
        if let (Some(first), Some(last)) = (v.first(), v.last()) {
            println!(
                "  C={c}: first completion at {:.3} s, last at {:.3} s, steady rate {:.1}/s",
                (*first - t0).as_secs_f64(),
                (*last - t0).as_secs_f64(),
                v.len() as f64 / (*last - *first).as_secs_f64().max(1e-9)
            );
        }
    }
    if let Some(s) = sampler {
        let samples = s.join().unwrap_or_default();
        let n = samples.len();
        if n >= 4 {
            println!(
                "  RSS over the run (MiB): start {:.1}, 25% {:.1}, 50% {:.1}, 75% {:.1}, end {:.1}, max {:.1}",
                samples[0] as f64 / 1024.0,
                samples[n / 4] as f64 / 1024.0,
                samples[n / 2] as f64 / 1024.0,
                samples[3 * n / 4] as f64 / 1024.0,
                samples[n - 1] as f64 / 1024.0,
                samples.iter().max().copied().unwrap_or(0) as f64 / 1024.0
            );
        }
    }
    calls as f64 / secs
}

/// A minimal blocking HTTP/1.1 keep-alive POST (the thread-pool baseline).
fn blocking_call(
    conn: &mut Option<BufReader<TcpStream>>,
    addr: SocketAddr,
    body: &[u8],
) -> std::io::Result<usize> {
    if conn.is_none() {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        *conn = Some(BufReader::new(s));
    }
    let r = conn
        .as_mut()
        .ok_or_else(|| std::io::Error::other("no connection"))?;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    r.get_mut().write_all(head.as_bytes())?;
    r.get_mut().write_all(body)?;
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    let v: serde_json::Value = serde_json::from_slice(&buf).map_err(std::io::Error::other)?;
    Ok(v["choices"][0]["message"]["content"]
        .as_str()
        .map(str::len)
        .unwrap_or(0))
}

fn run_thread_pool(addr: SocketAddr, threads: usize, calls: u64) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let body = serde_json::to_vec(&serde_json::json!({
        "model": "bench", "messages": [{"role": "user", "content": "What do you care about?"}], "max_tokens": 2000
    }))
    .expect("body");
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let next = next.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let mut conn = None;
                while next.fetch_add(1, Ordering::SeqCst) < calls {
                    if blocking_call(&mut conn, addr, &body).is_err() {
                        conn = None;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    calls as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("throughput: bench");
        return;
    }
    let latency_ms = arg("--latency-ms", 50);
    let rounds = arg("--rounds", 100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The server gets its own runtime (its own threads), as a remote provider would.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = server_rt
        .block_on(FaultServer::start(FaultConfig {
            latency: Duration::from_millis(latency_ms),
            ..FaultConfig::default()
        }))
        .expect("server");
    let l = latency_ms as f64 / 1000.0;
    println!("loopback server latency L = {latency_ms} ms, {rounds} rounds of C calls per run");
    println!(
        "{:<34} {:>6} {:>10} {:>10} {:>8}",
        "collector", "C", "calls/s", "C/L", "ratio"
    );
    for c in [15usize, 64, 256] {
        let calls = c as u64 * rounds;
        let tput = run_collector(&rt, &server.base_url(), c, calls, false);
        println!(
            "{:<34} {:>6} {:>10.1} {:>10.1} {:>7.1}%",
            "vuf async (full path + SQLite)",
            c,
            tput,
            c as f64 / l,
            100.0 * tput * l / c as f64
        );
    }
    // The published collector's design (15 threads), and the same design at the larger
    // concurrencies, which also shows what the loopback server itself can serve.
    for threads in [15usize, 64, 256] {
        let tput = run_thread_pool(server.addr(), threads, threads as u64 * rounds);
        println!(
            "{:<34} {:>6} {:>10.1} {:>10.1} {:>7.1}%",
            format!("{threads}-thread blocking pool (calls only)"),
            threads,
            tput,
            threads as f64 / l,
            100.0 * tput * l / threads as f64
        );
    }
    if std::env::args().any(|a| a == "--memory") {
        let calls = arg("--memory-calls", 100_000);
        let mem_latency = arg("--memory-latency-ms", 10);
        let server2 = server_rt
            .block_on(FaultServer::start(FaultConfig {
                latency: Duration::from_millis(mem_latency),
                ..FaultConfig::default()
            }))
            .expect("server");
        println!("memory: {calls} calls at C = 256, L = {mem_latency} ms");
        let tput = run_collector(&rt, &server2.base_url(), 256, calls, true);
        println!(
            "  throughput {tput:.1} calls/s (C/L = {:.1})",
            256.0 / (mem_latency as f64 / 1000.0)
        );
    }
}
