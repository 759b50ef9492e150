//! SQLite persistence with group commit.
//!
//! The in-memory state is the source of truth while the server runs; this module makes it durable.
//! Each request hands its writes (new history events, a new execution's identity row, heartbeats,
//! changed domain/type rows) to one writer thread, which commits everything waiting as a single
//! transaction and then acknowledges every batch in it; the HTTP answer is sent only after that
//! acknowledgement. Events go to an append-only log (rowid order), so a commit touches a few
//! sequential pages however many executions it covers; execution state is not stored but rebuilt
//! from the events on start ([`Store::open`] reads everything back). The writer thread ends when
//! the [`Writer`] is closed, after committing what is queued.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use crate::Durability;

/// One row change.
#[derive(Debug)]
pub enum Op {
    Domain {
        name: String,
        json: String,
    },
    Type {
        key: String,
        json: String,
    },
    /// The identity of a new execution (domain, ids), written once.
    Execution {
        run_id: String,
        json: String,
    },
    Event {
        run_id: String,
        event_id: i64,
        json: String,
    },
    /// Heartbeats add no event, but their time and details must survive a restart.
    Heartbeat {
        run_id: String,
        scheduled_id: i64,
        started_id: i64,
        ms: i64,
        details: Option<String>,
    },
    DeleteExecution {
        run_id: String,
    },
}

enum Msg {
    Batch { ops: Vec<Op>, done: Done },
    Close,
}

/// Callback run on the writer thread with a batch's commit result.
pub type Then = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Who learns that a batch is committed.
enum Done {
    Reply(oneshot::Sender<Result<(), String>>),
    /// Runs on the writer thread: lets a parked poll get its answer in one wake-up.
    Then(Then),
}

impl Done {
    fn finish(self, result: Result<(), String>) {
        match self {
            Done::Reply(tx) => {
                let _ = tx.send(result);
            }
            Done::Then(f) => f(result),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot read database: {0}")]
    Read(#[from] rusqlite::Error),
    #[error("corrupt row in database: {0}")]
    Corrupt(String),
    #[error("cannot start the database writer thread: {0}")]
    Thread(std::io::Error),
}

/// The last heartbeat of a started activity.
pub struct HeartbeatRow {
    pub run_id: String,
    pub scheduled_id: i64,
    pub started_id: i64,
    pub ms: i64,
    pub details: Option<String>,
}

/// Everything stored, as written.
pub struct Loaded {
    pub domains: Vec<String>,
    pub types: Vec<String>,
    /// Execution identity rows with their events in id order.
    pub executions: Vec<(String, Vec<String>)>,
    pub heartbeats: Vec<HeartbeatRow>,
}

pub struct Store;

fn open(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(err)?;
    // Appends rewrite the log's last page in every commit; checkpointing less often copies each
    // such page to the database once instead of many times (the WAL grows to about 40 MB).
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)
        .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS domains (name TEXT PRIMARY KEY, json TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS types (key TEXT PRIMARY KEY, json TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS execution_ids (run_id TEXT PRIMARY KEY, json TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS event_log (
             seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, event_id INTEGER NOT NULL,
             json TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS heartbeats (
             run_id TEXT NOT NULL, scheduled_id INTEGER NOT NULL, started_id INTEGER NOT NULL,
             ms INTEGER NOT NULL, details TEXT, PRIMARY KEY (run_id, scheduled_id)) WITHOUT ROWID;
         CREATE TEMP TABLE IF NOT EXISTS purge (run_id TEXT PRIMARY KEY);",
    )
    .map_err(err)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database, reads it whole and starts the writer thread.
    pub fn open(path: &Path, durability: Durability) -> Result<(Loaded, Writer), StoreError> {
        let conn = open(path, durability)?;
        let loaded = load(&conn)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("swf-local-db".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(StoreError::Thread)?;
        Ok((
            loaded,
            Writer {
                tx,
                thread: Some(thread),
            },
        ))
    }
}

fn load(conn: &Connection) -> Result<Loaded, StoreError> {
    let strings = |sql: &str| -> Result<Vec<String>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    };
    let domains = strings("SELECT json FROM domains")?;
    let types = strings("SELECT json FROM types")?;
    let mut by_run: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    {
        // Rowid order is commit order, which is event id order within each execution.
        let mut stmt = conn.prepare("SELECT run_id, event_id, json FROM event_log ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (run_id, id, json) = row?;
            let events = by_run.entry(run_id).or_default();
            if id != events.len() as i64 + 1 {
                return Err(StoreError::Corrupt(format!(
                    "event {id} is out of order (expected {})",
                    events.len() + 1
                )));
            }
            events.push(json);
        }
    }
    let mut executions = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT run_id, json FROM execution_ids")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (run_id, json) = row?;
            let events = by_run.remove(&run_id).unwrap_or_default();
            executions.push((json, events));
        }
    }
    let mut heartbeats = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT run_id, scheduled_id, started_id, ms, details FROM heartbeats")?;
        let rows = stmt.query_map([], |r| {
            Ok(HeartbeatRow {
                run_id: r.get(0)?,
                scheduled_id: r.get(1)?,
                started_id: r.get(2)?,
                ms: r.get(3)?,
                details: r.get(4)?,
            })
        })?;
        for row in rows {
            heartbeats.push(row?);
        }
    }
    Ok(Loaded {
        domains,
        types,
        executions,
        heartbeats,
    })
}

fn apply(conn: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Domain { name, json } => {
            let mut s =
                conn.prepare_cached("INSERT OR REPLACE INTO domains (name, json) VALUES (?1, ?2)")?;
            s.execute(params![name, json])?;
        }
        Op::Type { key, json } => {
            let mut s =
                conn.prepare_cached("INSERT OR REPLACE INTO types (key, json) VALUES (?1, ?2)")?;
            s.execute(params![key, json])?;
        }
        Op::Execution { run_id, json } => {
            let mut s = conn.prepare_cached(
                "INSERT OR REPLACE INTO execution_ids (run_id, json) VALUES (?1, ?2)",
            )?;
            s.execute(params![run_id, json])?;
        }
        Op::Event {
            run_id,
            event_id,
            json,
        } => {
            let mut s = conn.prepare_cached(
                "INSERT INTO event_log (run_id, event_id, json) VALUES (?1, ?2, ?3)",
            )?;
            s.execute(params![run_id, event_id, json])?;
        }
        Op::Heartbeat {
            run_id,
            scheduled_id,
            started_id,
            ms,
            details,
        } => {
            let mut s = conn.prepare_cached(
                "INSERT OR REPLACE INTO heartbeats (run_id, scheduled_id, started_id, ms, details)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            s.execute(params![run_id, scheduled_id, started_id, ms, details])?;
        }
        Op::DeleteExecution { run_id } => {
            conn.prepare_cached("DELETE FROM heartbeats WHERE run_id = ?1")?
                .execute([run_id])?;
            conn.prepare_cached("DELETE FROM execution_ids WHERE run_id = ?1")?
                .execute([run_id])?;
            // The event log has no run index (it would make every append a random write), so
            // purged runs are collected and their events removed in one scan per commit.
            conn.prepare_cached("INSERT OR IGNORE INTO temp.purge (run_id) VALUES (?1)")?
                .execute([run_id])?;
        }
    }
    Ok(())
}

fn commit(conn: &Connection, batches: &[Vec<Op>]) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let mut purged = false;
        for op in batches.iter().flatten() {
            purged |= matches!(op, Op::DeleteExecution { .. });
            apply(conn, op)?;
        }
        if purged {
            conn.execute_batch(
                "DELETE FROM event_log WHERE run_id IN (SELECT run_id FROM temp.purge);
                 DELETE FROM temp.purge;",
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(err) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(err)
        }
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Msg>) {
    let mut closing = false;
    while !closing {
        let first = match rx.recv() {
            Ok(m) => m,
            Err(_) => break,
        };
        let mut batches = Vec::new();
        let mut waiters = Vec::new();
        let mut push = |m: Msg, closing: &mut bool| match m {
            Msg::Batch { ops, done } => {
                if !ops.is_empty() {
                    batches.push(ops);
                }
                waiters.push(done);
            }
            Msg::Close => *closing = true,
        };
        push(first, &mut closing);
        // Group commit: everything that queued up while the last transaction ran goes in this one.
        while let Ok(m) = rx.try_recv() {
            push(m, &mut closing);
        }
        let result = if batches.is_empty() {
            Ok(())
        } else {
            commit(&conn, &batches).map_err(|err| {
                tracing::error!(error = %err, "Committing to the swf-local database failed.");
                err.to_string()
            })
        };
        for w in waiters {
            w.finish(result.clone());
        }
    }
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
}

/// Handle to the writer thread.
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Queues a batch; the receiver resolves once it is committed. Batches commit in queue order.
    pub fn submit(&self, ops: Vec<Op>) -> oneshot::Receiver<Result<(), String>> {
        let (done, rx) = oneshot::channel();
        self.send(ops, Done::Reply(done));
        rx
    }

    /// Queues a batch; `then` runs on the writer thread with its commit result.
    pub fn submit_then(&self, ops: Vec<Op>, then: Then) {
        self.send(ops, Done::Then(then));
    }

    fn send(&self, ops: Vec<Op>, done: Done) {
        if let Err(mpsc::SendError(Msg::Batch { done, .. })) =
            self.tx.send(Msg::Batch { ops, done })
        {
            done.finish(Err("the database writer has stopped".to_string()));
        }
    }

    /// Commits what is queued, then stops the thread and closes the database.
    pub fn close(&mut self) {
        let _ = self.tx.send(Msg::Close);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn committed_rows_are_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let (loaded, mut w) = Store::open(&path, Durability::Normal).unwrap();
            assert!(loaded.executions.is_empty());
            let a = w.submit(vec![
                Op::Execution {
                    run_id: "r".into(),
                    json: "{}".into(),
                },
                Op::Event {
                    run_id: "r".into(),
                    event_id: 1,
                    json: "{\"eventId\":1}".into(),
                },
            ]);
            let b = w.submit(vec![Op::Domain {
                name: "d".into(),
                json: "{}".into(),
            }]);
            a.await.unwrap().unwrap();
            b.await.unwrap().unwrap();
            w.close();
        }
        let (loaded, mut w) = Store::open(&path, Durability::Full).unwrap();
        assert_eq!(loaded.domains.len(), 1);
        assert_eq!(loaded.executions.len(), 1);
        assert_eq!(loaded.executions[0].1.len(), 1);
        w.submit(vec![Op::Heartbeat {
            run_id: "r".into(),
            scheduled_id: 5,
            started_id: 6,
            ms: 7,
            details: Some("d".into()),
        }])
        .await
        .unwrap()
        .unwrap();
        w.close();
        drop(w);
        let (loaded, mut w) = Store::open(&path, Durability::Normal).unwrap();
        assert_eq!(loaded.heartbeats.len(), 1);
        assert_eq!(loaded.heartbeats[0].details.as_deref(), Some("d"));
        w.submit(vec![Op::DeleteExecution { run_id: "r".into() }])
            .await
            .unwrap()
            .unwrap();
        w.close();
        drop(w);
        let (loaded, mut w) = Store::open(&path, Durability::Normal).unwrap();
        assert!(loaded.executions.is_empty());
        assert!(loaded.heartbeats.is_empty());
        let conn = Connection::open(&path).unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM event_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "purged events are deleted");
        w.close();
    }
}
