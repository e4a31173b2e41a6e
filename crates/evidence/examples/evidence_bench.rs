//! The evidence log measured: durable appends per second with checkpoints
//! on, append-to-checkpoint latency, bytes stored per record, and inclusion
//! proof time in a tree of millions of records, each beside a peer run in
//! the same process. Driven by `bench/evidence`, which explains the figures.
//!
//! Usage: evidence_bench [--seconds S] [--clients C] [--proof-records N] [--proofs P]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lgsp_evidence::merkle::leaf_hash;
use lgsp_evidence::tiles::{Edge, TILE_WIDTH};
use lgsp_evidence::{CallLog, CallRecord, EvidenceLog};
use lgsp_store::{CallAppender, Store};
use serde_json::json;

struct Options {
    seconds: u64,
    clients: usize,
    proof_records: u64,
    proofs: usize,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        clients: 256,
        proof_records: 10_000_000,
        proofs: 2000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--seconds" => o.seconds = number(),
            "--clients" => o.clients = number() as usize,
            "--proof-records" => o.proof_records = number(),
            "--proofs" => o.proofs = number() as usize,
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn record(i: u64) -> CallRecord {
    CallRecord {
        seq: 0,
        request_id: uuid::Uuid::now_v7().to_string(),
        time_us: 1_796_000_000_000_000 + i as i64,
        consumer: Some("01a23d77-d5bd-7150-99c9-e9f1601d512a".into()),
        api: Some("hotich/1.0".into()),
        method: "GET".into(),
        path: format!("/hotich/1.0/khaisinh/KS-2025-{i:06}"),
        status: 200,
        latency_us: 812,
        request_bytes: 0,
        response_bytes: 1024,
        request_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        response_sha256: "d18a7626ddc75dc991cc2eaf02833844ff1bd87472fbfc8e0e6301f99d5d13d0".into(),
        client_addr: "10.20.30.40".into(),
        reason: None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn file_bytes(dir: &std::path::Path) -> u64 {
    ["lgsp.db", "lgsp.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Durable appends through the call log's writer, with the checkpointer running.
async fn appends(o: &Options) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lgsp.db")).await.unwrap();
    let (calls, writer) = CallLog::start(&store).unwrap();
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    let log = Arc::new(
        EvidenceLog::open(
            store.clone(),
            &dir.path().join("keys"),
            "bench.lgsp/log",
            true,
            Duration::from_secs(1),
            calls.tree_size(),
        )
        .await
        .unwrap()
        .writing_through(calls.clone()),
    );
    log.checkpoint(true).await.unwrap();
    let (stop_cp, stopped_cp) = tokio::sync::watch::channel(false);
    let checkpointer = tokio::spawn(log.clone().run_checkpointer(stopped_cp));

    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let calls = calls.clone();
        let stop = stop.clone();
        let counter = counter.clone();
        let log = log.clone();
        let lat_tx = lat_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let seq = calls.commit(record(n)).await.unwrap();
                counter.fetch_add(1, Ordering::Relaxed);
                n += 1;
                // One client in 32 also times how long until a signed checkpoint covers its record.
                if c % 32 == 0 && n.is_multiple_of(16) {
                    let committed = Instant::now();
                    let log = log.clone();
                    let lat_tx = lat_tx.clone();
                    tokio::spawn(async move {
                        if log.head_covering(seq as u64).await.is_ok() {
                            let _ = lat_tx.send(committed.elapsed().as_secs_f64() * 1000.0);
                        }
                    });
                }
            }
        }));
    }
    drop(lat_tx);
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = counter.load(Ordering::Relaxed);
    let groups = calls.groups_committed();
    calls.flush().await;
    stop_cp.send(true).unwrap();
    checkpointer.await.unwrap();
    let mut latencies = Vec::new();
    while let Some(l) = lat_rx.recv().await {
        latencies.push(l);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let checkpoints = store.checkpoints().await.unwrap().len();
    // Time to sign one checkpoint of the final tree, a few times.
    let mut signing = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        log.checkpoint(true).await.unwrap();
        signing.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    signing.sort_by(|a, b| a.total_cmp(b));
    drop(log);
    calls.close().await;
    writer.await.unwrap();
    store.close().await;
    let bytes = file_bytes(dir.path());

    // The peer: the same clients and the same group commit into the same
    // SQLite settings through the same appender, without the tree.
    let peer_dir = tempfile::tempdir().unwrap();
    let peer_store = Store::open(&peer_dir.path().join("lgsp.db")).await.unwrap();
    let appender = CallAppender::open(peer_store.path()).unwrap();
    let (peer_rate, peer_records, peer_groups) = plain_appends(appender, o).await;
    peer_store.close().await;
    let peer_bytes = file_bytes(peer_dir.path());
    let peer = peer_rate;

    json!({
        "clients": o.clients,
        "seconds": elapsed,
        "records": total,
        "durable_appends_per_s": total as f64 / elapsed,
        "checkpoints_signed": checkpoints,
        "groups_committed": groups,
        "group_size": total as f64 / groups.max(1) as f64,
        "checkpoint_signing_ms_p50": percentile(&signing, 0.5),
        "append_to_checkpoint_ms": {
            "samples": latencies.len(),
            "p50": percentile(&latencies, 0.5),
            "p99": percentile(&latencies, 0.99),
            "max": latencies.last().copied().unwrap_or(f64::NAN),
        },
        "bytes_per_record": bytes as f64 / total.max(1) as f64,
        "peer_plain_sqlite": {
            "group_size": peer_records as f64 / peer_groups.max(1) as f64,
            "appends_per_s": peer,
            "bytes_per_record": peer_bytes as f64 / peer_records.max(1) as f64,
        },
        "ratio_appends_vs_plain": (total as f64 / elapsed) / peer,
        "tessera_published_2vcpu_appends_per_s": 1600,
    })
}

type Waiter = tokio::sync::oneshot::Sender<()>;

/// Group commit without the tree: what the call log costs when it is not evidence.
async fn plain_appends(mut appender: CallAppender, o: &Options) -> (f64, u64, u64) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(CallRecord, Waiter)>(65_536);
    let groups = Arc::new(AtomicU64::new(0));
    let counted = groups.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut seq = 0i64;
        let mut records = Vec::new();
        let mut waiters = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some((mut r, w)) = next.take() {
                seq += 1;
                r.seq = seq;
                records.push(r);
                waiters.push(w);
                if records.len() < 4096 {
                    next = rx.try_recv().ok();
                }
            }
            appender
                .append(lgsp_store::Group {
                    records: &records,
                    ..lgsp_store::Group::default()
                })
                .unwrap();
            counted.fetch_add(1, Ordering::Relaxed);
            records.clear();
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.clients {
        let tx = tx.clone();
        let stop = stop.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (done, wait) = tokio::sync::oneshot::channel();
                tx.send((record(n), done)).await.unwrap();
                wait.await.unwrap();
                counter.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    writer.await.unwrap();
    let total = counter.load(Ordering::Relaxed);
    (
        total as f64 / elapsed,
        total,
        groups.load(Ordering::Relaxed),
    )
}

/// A tile reader over the same SQLite tiles, for the peer implementation.
struct SqliteTiles {
    conn: std::sync::Mutex<rusqlite::Connection>,
}

impl tlog_tiles::TileReader for SqliteTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT hashes FROM log_tiles WHERE level = ?1 AND idx = ?2")
            .unwrap();
        Ok(tiles
            .iter()
            .map(|t| {
                let bytes: Vec<u8> = stmt
                    .query_row(rusqlite::params![t.level(), t.level_index() as i64], |r| {
                        r.get(0)
                    })
                    .unwrap();
                bytes[..t.width() as usize * 32].to_vec()
            })
            .collect())
    }

    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

/// Inclusion proofs in a tree of `proof_records` leaves stored as tiles.
async fn proofs(o: &Options) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lgsp.db")).await.unwrap();
    let mut appender = CallAppender::open(store.path()).unwrap();
    let n = o.proof_records;
    let built = Instant::now();
    let edge = tokio::task::spawn_blocking(move || {
        let mut edge = Edge::default();
        let mut i = 0u64;
        while i < n {
            let batch = (n - i).min(65_536);
            let mut changed = Vec::new();
            for j in i..i + batch {
                edge.push(leaf_hash(&j.to_be_bytes()), &mut changed);
            }
            let mut tiles: Vec<lgsp_store::TileWrite> = edge
                .take_full()
                .into_iter()
                .map(|(id, h)| (id.level, id.index, h.concat()))
                .collect();
            for (id, h) in edge.partial_tiles() {
                tiles.push((id.level, id.index, h.concat()));
            }
            appender.put_tiles(&tiles).unwrap();
            i += batch;
        }
        edge
    })
    .await
    .unwrap();
    let build_s = built.elapsed().as_secs_f64();
    let root = edge.root();

    let (_size_tx, size_rx) = tokio::sync::watch::channel(n);
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    let log = EvidenceLog::open(
        store.clone(),
        &dir.path().join("keys"),
        "bench.lgsp/log",
        true,
        Duration::from_secs(1),
        size_rx,
    )
    .await
    .unwrap();
    assert_eq!(log.root(n).await.unwrap(), root);

    // Indexes spread over the whole tree, the same for both implementations.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let indexes: Vec<u64> = (0..o.proofs)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect();
    let mut ours = Vec::with_capacity(indexes.len());
    let mut proofs = Vec::with_capacity(indexes.len());
    for &i in &indexes {
        let t = Instant::now();
        let proof = log.inclusion(i, n).await.unwrap();
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        proofs.push(proof);
    }
    ours.sort_by(|a, b| a.total_cmp(b));

    let tiles = SqliteTiles {
        conn: std::sync::Mutex::new(rusqlite::Connection::open(store.path()).unwrap()),
    };
    let th = tlog_tiles::Hash(root);
    let reader = tlog_tiles::TileHashReader::new(n, th, &tiles);
    let mut peer = Vec::with_capacity(indexes.len());
    for (k, &i) in indexes.iter().enumerate() {
        let t = Instant::now();
        let proof = tlog_tiles::prove_record(n, i, &reader).unwrap();
        peer.push(t.elapsed().as_secs_f64() * 1000.0);
        let same: Vec<[u8; 32]> = proof.iter().map(|h| h.0).collect();
        assert_eq!(same, proofs[k], "both implementations give the same proof");
    }
    peer.sort_by(|a, b| a.total_cmp(b));
    let tile_bytes: i64 = {
        let conn = tiles.conn.lock().unwrap();
        conn.query_row("SELECT SUM(length(hashes)) FROM log_tiles", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    store.close().await;
    json!({
        "records": n,
        "build_seconds": build_s,
        "tile_bytes_per_record": tile_bytes as f64 / n as f64,
        "proofs": o.proofs,
        "inclusion_ms": { "p50": percentile(&ours, 0.5), "p99": percentile(&ours, 0.99), "max": ours.last() },
        "peer_tlog_tiles_ms": { "p50": percentile(&peer, 0.5), "p99": percentile(&peer, 0.99), "max": peer.last() },
        "ratio_p50_peer_vs_ours": percentile(&peer, 0.5) / percentile(&ours, 0.5),
        "tiles_per_level_0": n / TILE_WIDTH,
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let o = options();
    let appends = appends(&o).await;
    println!("{}", json!({ "appends": appends }));
    let proofs = proofs(&o).await;
    println!("{}", json!({ "proofs": proofs }));
}
