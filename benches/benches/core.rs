//! Criterion benches of the core's hot paths: output ingestion, transmit, attach, HTTP heads.
//!
//! Run: `cargo bench -p axs-benches --bench core` (about a minute; each bench measures 2 s).

// criterion_group!/criterion_main! generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use axs_benches::text;
use axs_core::frame::Frame;
use axs_core::http::{parse_head, HeadParse};
use axs_core::session::{AttachOptions, Session, SessionConfig};
use axs_core::time::Time;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const MIB: usize = 1024 * 1024;
const SCROLLBACK: usize = 256 * 1024;

/// A session with the default configuration whose ring is already full of `fill`.
fn full_session(fill: &[u8]) -> Session {
    let mut session = Session::new(SessionConfig::default());
    let ring = SCROLLBACK + session.config().read_size;
    let mut pushed = 0;
    while pushed < ring {
        session.pty_output(fill, Time::ZERO);
        pushed += fill.len();
    }
    drain_actions(&mut session);
    session
}

/// Discards the session's pending actions (a runtime would carry them out).
fn drain_actions(session: &mut Session) {
    while session.poll_action().is_some() {}
}

/// Polls a client until it has nothing more; returns the bytes it got.
fn drain_client(session: &mut Session, generation: u64) -> usize {
    let mut bytes = 0;
    while let Some(frame) = session.poll_transmit(generation, Time::ZERO) {
        if let Frame::Binary(b) = frame {
            bytes += b.len();
        }
    }
    bytes
}

/// One MiB of `kind` text, chunked as a runtime's pty reads would deliver it.
fn chunks(data: &[u8], chunk: usize) -> Vec<&[u8]> {
    data.chunks(chunk).collect()
}

fn ingestion(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest_1MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    for (kind, data) in [
        ("plain", text::plain(MIB)),
        ("colour", text::colourful(MIB)),
    ] {
        for chunk in [16 * 1024, 64 * 1024] {
            let mut session = full_session(&data[..chunk]);
            let pieces = chunks(&data, chunk);
            let id = BenchmarkId::new(kind, format!("{}KiB_reads", chunk / 1024));
            group.bench_function(id, |b| {
                b.iter(|| {
                    for piece in &pieces {
                        session.pty_output(black_box(piece), Time::ZERO);
                    }
                    drain_actions(&mut session);
                })
            });
        }
    }
    group.finish();
}

fn transmit(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest_and_transmit_1MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    let data = text::colourful(MIB);
    let pieces = chunks(&data, 64 * 1024);
    for clients in [1usize, 8] {
        let mut session = full_session(pieces[0]);
        let generations: Vec<u64> = (0..clients)
            .map(|_| session.attach(&AttachOptions::default(), Time::ZERO))
            .collect();
        for &g in &generations {
            drain_client(&mut session, g);
        }
        group.bench_function(BenchmarkId::new("clients", clients), |b| {
            b.iter(|| {
                let mut sent = 0;
                for piece in &pieces {
                    session.pty_output(piece, Time::ZERO);
                    drain_actions(&mut session);
                    for &g in &generations {
                        sent += drain_client(&mut session, g);
                    }
                }
                assert_eq!(sent, MIB * clients, "every client got every byte");
            })
        });
    }
    group.finish();
}

fn attach(c: &mut Criterion) {
    let mut group = c.benchmark_group("attach_full_256KiB_ring");
    group.throughput(Throughput::Bytes(SCROLLBACK as u64));
    for (kind, data) in [
        ("plain", text::plain(SCROLLBACK * 2)),
        ("colour", text::colourful(SCROLLBACK * 2)),
    ] {
        let mut session = full_session(&data);
        group.bench_function(kind, |b| {
            b.iter(|| {
                let g = session.attach(&AttachOptions::default(), Time::ZERO);
                let got = drain_client(&mut session, g);
                session.detach(g, Time::ZERO);
                drain_actions(&mut session);
                black_box(got)
            })
        });
    }
    group.finish();
}

/// A WebSocket upgrade as a browser's WebView sends it to `ws://127.0.0.1:8767/terminals/N`.
const UPGRADE_HEAD: &[u8] = b"GET /terminals/12345 HTTP/1.1\r\n\
Host: 127.0.0.1:8767\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://localhost\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn http_head(c: &mut Criterion) {
    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Bytes(UPGRADE_HEAD.len() as u64));
    group.bench_function("parse_head_websocket_upgrade", |b| {
        b.iter(|| match parse_head(black_box(UPGRADE_HEAD)) {
            Ok(HeadParse::Complete { head, .. }) => black_box(head),
            other => panic!("the upgrade head must parse: {other:?}"),
        })
    });
    group.finish();
}

/// Short runs: the whole set finishes in about a minute on a 2-core machine.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = ingestion, transmit, attach, http_head
}
criterion_main!(benches);
