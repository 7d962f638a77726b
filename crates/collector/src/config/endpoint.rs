//! Listening endpoints as the Go collector reads them: `host:port`, where an empty host
//! (`:4317`) means every interface; and the listening sockets of a running collector, kept
//! across a reload so a port the new configuration still serves is never closed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every listening socket the collector's components asked for, by address. A component
/// gets a duplicate of the kept socket, so when it stops the socket stays open: on a reload
/// the next component on that address accepts what queued meanwhile, and no client is
/// refused. Each bind is tagged with the current generation (one per configuration run);
/// after a reload the sockets no component of the new run asked for are closed.
#[derive(Default)]
pub struct Listeners {
    sockets: Mutex<BTreeMap<String, (std::net::TcpListener, u64)>>,
    generation: AtomicU64,
}

impl Listeners {
    /// A listener on `endpoint` (`:port` = every interface; port 0 = any free port).
    pub fn bind(&self, endpoint: &str) -> std::io::Result<std::net::TcpListener> {
        let addr = listen_address(endpoint);
        let generation = self.generation.load(Ordering::SeqCst);
        let mut sockets = self.sockets.lock().expect("listeners lock");
        if let Some((socket, tagged)) = sockets.get_mut(&addr) {
            if *tagged == generation {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{addr} is already taken by another component"),
                ));
            }
            *tagged = generation;
            return socket.try_clone();
        }
        let socket = std::net::TcpListener::bind(&addr)?;
        socket.set_nonblocking(true)?;
        let given = socket.try_clone()?;
        // Port 0 asks for a fresh port each time: keep it under the port it got.
        let key = if addr.ends_with(":0") {
            socket.local_addr()?.to_string()
        } else {
            addr
        };
        sockets.insert(key, (socket, generation));
        Ok(given)
    }

    /// The same, for a tokio server (call inside the runtime).
    pub fn bind_tokio(&self, endpoint: &str) -> std::io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::from_std(self.bind(endpoint)?)
    }

    /// The addresses of the kept sockets.
    pub fn addresses(&self) -> Vec<String> {
        self.sockets
            .lock()
            .expect("listeners lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Counts `addresses` as asked for by the current run (a component that keeps running
    /// across a reload keeps its sockets).
    pub fn renew(&self, addresses: &[String]) {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut sockets = self.sockets.lock().expect("listeners lock");
        for addr in addresses {
            if let Some((_, tagged)) = sockets.get_mut(addr) {
                *tagged = generation;
            }
        }
    }

    /// Starts a new configuration run; returns its generation.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Closes the kept sockets no component of `generation` or later asked for.
    pub fn close_older_than(&self, generation: u64) {
        self.sockets
            .lock()
            .expect("listeners lock")
            .retain(|_, (_, tagged)| *tagged >= generation);
    }
}

/// The address to bind for `endpoint`: `:4317` becomes `0.0.0.0:4317`, anything else is
/// used as written.
pub fn listen_address(endpoint: &str) -> String {
    if endpoint.starts_with(':') {
        format!("0.0.0.0{endpoint}")
    } else {
        endpoint.to_string()
    }
}

/// Checks that `endpoint` is `host:port` or `:port` with a valid port.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some((_, port)) = endpoint.rsplit_once(':') else {
        return Err(format!(
            "\"{endpoint}\" is not host:port (for example 127.0.0.1:4317, or :4317 for every interface)"
        ));
    };
    port.parse::<u16>()
        .map(|_| ())
        .map_err(|_| format!("\"{endpoint}\" has an invalid port \"{port}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_outlives_its_component_until_a_new_run_does_without_it() {
        let listeners = Listeners::default();
        let first = listeners.bind("127.0.0.1:0").unwrap();
        let addr = first.local_addr().unwrap();
        drop(first); // the component stops
        // A client may still connect: the kept socket queues it.
        let waiting = std::net::TcpStream::connect(addr).unwrap();
        // The next run's component on the same address gets the same socket, and the
        // connection that waited.
        listeners.next_generation();
        let second = listeners.bind(&addr.to_string()).unwrap();
        second.set_nonblocking(false).unwrap();
        let (accepted, _) = second.accept().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), waiting.local_addr().unwrap());
        // Two components of one run cannot share an address.
        let clash = listeners.bind(&addr.to_string()).unwrap_err();
        assert_eq!(clash.kind(), std::io::ErrorKind::AddrInUse);
        // A run that no longer listens there closes it.
        drop(second);
        let next = listeners.next_generation();
        listeners.close_older_than(next);
        assert!(std::net::TcpStream::connect(addr).is_err(), "closed");
    }

    #[test]
    fn an_empty_host_means_every_interface_as_in_go() {
        assert_eq!(listen_address(":4317"), "0.0.0.0:4317");
        assert_eq!(listen_address("127.0.0.1:4317"), "127.0.0.1:4317");
        assert_eq!(listen_address("[::1]:4317"), "[::1]:4317");
        assert!(check_endpoint(":4317").is_ok());
        assert!(check_endpoint("[::1]:4317").is_ok());
        assert!(check_endpoint("localhost").is_err());
        assert!(check_endpoint("localhost:http").is_err());
    }
}
