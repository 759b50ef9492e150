//! Throughput, wake-up latency and memory of swf-local, measured over real HTTP on loopback.
//!
//! `cargo run --release -p swf-local --example throughput -- [SECONDS] [CONNECTIONS]`
//!
//! First: starts 10,000 executions and prints the process's resident memory.
//! Phase 1: CONNECTIONS keep-alive connections (half deciders, half workers) cycle executions
//! through poll -> respond (decision: schedule an activity; activity: complete it); every answer is
//! committed before it is sent. Prints requests/s and latency percentiles.
//! Phase 2: one parked activity poller; a decider schedules a task; prints how long the task takes
//! to reach the poller (p50/p99, measured from sending the decision).

// Same allocator as the `swf-runtime` binary that embeds swf-local: the server allocates many small
// JSON values per request, and glibc malloc (arena locks, consolidation) was a fifth of the
// profile of this workload.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const DOMAIN: &str = "bench";

/// A minimal HTTP/1.1 keep-alive client, so the measurement is the server, not a client stack.
struct Conn {
    stream: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).ok();
        Conn {
            stream: BufReader::new(s),
            addr,
        }
    }

    async fn call(&mut self, action: &str, body: &Value) -> Value {
        let body = body.to_string();
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: SimpleWorkflowService.{action}\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write");
        let mut line = String::new();
        let mut len = 0usize;
        let mut status = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.expect("read");
            if status.is_empty() {
                status = line.clone();
                continue;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().expect("length");
                }
            }
        }
        let mut buf = vec![0; len];
        self.stream.read_exact(&mut buf).await.expect("body");
        let v: Value = serde_json::from_slice(&buf).expect("json");
        assert!(status.contains(" 200 "), "{action}: {status} {v}");
        v
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name, starting with the state: utime and stime
    // are the 12th and 13th of them, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / 100.0
}

fn schedule(id: u64) -> Value {
    json!([{
        "decisionType": "ScheduleActivityTask",
        "scheduleActivityTaskDecisionAttributes": {
            "activityType": {"name": "Work", "version": "1"},
            "activityId": format!("a{id}"),
        }
    }])
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let conns: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config =
        swf_local::Config::new("127.0.0.1:0".parse().unwrap(), dir.path().join("bench.db"));
    config.long_poll_timeout = Duration::from_secs(1);
    let server = swf_local::start(config).await.expect("start");
    let addr = server.local_addr();

    let mut c = Conn::open(addr).await;
    c.call(
        "RegisterDomain",
        &json!({"name": DOMAIN, "workflowExecutionRetentionPeriodInDays": "1"}),
    )
    .await;
    c.call(
        "RegisterWorkflowType",
        &json!({
        "domain": DOMAIN, "name": "Flow", "version": "1", "defaultTaskList": {"name": "d"},
        "defaultTaskStartToCloseTimeout": "60", "defaultExecutionStartToCloseTimeout": "3600",
        "defaultChildPolicy": "TERMINATE"}),
    )
    .await;
    c.call(
        "RegisterActivityType",
        &json!({
        "domain": DOMAIN, "name": "Work", "version": "1", "defaultTaskList": {"name": "w"},
        "defaultTaskScheduleToStartTimeout": "600", "defaultTaskScheduleToCloseTimeout": "600",
        "defaultTaskStartToCloseTimeout": "600", "defaultTaskHeartbeatTimeout": "NONE"}),
    )
    .await;
    for i in 0..(conns * 4) {
        c.call("StartWorkflowExecution", &json!({
            "domain": DOMAIN, "workflowId": format!("wf-{i}"), "workflowType": {"name": "Flow", "version": "1"}})).await;
    }

    // Memory first, while the process holds nothing else: 10,000 open executions.
    for i in 0..10_000 {
        c.call("StartWorkflowExecution", &json!({
            "domain": DOMAIN, "workflowId": format!("mem-{i}"), "workflowType": {"name": "Flow", "version": "1"},
            "taskList": {"name": "mem"}})).await;
    }
    println!(
        "memory: {:.1} MB resident (server and this client) with 10,000 open executions",
        rss_mb()
    );
    // Phase 1: throughput.
    let stop = Arc::new(AtomicBool::new(false));
    let ids = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for n in 0..conns {
        let stop = stop.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut lat = Vec::new();
            let decider = n % 2 == 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if decider {
                    let task = c.call("PollForDecisionTask", &json!({"domain": DOMAIN, "taskList": {"name": "d"}, "maximumPageSize": 10, "reverseOrder": true})).await;
                    lat.push(t.elapsed().as_micros() as u64);
                    let token = task["taskToken"].as_str().unwrap_or("").to_string();
                    if token.is_empty() {
                        continue;
                    }
                    let t = Instant::now();
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    c.call("RespondDecisionTaskCompleted", &json!({"taskToken": token, "decisions": schedule(id)})).await;
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    let task = c.call("PollForActivityTask", &json!({"domain": DOMAIN, "taskList": {"name": "w"}})).await;
                    lat.push(t.elapsed().as_micros() as u64);
                    let token = task["taskToken"].as_str().unwrap_or("").to_string();
                    if token.is_empty() {
                        continue;
                    }
                    let t = Instant::now();
                    c.call("RespondActivityTaskCompleted", &json!({"taskToken": token, "result": "ok"})).await;
                    lat.push(t.elapsed().as_micros() as u64);
                }
            }
            lat
        }));
    }
    let started = Instant::now();
    let cpu_before = cpu_secs();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    lat.sort_unstable();
    println!(
        "throughput: {} requests in {:.1} s = {:.0} requests/s over {conns} connections (latency p50 {:.2} ms, p99 {:.2} ms)",
        lat.len(),
        elapsed,
        lat.len() as f64 / elapsed,
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );
    // Independent of what else runs on the machine: requests per CPU-second of this process
    // (server, its database thread and the client together).
    println!(
        "cpu: {cpu:.1} CPU-seconds used = {:.0} requests per CPU-second (server and client together)",
        lat.len() as f64 / cpu.max(0.001)
    );

    // Phase 2: wake-up latency of a parked poller.
    let mut decider = Conn::open(addr).await;
    let mut wake = Vec::new();
    c.call(
        "StartWorkflowExecution",
        &json!({
        "domain": DOMAIN, "workflowId": "latency", "workflowType": {"name": "Flow", "version": "1"},
        "taskList": {"name": "lat-d"}}),
    )
    .await;
    for i in 0..1000u64 {
        let task = decider.call("PollForDecisionTask", &json!({"domain": DOMAIN, "taskList": {"name": "lat-d"}, "maximumPageSize": 1, "reverseOrder": true})).await;
        let token = task["taskToken"].as_str().unwrap().to_string();
        let poller = tokio::spawn(async move {
            let mut w = Conn::open(addr).await;
            loop {
                let t = w
                    .call(
                        "PollForActivityTask",
                        &json!({"domain": DOMAIN, "taskList": {"name": "lat-w"}}),
                    )
                    .await;
                if let Some(tok) = t["taskToken"].as_str().filter(|s| !s.is_empty()) {
                    let at = Instant::now();
                    w.call("RespondActivityTaskCompleted", &json!({"taskToken": tok}))
                        .await;
                    return at;
                }
            }
        });
        // Let the poller park before the task is scheduled, so this measures the wake-up path.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent = Instant::now();
        let mut d = schedule(1_000_000 + i);
        d[0]["scheduleActivityTaskDecisionAttributes"]["taskList"] = json!({"name": "lat-w"});
        decider
            .call(
                "RespondDecisionTaskCompleted",
                &json!({"taskToken": token, "decisions": d}),
            )
            .await;
        let at = poller.await.expect("poller");
        wake.push(at.duration_since(sent).as_micros() as u64);
    }
    wake.sort_unstable();
    println!(
        "wake-up: scheduling decision sent -> task at a parked poller: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} tasks (both commits included)",
        pct(&wake, 0.50),
        pct(&wake, 0.90),
        pct(&wake, 0.99),
        pct(&wake, 1.0),
        wake.len()
    );

    server.shutdown().await;
}
