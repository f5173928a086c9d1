//! A TCP proxy that breaks connections on purpose, between kiosks and the back-office: it drops
//! connections before, in the middle of, and after a request, cuts answers short, resets, and
//! delays, at rates a test chooses. It can also go fully offline, as a VPN does.
//!
//! Faults are drawn from a seeded generator, so a failing run can be replayed with its seed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bytes read at once from either side.
const BUFFER_BYTES: usize = 16 * 1024;

/// The longest delay the proxy adds.
pub const DELAY_MS_MAX: u64 = 300;

/// What the proxy does to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwards everything.
    None,
    /// Closes the client's connection without a byte forwarded.
    DropAtOnce,
    /// Forwards this many bytes of the request, then closes both sides.
    DropMidRequest(usize),
    /// Forwards the request, then this many bytes of the answer, then closes both sides.
    DropMidResponse(usize),
    /// Forwards the answer but its last bytes, then closes: a truncated answer.
    Truncate(usize),
    /// Forwards this many bytes of the request, then resets the client's connection (RST).
    Reset(usize),
    /// Waits this long before forwarding anything.
    Delay(u64),
}

/// Counts of what the proxy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub connections: u64,
    pub faults: u64,
}

/// A running proxy. Stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    /// Faults per thousand connections.
    fault_per_mille: AtomicU64,
    /// Offline cuts open connections too, as a VPN going down does.
    offline: tokio::sync::watch::Sender<bool>,
    /// A std `Mutex`: held to draw one number.
    random: Mutex<SplitMix64>,
    connections: AtomicU64,
    faults: AtomicU64,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` that breaks `fault_per_mille` connections in a thousand.
    pub async fn start(upstream: SocketAddr, fault_per_mille: u64, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let shared = Arc::new(Shared {
            upstream,
            fault_per_mille: AtomicU64::new(fault_per_mille),
            offline: tokio::sync::watch::channel(false).0,
            random: Mutex::new(SplitMix64(seed)),
            connections: AtomicU64::new(0),
            faults: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = Arc::clone(&accepting);
                tokio::spawn(async move { shared.handle(client).await });
            }
        });
        FaultProxy {
            address,
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Faults per thousand connections from now on.
    pub fn set_fault_rate(&self, per_mille: u64) {
        self.shared
            .fault_per_mille
            .store(per_mille, Ordering::Relaxed);
    }

    /// Offline: every new connection is closed at once, as when the VPN is down.
    pub fn set_offline(&self, offline: bool) {
        self.shared.offline.send_replace(offline);
    }

    pub fn counts(&self) -> FaultCounts {
        FaultCounts {
            connections: self.shared.connections.load(Ordering::Relaxed),
            faults: self.shared.faults.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn draw(&self) -> Fault {
        let mut random = self
            .random
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if random.below(1_000) >= self.fault_per_mille.load(Ordering::Relaxed) {
            return Fault::None;
        }
        // Cut points spread over the first few kilobytes: headers, body, or the next request on
        // a kept-alive connection.
        let cut = usize::try_from(random.below(4_000)).unwrap_or(0);
        match random.below(6) {
            0 => Fault::DropAtOnce,
            1 => Fault::DropMidRequest(cut),
            2 => Fault::DropMidResponse(cut),
            3 => Fault::Truncate(1 + cut % 64),
            4 => Fault::Reset(cut),
            _ => Fault::Delay(random.below(DELAY_MS_MAX)),
        }
    }

    async fn handle(&self, client: TcpStream) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let mut offline = self.offline.subscribe();
        if *offline.borrow_and_update() {
            return;
        }
        let Ok(upstream) = TcpStream::connect(self.upstream).await else {
            return;
        };
        let (client_read, client_write) = client.into_split();
        let (upstream_read, upstream_write) = upstream.into_split();
        // What the request side asks of the next answer (cut or truncated).
        let answer_limit = Mutex::new(Limit::None);
        let request = self.requests(client_read, upstream_write, &answer_limit);
        let response = answers(upstream_read, client_write, &answer_limit);
        let going_offline = async {
            while offline.changed().await.is_ok() {
                if *offline.borrow() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::pin!(request, response, going_offline);
        tokio::select! {
            ended = &mut request => {
                if ended == Ended::Eof {
                    // The client sent all it had: let the answer finish.
                    tokio::select! {
                        _ = response => {}
                        () = going_offline => {}
                    }
                }
            }
            _ = &mut response => {}
            () = &mut going_offline => {}
        }
        // Both halves drop here: the connection closes (or resets) on both sides.
    }

    /// Forwards what the client sends, drawing a fault for each read: on loopback, a read is a
    /// request (or its start), so kept-alive connections meet faults too.
    async fn requests(
        &self,
        from: tokio::net::tcp::OwnedReadHalf,
        to: tokio::net::tcp::OwnedWriteHalf,
        answer_limit: &Mutex<Limit>,
    ) -> Ended {
        forward(from, to, |from, read| {
            let fault = self.draw();
            if fault != Fault::None {
                self.faults.fetch_add(1, Ordering::Relaxed);
            }
            match fault {
                Fault::DropAtOnce => Pass::Cut,
                Fault::DropMidRequest(cut) => Pass::take(cut.min(read)),
                Fault::Reset(cut) => {
                    // With a zero linger, closing the socket sends RST instead of FIN.
                    let _ = socket2::SockRef::from(from.as_ref()).set_linger(Some(Duration::ZERO));
                    Pass::take(cut.min(read))
                }
                Fault::DropMidResponse(cut) => {
                    *lock(answer_limit) = Limit::Bytes(cut);
                    Pass::take(read)
                }
                Fault::Truncate(short) => {
                    *lock(answer_limit) = Limit::ShortBy(short);
                    Pass::take(read)
                }
                Fault::Delay(ms) => Pass::Take {
                    wait: Duration::from_millis(ms),
                    take: read,
                },
                Fault::None => Pass::take(read),
            }
        })
        .await
    }
}

fn lock(limit: &Mutex<Limit>) -> std::sync::MutexGuard<'_, Limit> {
    limit.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// How a direction of a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Eof,
    Cut,
    Error,
}

/// Forwards the back-office's answers, cutting one short when the request side asked to.
async fn answers(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    answer_limit: &Mutex<Limit>,
) -> Ended {
    forward(from, to, |_, read| {
        let limit = std::mem::replace(&mut *lock(answer_limit), Limit::None);
        Pass::take(match limit {
            Limit::None => read,
            Limit::Bytes(limit) => read.min(limit),
            // An answer arrives in one read on loopback: its last bytes never reach the client.
            Limit::ShortBy(short) => read.saturating_sub(short),
        })
    })
    .await
}

/// What one direction does with a read: cut the connection at once, or pass on the first
/// `take` bytes of it after a `wait`.
enum Pass {
    Cut,
    Take { wait: Duration, take: usize },
}

impl Pass {
    /// The first `take` bytes, at once.
    fn take(take: usize) -> Pass {
        Pass::Take {
            wait: Duration::ZERO,
            take,
        }
    }
}

/// Copies `from` to `to`, read by read, passing on of each what `pass` says; the connection
/// is cut once a read is not passed on whole.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut pass: impl FnMut(&tokio::net::tcp::OwnedReadHalf, usize) -> Pass,
) -> Ended {
    let mut buffer = vec![0_u8; BUFFER_BYTES];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return Ended::Eof;
            }
            Ok(read) => read,
            Err(_) => return Ended::Error,
        };
        let take = match pass(&from, read) {
            Pass::Cut => return Ended::Cut,
            Pass::Take { wait, take } => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                take
            }
        };
        if to.write_all(&buffer[..take]).await.is_err() {
            return Ended::Error;
        }
        if take < read {
            return Ended::Cut;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Limit {
    None,
    Bytes(usize),
    ShortBy(usize),
}

/// A small, fast, seeded generator: enough to spread faults, not for secrets.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}
