//! A counting proxy between the functions and DynamoDB Local: bytes pass unchanged; each HTTP
//! request is counted, with the number of actions of each `TransactWriteItems`. The floor and
//! the function under test both go through it, so its cost per round trip is on both sides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct Counts {
    calls: AtomicU64,
    /// Actions of each transaction seen, in order.
    transactions: Mutex<Vec<usize>>,
}

impl Counts {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The actions of the transactions seen since the last call.
    pub fn take_transactions(&self) -> Vec<usize> {
        self.transactions
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }
}

/// Starts the proxy to `upstream` (`host:port`); returns its address and its counts.
pub async fn start(upstream: String) -> Result<(String, Arc<Counts>), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, counts) = (upstream.clone(), shared.clone());
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(&upstream).await {
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    relay(client, server, counts).await;
                }
            });
        }
    });
    Ok((format!("http://{address}"), counts))
}

async fn relay(client: TcpStream, server: TcpStream, counts: Arc<Counts>) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from_client.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to_server.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        pending.extend_from_slice(&chunk[..n]);
        while let Some(used) = one_request(&pending, &counts) {
            pending.drain(..used);
        }
    }
    back.abort();
}

/// Counts the first whole request in `bytes`, if there is one; returns its length.
fn one_request(bytes: &[u8], counts: &Counts) -> Option<usize> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let length: usize = header("content-length:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if bytes.len() < end + length {
        return None;
    }
    counts.calls.fetch_add(1, Ordering::Relaxed);
    if header("x-amz-target:").is_some_and(|t| t.ends_with("transactwriteitems")) {
        let body: serde_json::Value =
            serde_json::from_slice(&bytes[end..end + length]).unwrap_or_default();
        let actions = body["TransactItems"].as_array().map_or(0, Vec::len);
        if let Ok(mut t) = counts.transactions.lock() {
            t.push(actions);
        }
    }
    Some(end + length)
}
