//! Logstash shipping against a stand-in: a TCP listener on 127.0.0.1 reading JSON lines, as
//! Logstash's `tcp` input with the `json_lines` codec does.
//!
//! - The stand-in is stopped and restarted mid-run: every line arrives exactly once, in order.
//! - Lines spooled while Logstash is down survive a restart of the shipper.
//! - A full spool drops lines and counts them (shipper counters and the Prometheus counter).
//!
//! Waits are bounded: reads from the stand-in and counter polls give up after `WAIT`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swf_runtime::telemetry::logstash::{LogstashShipper, ShipperConfig, StatsSnapshot};
use swf_runtime::telemetry::server::prometheus_handle;
use swf_runtime::telemetry::LineSink;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

fn config(addr: SocketAddr, spool: &Path, max_bytes: u64) -> ShipperConfig {
    ShipperConfig {
        addr: addr.to_string(),
        spool_dir: spool.to_path_buf(),
        spool_max_bytes: max_bytes,
        queue_lines: 100_000,
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(5),
    }
}

fn line(seq: u64) -> String {
    json!({"@timestamp": "2026-01-01T00:00:00.000Z", "message": "Line.", "seq": seq}).to_string()
}

/// The stand-in: accepts one connection at a time and reads lines from it.
struct Logstash {
    listener: TcpListener,
    conn: Option<BufReader<TcpStream>>,
}

impl Logstash {
    async fn bind(addr: SocketAddr) -> Logstash {
        Logstash {
            listener: TcpListener::bind(addr).await.unwrap(),
            conn: None,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Reads `n` lines (accepting a new connection when the shipper reconnects) and returns their
    /// sequence numbers.
    async fn read(&mut self, n: usize) -> Vec<u64> {
        let mut seqs = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + WAIT;
        while seqs.len() < n {
            if self.conn.is_none() {
                let (stream, _) = tokio::time::timeout_at(deadline, self.listener.accept())
                    .await
                    .expect("the shipper connects in time")
                    .unwrap();
                self.conn = Some(BufReader::new(stream));
            }
            let mut buf = String::new();
            let read =
                tokio::time::timeout_at(deadline, self.conn.as_mut().unwrap().read_line(&mut buf))
                    .await
                    .unwrap_or_else(|_| panic!("only {} of {n} lines arrived in time", seqs.len()))
                    .unwrap();
            if read == 0 {
                self.conn = None;
                continue;
            }
            let value: Value = serde_json::from_str(buf.trim_end()).unwrap();
            seqs.push(value["seq"].as_u64().unwrap());
        }
        seqs
    }

    /// Nothing more arrives within a short grace period (used only to prove "no duplicates"
    /// after everything expected has arrived, so it cannot make a passing test flaky).
    async fn nothing_more(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return true;
        };
        let mut buf = String::new();
        match tokio::time::timeout(Duration::from_millis(200), conn.read_line(&mut buf)).await {
            Err(_) => true,
            Ok(Ok(0)) => true,
            Ok(_) => false,
        }
    }
}

async fn wait_for(shipper: &LogstashShipper, what: &str, done: impl Fn(StatsSnapshot) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(shipper.stats()) {
        assert!(
            Instant::now() < deadline,
            "{what}: stats {:?}",
            shipper.stats()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logstash_restart_mid_run_loses_nothing_and_keeps_order() {
    let spool = tempfile::tempdir().unwrap();
    let mut logstash = Logstash::bind("127.0.0.1:0".parse().unwrap()).await;
    let addr = logstash.addr();
    let shipper = LogstashShipper::start(config(addr, spool.path(), 64 << 20)).unwrap();

    for seq in 0..500 {
        shipper.write_line(&line(seq));
    }
    assert_eq!(logstash.read(500).await, (0..500).collect::<Vec<_>>());

    // Logstash goes away: its connection and its listener.
    drop(logstash);
    for seq in 500..1500 {
        shipper.write_line(&line(seq));
    }
    wait_for(&shipper, "lines spooled while down", |s| s.spooled >= 1000).await;

    let mut logstash = Logstash::bind(addr).await;
    for seq in 1500..2000 {
        shipper.write_line(&line(seq));
    }
    assert_eq!(logstash.read(1500).await, (500..2000).collect::<Vec<_>>());
    assert!(logstash.nothing_more().await, "a line arrived twice");

    let stats = shipper.stats();
    assert_eq!(stats.shipped, 2000);
    assert_eq!(stats.dropped, 0);
    assert!(stats.connects >= 2, "{stats:?}");
    tokio::task::spawn_blocking(move || drop(shipper))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_lines_survive_a_shipper_restart() {
    let spool = tempfile::tempdir().unwrap();
    let down = free_addr().await;
    let first = LogstashShipper::start(config(down, spool.path(), 64 << 20)).unwrap();
    for seq in 0..300 {
        first.write_line(&line(seq));
    }
    wait_for(&first, "lines spooled", |s| s.spooled == 300).await;
    // Lines still queued at shutdown are spooled too.
    for seq in 300..400 {
        first.write_line(&line(seq));
    }
    tokio::task::spawn_blocking(move || first.shutdown(Duration::from_millis(100)))
        .await
        .unwrap();

    let mut logstash = Logstash::bind("127.0.0.1:0".parse().unwrap()).await;
    let second = LogstashShipper::start(config(logstash.addr(), spool.path(), 64 << 20)).unwrap();
    for seq in 400..450 {
        second.write_line(&line(seq));
    }
    assert_eq!(logstash.read(450).await, (0..450).collect::<Vec<_>>());
    assert!(logstash.nothing_more().await, "a line arrived twice");
    tokio::task::spawn_blocking(move || drop(second))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_and_counts() {
    let metrics = prometheus_handle().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let down = free_addr().await;
    let one = line(0).len() as u64 + 1;
    let shipper = LogstashShipper::start(config(down, spool.path(), one * 10)).unwrap();
    for seq in 0..25 {
        shipper.write_line(&line(seq % 10)); // same length for every line
    }
    wait_for(&shipper, "every line spooled or dropped", |s| {
        s.spooled + s.dropped == 25
    })
    .await;
    let stats = shipper.stats();
    assert_eq!(stats.spooled, 10);
    assert_eq!(stats.dropped, 15);

    let rendered = metrics.render();
    let dropped: f64 = rendered
        .lines()
        .find_map(|l| l.strip_prefix("swf_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no dropped counter in\n{rendered}"))
        .trim()
        .parse()
        .unwrap();
    assert!(dropped >= 15.0, "{dropped}");
    tokio::task::spawn_blocking(move || drop(shipper))
        .await
        .unwrap();
}
