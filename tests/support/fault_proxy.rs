//! A fault-injecting HTTP proxy on 127.0.0.1 for end-to-end tests: it sits
//! between kuryr6 and the real Neutron (through clouds.yaml's
//! `network_endpoint_override`) and, by a script, answers some requests
//! itself (503, 429) or forwards them and then loses the answer (a 500 or a
//! dropped connection after Neutron acted). Bounded: it serves until dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 503 without forwarding.
    Unavailable,
    /// Answer 429 with `Retry-After: 1` without forwarding.
    TooMany,
    /// Forward, then answer 500 instead of Neutron's answer.
    ErrorAfter,
    /// Forward, then close the connection without any answer.
    DropAfter,
}

/// Fire `fault` on the `nth` (1-based) request whose method is `method` and
/// whose path contains `path`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub nth: usize,
    pub fault: Fault,
}

#[derive(Default)]
struct State {
    seen: Vec<(String, String)>,
    fired: Vec<(String, String, Fault)>,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16, rules: Vec<Rule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let rules = Arc::new(rules);
        std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (st, rules) = (st.clone(), rules.clone());
                        std::thread::spawn(move || {
                            let _ = serve(client, upstream_port, &st, &rules);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { port, state, stop }
    }

    /// Requests seen, as (method, path).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn fired(&self) -> Vec<(String, String, Fault)> {
        self.state.lock().unwrap().fired.clone()
    }
}

/// The port of a loopback service URL (`http://127.0.0.1:9696/`).
pub fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// `clouds_yaml` with `<key>: http://127.0.0.1:<port>` (an endpoint
/// override, e.g. `network_endpoint_override`) added to its cloud, before
/// its `region_name` line.
pub fn with_endpoint_override(clouds_yaml: &str, key: &str, port: u16) -> String {
    let proxied = clouds_yaml.replacen(
        "    region_name:",
        &format!("    {key}: http://127.0.0.1:{port}\n    region_name:"),
        1,
    );
    assert_ne!(
        proxied, clouds_yaml,
        "clouds.yaml has a region_name line to anchor the override"
    );
    proxied
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one HTTP/1.1 message (head + Content-Length body).
fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok((head, body))
}

fn serve(
    client: TcpStream,
    upstream_port: u16,
    state: &Mutex<State>,
    rules: &[Rule],
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        let (head, body) = match read_message(&mut reader) {
            Ok(m) => m,
            Err(_) => return Ok(()),
        };
        let mut first = head.lines().next().unwrap_or_default().split(' ');
        let (method, path) = (
            first.next().unwrap_or_default().to_string(),
            first.next().unwrap_or_default().to_string(),
        );
        let fault = {
            let mut st = state.lock().unwrap();
            st.seen.push((method.clone(), path.clone()));
            let fault = rules.iter().find(|r| {
                r.method == method
                    && path.contains(r.path)
                    && st
                        .seen
                        .iter()
                        .filter(|(m, p)| *m == method && p.contains(r.path))
                        .count()
                        == r.nth
            });
            if let Some(r) = fault {
                st.fired.push((method.clone(), path.clone(), r.fault));
            }
            fault.map(|r| r.fault)
        };
        match fault {
            Some(Fault::Unavailable) => {
                client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                return Ok(());
            }
            Some(Fault::TooMany) => {
                client.write_all(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                return Ok(());
            }
            _ => {}
        }
        let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
        upstream.write_all(head.as_bytes())?;
        upstream.write_all(&body)?;
        let mut up_reader = BufReader::new(upstream);
        let (resp_head, resp_body) = read_message(&mut up_reader)?;
        match fault {
            Some(Fault::ErrorAfter) => {
                let msg = br#"{"NeutronError": {"type": "HTTPInternalServerError", "message": "injected", "detail": ""}}"#;
                client.write_all(format!("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", msg.len()).as_bytes())?;
                client.write_all(msg)?;
                return Ok(());
            }
            Some(Fault::DropAfter) => return Ok(()),
            _ => {
                client.write_all(resp_head.as_bytes())?;
                client.write_all(&resp_body)?;
            }
        }
    }
}
