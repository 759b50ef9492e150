//! Shipping JSON lines to Logstash's `tcp` input (`json_lines` codec) without ever blocking the
//! work that logs.
//!
//! The log layer hands each line to [`LogstashShipper::write_line`], a copy into a bounded
//! in-memory [`LineQueue`]; when the queue is full the line is dropped and counted. One background
//! thread owns the connection and the on-disk [`Spool`]:
//! - connected and the spool empty: lines go straight to the socket;
//! - unreachable: lines go to the spool, and the thread reconnects with exponential backoff
//!   (`backoff_min` doubling up to `backoff_max`);
//! - back online: the spool is delivered first, oldest line first, while newer lines keep being
//!   appended behind it, so Logstash sees every line in order.
//!
//! A thread rather than a Tokio task: it keeps shipping while the application's runtime shuts
//! down, and the guard can join it from synchronous `Drop`. The socket is blocking with write
//! timeouts, and before each batch the thread checks that Logstash has not closed the connection
//! (a closed peer still accepts a first write that is then silently lost).
//!
//! Logstash's TCP input sends no acknowledgements: lines written into a connection that dies
//! while they are in flight can be lost; lines written while Logstash is known to be down never
//! are. On shutdown the queue is delivered (within a deadline) or spooled, and the spool is read
//! again by the next process.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::events::{LogLinesShipped, LogLinesSpooled, TelemetryDropped, TelemetryEvent};
use super::json::LineSink;
use super::line_queue::{Batch, CloseOnDrop, LineQueue, Push, Wait};
use super::spool::Spool;
use super::{TelemetryConfig, TelemetryError};

/// When idle, the thread waits this long after the first new line before sending, so a busy
/// process wakes it (and pays a write and a peer check) about 20 times a second rather than once
/// per line; per-line wake-ups were most of the shipper's cost on two cores (20 ms still meant
/// 0.17 wake-ups per bench execution). Lines reach Logstash within 50 ms.
const LINGER: Duration = Duration::from_millis(50);
/// Bytes read from the spool per delivery step.
const SPOOL_READ_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// `host:port` of the Logstash `tcp` input.
    pub addr: String,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub queue_lines: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
}

impl ShipperConfig {
    pub fn from_telemetry(addr: &str, cfg: &TelemetryConfig) -> Self {
        ShipperConfig {
            addr: addr.to_string(),
            spool_dir: cfg.effective_spool_dir(),
            spool_max_bytes: cfg.logstash_spool_max_bytes,
            queue_lines: cfg.logstash_queue_lines,
            backoff_min: Duration::from_millis(cfg.logstash_backoff_min_ms.max(1)),
            backoff_max: Duration::from_millis(
                cfg.logstash_backoff_max_ms.max(cfg.logstash_backoff_min_ms),
            ),
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of one shipper (the Prometheus counters add up every shipper of the process).
#[derive(Debug, Default)]
pub struct ShipperStats {
    pub shipped: AtomicU64,
    pub spooled: AtomicU64,
    pub dropped: AtomicU64,
    pub connects: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub shipped: u64,
    pub spooled: u64,
    pub dropped: u64,
    pub connects: u64,
}

enum Msg {
    Shutdown(Instant),
}

/// Says "dropping" once per episode of drops rather than once per line.
#[derive(Default)]
struct DropReporter {
    reported: AtomicBool,
}

impl DropReporter {
    fn dropped(&self, stats: &ShipperStats, lines: u64, reason: &'static str) {
        if lines == 0 {
            return;
        }
        stats.dropped.fetch_add(lines, Ordering::Relaxed);
        TelemetryDropped {
            lines,
            first_of_episode: !self.reported.swap(true, Ordering::Relaxed),
            reason,
        }
        .emit();
    }

    fn recovered(&self) {
        self.reported.store(false, Ordering::Relaxed);
    }
}

pub struct LogstashShipper {
    queue: Arc<LineQueue<Msg>>,
    stats: Arc<ShipperStats>,
    drops: Arc<DropReporter>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl LogstashShipper {
    /// Opens the spool (reading what a previous process left) and starts the shipping thread.
    pub fn start(cfg: ShipperConfig) -> Result<Self, TelemetryError> {
        let spool = Spool::open(&cfg.spool_dir, cfg.spool_max_bytes).map_err(|source| {
            TelemetryError::Io {
                path: cfg.spool_dir.clone(),
                source,
            }
        })?;
        if cfg.addr.trim().is_empty() {
            return Err(TelemetryError::InvalidConfig(
                "logstash_addr is empty".into(),
            ));
        }
        let queue = Arc::new(LineQueue::new(cfg.queue_lines));
        let stats = Arc::new(ShipperStats::default());
        let drops = Arc::new(DropReporter::default());
        let worker = Worker {
            cfg: cfg.clone(),
            queue: queue.clone(),
            spool,
            conn: None,
            backoff: cfg.backoff_min,
            next_attempt: Instant::now(),
            stats: stats.clone(),
            drops: drops.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("logstash-shipper".into())
            .spawn(move || worker.run())
            .map_err(|source| TelemetryError::Io {
                path: PathBuf::from("<logstash-shipper thread>"),
                source,
            })?;
        Ok(LogstashShipper {
            queue,
            stats,
            drops,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            shipped: self.stats.shipped.load(Ordering::Relaxed),
            spooled: self.stats.spooled.load(Ordering::Relaxed),
            dropped: self.stats.dropped.load(Ordering::Relaxed),
            connects: self.stats.connects.load(Ordering::Relaxed),
        }
    }

    /// Delivers what is queued (giving up at `deadline` from now), spools the rest and stops.
    pub fn shutdown(&self, deadline: Duration) {
        let _ = self.queue.send(Msg::Shutdown(Instant::now() + deadline));
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for LogstashShipper {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(2));
    }
}

impl LineSink for LogstashShipper {
    fn write_line(&self, line: &str) {
        match self.queue.push(line, false) {
            Push::Queued | Push::Closed => {}
            Push::Full => self.drops.dropped(&self.stats, 1, "queue_full"),
        }
    }
}

struct Worker {
    cfg: ShipperConfig,
    queue: Arc<LineQueue<Msg>>,
    spool: Spool,
    conn: Option<TcpStream>,
    backoff: Duration,
    next_attempt: Instant,
    stats: Arc<ShipperStats>,
    drops: Arc<DropReporter>,
}

impl Worker {
    fn run(mut self) {
        let queue = self.queue.clone();
        let _close = CloseOnDrop(&queue);
        // Every pass ends with these lines sent or spooled, so the next take finds it empty.
        let mut pending: Batch<Msg> = Batch::default();
        let mut shutdown: Option<Instant> = None;
        loop {
            // Wait for lines, but not past the next reconnect attempt when there is a backlog,
            // and not at all while the spool can be delivered.
            let backlog = !self.spool.is_empty();
            let wait = match (&self.conn, backlog) {
                _ if shutdown.is_some() => Some(Duration::ZERO),
                (Some(_), true) => Some(Duration::ZERO),
                (None, true) => Some(self.next_attempt.saturating_duration_since(Instant::now())),
                (_, false) => None,
            };
            if let Some(deadline) = self.receive(wait, &mut pending) {
                shutdown = Some(deadline);
            }

            if self.conn.is_none()
                && (!self.spool.is_empty() || pending.lines > 0)
                && Instant::now() >= self.next_attempt
                && shutdown.is_none_or(|d| Instant::now() < d)
            {
                self.connect();
            }
            if self.conn.is_some() && self.peer_closed() {
                self.disconnect();
            }

            if self.conn.is_some() && !self.spool.is_empty() {
                // Order: what waits on disk goes first, newer lines queue behind it.
                self.spool_lines(&mut pending);
                self.deliver_spool(shutdown);
            } else if self.conn.is_some() && pending.lines > 0 {
                if let Err(err) = self.send_bytes(&pending.bytes) {
                    self.connection_lost(&err);
                    self.spool_lines(&mut pending);
                } else {
                    self.delivered(pending.lines);
                    pending.clear_lines();
                }
            } else if pending.lines > 0 {
                self.spool_lines(&mut pending);
            }

            if let Some(deadline) = shutdown {
                let done = self.spool.is_empty() && pending.lines == 0;
                if done || Instant::now() >= deadline || self.conn.is_none() {
                    // Whatever is still in the queue goes to disk for the next process.
                    self.spool_lines(&mut pending);
                    self.queue.take(Wait::Never, &mut pending);
                    self.spool_lines(&mut pending);
                    return;
                }
            }
        }
    }

    /// Takes what is queued into `pending` (waiting as `wait` says: `None` until something comes,
    /// then [`LINGER`] more); returns the deadline of a shutdown asked for.
    fn receive(&mut self, wait: Option<Duration>, pending: &mut Batch<Msg>) -> Option<Instant> {
        let wait = match wait {
            None => Wait::Forever { linger: LINGER },
            Some(timeout) if timeout.is_zero() => Wait::Never,
            Some(timeout) => Wait::For(timeout),
        };
        self.queue.take(wait, pending);
        pending
            .control
            .drain(..)
            .map(|Msg::Shutdown(deadline)| deadline)
            .min()
    }

    fn connect(&mut self) {
        match resolve(&self.cfg.addr)
            .and_then(|addr| TcpStream::connect_timeout(&addr, self.cfg.connect_timeout))
        {
            Ok(stream) => {
                let _ = stream.set_write_timeout(Some(self.cfg.write_timeout));
                let _ = stream.set_nodelay(true);
                self.conn = Some(stream);
                self.backoff = self.cfg.backoff_min;
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.next_attempt = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(self.cfg.backoff_max);
            }
        }
    }

    fn disconnect(&mut self) {
        self.conn = None;
        self.next_attempt = Instant::now() + self.backoff;
    }

    fn connection_lost(&mut self, err: &io::Error) {
        // stderr: a tracing event here would come straight back into this queue.
        eprintln!(
            "Logstash connection to {} lost, spooling lines: {err}.",
            self.cfg.addr
        );
        self.disconnect();
    }

    /// True when Logstash closed its end; drains anything it sent (it sends nothing normally).
    fn peer_closed(&mut self) -> bool {
        let Some(stream) = self.conn.as_mut() else {
            return true;
        };
        if stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut buf = [0u8; 512];
        let closed = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        closed || stream.set_nonblocking(false).is_err()
    }

    fn send_lines(&mut self, lines: &[String]) -> io::Result<()> {
        let total: usize = lines.iter().map(|l| l.len() + 1).sum();
        let mut buf = Vec::with_capacity(total);
        for line in lines {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        self.send_bytes(&buf)
    }

    /// Writes whole lines, each followed by its newline.
    fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self
            .conn
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        stream.write_all(bytes)?;
        stream.flush()
    }

    fn delivered(&mut self, lines: usize) {
        if lines == 0 {
            return;
        }
        self.stats
            .shipped
            .fetch_add(lines as u64, Ordering::Relaxed);
        LogLinesShipped {
            lines: lines as u64,
        }
        .emit();
        self.drops.recovered();
    }

    fn spool_lines(&mut self, pending: &mut Batch<Msg>) {
        if pending.lines == 0 {
            return;
        }
        let taken = match self.spool.append(pending.lines()) {
            Ok(taken) => taken,
            Err(err) => {
                eprintln!(
                    "Cannot write the Logstash spool in {}: {err}.",
                    self.cfg.spool_dir.display()
                );
                0
            }
        };
        if taken > 0 {
            self.stats
                .spooled
                .fetch_add(taken as u64, Ordering::Relaxed);
            LogLinesSpooled {
                lines: taken as u64,
            }
            .emit();
        }
        self.drops
            .dropped(&self.stats, (pending.lines - taken) as u64, "spool_full");
        pending.clear_lines();
    }

    /// Sends one batch of spooled lines, so that the queue is drained into the spool between
    /// batches and never fills up; while shutting down, keeps going until empty or the deadline.
    fn deliver_spool(&mut self, shutdown: Option<Instant>) {
        loop {
            let batch = match self.spool.peek(SPOOL_READ_BYTES) {
                Ok(Some(batch)) => batch,
                Ok(None) => return,
                Err(err) => {
                    eprintln!(
                        "Cannot read the Logstash spool in {}: {err}.",
                        self.cfg.spool_dir.display()
                    );
                    return;
                }
            };
            let (lines, cursor) = batch;
            if let Err(err) = self.send_lines(&lines) {
                self.connection_lost(&err);
                return;
            }
            if let Err(err) = self.spool.commit(cursor) {
                eprintln!(
                    "Cannot record the Logstash spool offset in {}: {err}.",
                    self.cfg.spool_dir.display()
                );
            }
            self.delivered(lines.len());
            match shutdown {
                Some(deadline) if Instant::now() < deadline => continue,
                _ => return,
            }
        }
    }
}

fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr} has no address")))
}
