//! The client against a tiny HTTP server on 127.0.0.1 that plays Keystone
//! and Neutron with canned answers.

use super::http::retry_after;
use super::*;
use crate::cloud::config::{Auth, Domain, Interface, ProjectScope, Secret, User};
use crate::cloud::{Cloud, Kind, Query, Service};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    head: String,
    body: String,
}

enum Canned {
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Close the connection without answering.
    Hangup,
    /// Answer after a while.
    Delay(Duration, Box<Canned>),
}

fn reply(status: u16, body: impl Into<String>) -> Canned {
    Canned::Reply {
        status,
        headers: vec![],
        body: body.into(),
    }
}

type Handler = dyn Fn(&Seen, usize, u16) -> Canned + Send + Sync;

struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// `handler(request, n, port)`: n counts earlier requests with the same
    /// method and path.
    async fn start(handler: impl Fn(&Seen, usize, u16) -> Canned + Send + Sync + 'static) -> Self {
        logs();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let mut first = head.lines().next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_owned();
                    let path = first.next().unwrap_or("").to_owned();
                    let req = Seen {
                        method,
                        path,
                        head: head.clone(),
                        body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
                    };
                    let n = {
                        let mut log = log.lock().unwrap();
                        let n = log
                            .iter()
                            .filter(|s| s.method == req.method && s.path == req.path)
                            .count();
                        log.push(req.clone());
                        n
                    };
                    let mut canned = handler(&req, n, port);
                    if let Canned::Delay(wait, then) = canned {
                        tokio::time::sleep(wait).await;
                        canned = *then;
                    }
                    match canned {
                        Canned::Delay(..) => unreachable!("one delay per answer"),
                        Canned::Hangup => drop(sock),
                        Canned::Reply {
                            status,
                            headers,
                            body,
                        } => {
                            let mut text = format!(
                                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                                body.len()
                            );
                            for (k, v) in headers {
                                text.push_str(&format!("{k}: {v}\r\n"));
                            }
                            text.push_str("\r\n");
                            text.push_str(&body);
                            let _ = sock.write_all(text.as_bytes()).await;
                            let _ = sock.shutdown().await;
                        }
                    }
                });
            }
        });
        Server { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .count()
    }

    /// A client logged in to this server with the fast test options.
    async fn connect(&self) -> OpenStack {
        self.connect_with(fast()).await
    }

    /// The same with options of the test's own.
    async fn connect_with(&self, options: ConnectOptions) -> OpenStack {
        OpenStack::connect(&self.config(), options).await.unwrap()
    }

    fn config(&self) -> CloudConfig {
        CloudConfig {
            name: Some("test".into()),
            source: "test".into(),
            auth_url: format!("http://127.0.0.1:{}/v3", self.port),
            auth: Auth::Password {
                user: User::Name {
                    name: "admin".into(),
                    domain: Domain::Id("default".into()),
                },
                password: Secret::new(PASSWORD),
                project: ProjectScope::Name {
                    name: "admin".into(),
                    domain: Domain::Id("default".into()),
                },
            },
            region: Some("RegionOne".into()),
            interface: Interface::Public,
            cacert: None,
            verify_tls: true,
            endpoint_overrides: Vec::new(),
        }
    }
}

const PASSWORD: &str = "pa55-word-XYZ";

fn fast() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        retry_after_max: Duration::from_secs(30),
        gates: None,
    }
}

/// Keystone's answer: token `tok-<n>` and a catalog pointing at this server.
fn token_reply(n: usize, port: u16) -> Canned {
    let body = json!({ "token": {
        "project": { "id": "proj-1", "name": "admin" },
        "catalog": [
            { "type": "identity", "endpoints": [] },
            { "type": "network", "endpoints": [
                { "interface": "internal", "region_id": "RegionOne", "url": "http://127.0.0.1:1/" },
                { "interface": "public", "region_id": "RegionTwo", "url": "http://127.0.0.1:2/" },
                { "interface": "public", "region_id": "RegionOne", "url": format!("http://127.0.0.1:{port}/v2.0/") }
            ]}
        ]
    }});
    Canned::Reply {
        status: 201,
        headers: vec![("X-Subject-Token", format!("tok-{n}"))],
        body: body.to_string(),
    }
}

/// An empty network list: the answer most tests only need to succeed.
fn no_networks() -> Canned {
    reply(200, r#"{"networks": []}"#)
}

/// An empty list of what `req` asked for (subnets or networks).
fn empty_list(req: &Seen) -> Canned {
    if req.path.contains("subnets") {
        reply(200, r#"{"subnets": []}"#)
    } else {
        no_networks()
    }
}

/// A 429 asking the client to come back after `wait` seconds.
fn too_many_requests(wait: &str) -> Canned {
    Canned::Reply {
        status: 429,
        headers: vec![("Retry-After", wait.into())],
        body: "{}".into(),
    }
}

/// Keystone on /v3/auth/tokens, `rest` for everything else.
fn with_keystone(
    rest: impl Fn(&Seen, usize) -> Canned + Send + Sync + 'static,
) -> impl Fn(&Seen, usize, u16) -> Canned + Send + Sync + 'static {
    move |req, n, port| {
        if req.path == "/v3/auth/tokens" {
            token_reply(n, port)
        } else {
            rest(req, n)
        }
    }
}

#[tokio::test]
async fn login_picks_endpoint_by_interface_and_region() {
    let server = Server::start(with_keystone(|_, _| no_networks())).await;
    let os = server.connect().await;
    assert_eq!(os.project_id().await.unwrap(), "proj-1");
    assert!(os.has_service(Service::Network).await.unwrap());
    assert!(!os.has_service(Service::LoadBalancer).await.unwrap());
    assert_eq!(
        os.list(&Kind::Network, &vec![]).await.unwrap(),
        Vec::<Value>::new()
    );
    let seen = server.seen();
    let login = &seen[0];
    assert!(
        login.body.contains(PASSWORD),
        "the password is sent to Keystone"
    );
    let list = &seen[1];
    assert_eq!(list.path, "/v2.0/networks");
    assert!(list.head.contains("x-auth-token: tok-0"), "{}", list.head);
    assert!(matches!(
        os.list(&Kind::LoadBalancer, &vec![]).await,
        Err(CloudError::NoEndpoint(s)) if s == "load-balancer"
    ));
}

#[tokio::test]
async fn query_pairs_repeat_and_ids_are_encoded() {
    let server = Server::start(with_keystone(|req, _| {
        if req.path.starts_with("/v2.0/networks/") {
            reply(200, r#"{"network": {"id": "x"}}"#)
        } else {
            reply(200, r#"{"networks": [{"id": "a"}]}"#)
        }
    }))
    .await;
    let os = server.connect().await;
    let query = vec![
        ("name".to_owned(), "a b".to_owned()),
        ("name".to_owned(), "c".to_owned()),
        ("tags".to_owned(), "k6,x".to_owned()),
    ];
    assert_eq!(os.list(&Kind::Network, &query).await.unwrap().len(), 1);
    os.get(&Kind::Network, "../x?y").await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[1].path, "/v2.0/networks?name=a+b&name=c&tags=k6%2Cx");
    assert_eq!(seen[2].path, "/v2.0/networks/..%2Fx%3Fy");
}

#[tokio::test]
async fn follows_next_links_with_own_host() {
    let server = Server::start(with_keystone(|req, _| {
        if req.path.contains("marker=") {
            reply(200, r#"{"networks": [{"id": "b"}], "networks_links": []}"#)
        } else {
            reply(
                200,
                r#"{"networks": [{"id": "a"}], "networks_links": [{"rel": "next", "href": "http://elsewhere.invalid/v2.0/networks?limit=1&marker=a"}]}"#,
            )
        }
    }))
    .await;
    let os = server.connect().await;
    let all = os.list(&Kind::Network, &vec![]).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(server.count("GET", "/v2.0/networks?limit=1&marker=a"), 1);
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = Server::start(with_keystone(|_, n| {
        if n < 2 { reply(503, "") } else { no_networks() }
    }))
    .await;
    let os = server.connect().await;
    os.list(&Kind::Network, &vec![]).await.unwrap();
    assert_eq!(server.count("GET", "/v2.0/networks"), 3);
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let server = Server::start(with_keystone(|_, _| reply(504, "gateway timeout"))).await;
    let os = server.connect().await;
    let err = os.list(&Kind::Network, &vec![]).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::Unavailable(m) if m.contains("after 3 attempts") && m.contains("504")),
        "{err:?}"
    );
    assert_eq!(server.count("GET", "/v2.0/networks"), 3);
}

#[tokio::test]
async fn honours_retry_after_seconds_and_caps_it() {
    let server = Server::start(with_keystone(|req, n| {
        let wait = if req.path.contains("subnets") {
            "3600"
        } else {
            "1"
        };
        if n == 0 {
            too_many_requests(wait)
        } else {
            empty_list(req)
        }
    }))
    .await;
    let mut opts = fast();
    opts.retry_after_max = Duration::from_millis(300);
    let os = server.connect_with(opts.clone()).await;
    let t = Instant::now();
    os.list(&Kind::Subnet, &vec![]).await.unwrap();
    let capped = t.elapsed();
    assert!(
        capped >= Duration::from_millis(300) && capped < Duration::from_secs(3),
        "{capped:?}"
    );
    opts.retry_after_max = Duration::from_secs(30);
    let os = server.connect_with(opts).await;
    let t = Instant::now();
    os.list(&Kind::Network, &vec![]).await.unwrap();
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
}

/// A fleet: two clients (two sites, two logins) on one endpoint share its
/// gate, so the 429 one of them gets pauses the other too.
#[tokio::test]
async fn a_429_to_one_client_slows_every_client_of_the_endpoint() {
    let server = Server::start(with_keystone(|req, n| {
        if req.path.contains("networks") && n == 0 {
            too_many_requests("1")
        } else {
            empty_list(req)
        }
    }))
    .await;
    let mut opts = fast();
    opts.gates = Some(crate::cloud::gate::EndpointGates::new(4));
    let a = server.connect_with(opts.clone()).await;
    let b = server.connect_with(opts.clone()).await;
    let t = Instant::now();
    let none: Query = vec![];
    let (ra, rb) = tokio::join!(a.list(&Kind::Network, &none), async {
        // Leaves after the 429 reached `a`.
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.list(&Kind::Subnet, &none).await
    });
    ra.unwrap();
    rb.unwrap();
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "b did not wait for a's Retry-After: {waited:?}"
    );
    // Without shared gates the other client is not slowed.
    let c = server.connect().await;
    let t = Instant::now();
    c.list(&Kind::Subnet, &vec![]).await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[test]
fn retry_after_http_date() {
    let mut headers = HeaderMap::new();
    let when = SystemTime::now() + Duration::from_secs(20);
    headers.insert(RETRY_AFTER, httpdate::fmt_http_date(when).parse().unwrap());
    let wait = retry_after(&headers, Duration::from_secs(60)).unwrap();
    assert!(
        wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
        "{wait:?}"
    );
    assert_eq!(
        retry_after(&headers, Duration::from_secs(5)),
        Some(Duration::from_secs(5))
    );
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(20));
    headers.insert(RETRY_AFTER, past.parse().unwrap());
    assert_eq!(
        retry_after(&headers, Duration::from_secs(5)),
        Some(Duration::ZERO)
    );
    headers.insert(RETRY_AFTER, "soon".parse().unwrap());
    assert_eq!(retry_after(&headers, Duration::from_secs(5)), None);
}

#[tokio::test]
async fn backoff_grows_is_capped_and_jittered() {
    let server = Server::start(with_keystone(|_, _| reply(200, "{}"))).await;
    let mut opts = fast();
    opts.backoff_base = Duration::from_millis(100);
    opts.backoff_max = Duration::from_millis(1000);
    let os = server.connect_with(opts).await;
    for _ in 0..50 {
        let d1 = os.backoff(1);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d3 = os.backoff(3);
        assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
        let d30 = os.backoff(30);
        assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_millis(1000));
    }
}

#[tokio::test]
async fn lost_connection_retried_for_get_not_for_post() {
    let server = Server::start(with_keystone(|req, n| {
        if n == 0 {
            Canned::Hangup
        } else if req.method == "GET" {
            no_networks()
        } else {
            reply(201, r#"{"network": {"id": "n1"}}"#)
        }
    }))
    .await;
    let os = server.connect().await;
    os.list(&Kind::Network, &vec![]).await.unwrap();
    assert_eq!(server.count("GET", "/v2.0/networks"), 2);
    let err = os
        .create(&Kind::Network, json!({"name": "pods"}))
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Unavailable(_)), "{err:?}");
    assert_eq!(
        server.count("POST", "/v2.0/networks"),
        1,
        "a create may have happened: not repeated"
    );
    // 502 and 503 on a create: not repeated either (a proxy's 503 may hide
    // a server that acted): the engine reads back. 429 is repeated (the
    // server refused before acting).
    let server = Server::start(with_keystone(|req, n| match (req.path.as_str(), n) {
        ("/v2.0/routers", _) => reply(502, "bad gateway"),
        ("/v2.0/networks", _) => reply(503, "busy"),
        (_, 0) => reply(429, "slow down"),
        _ => reply(201, r#"{"subnet": {"id": "s1"}}"#),
    }))
    .await;
    let os = server.connect().await;
    assert!(os.create(&Kind::Router, json!({})).await.is_err());
    assert_eq!(server.count("POST", "/v2.0/routers"), 1);
    let err = os.create(&Kind::Network, json!({})).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::Unavailable(m) if m.contains("503")),
        "{err:?}"
    );
    assert_eq!(server.count("POST", "/v2.0/networks"), 1);
    os.create(&Kind::Subnet, json!({})).await.unwrap();
    assert_eq!(server.count("POST", "/v2.0/subnets"), 2);
}

#[tokio::test]
async fn a_500_is_retried_for_idempotent_calls_not_for_creates() {
    // Every path answers 500 to its first request, then succeeds.
    let server = Server::start(with_keystone(|req, n| {
        if n == 0 {
            return reply(
                500,
                r#"{"NeutronError": {"type": "HTTPInternalServerError", "message": "database is locked"}}"#,
            );
        }
        match req.method.as_str() {
            "GET" => reply(200, r#"{"network": {"id": "n1", "tags": []}}"#),
            "PUT" => reply(200, r#"{"network": {"id": "n1"}}"#),
            "DELETE" => reply(204, ""),
            _ => reply(201, r#"{"network": {"id": "n1"}}"#),
        }
    }))
    .await;
    let os = server.connect().await;
    os.get(&Kind::Network, "n1").await.unwrap();
    os.update(&Kind::Network, "n1", json!({"name": "x"}))
        .await
        .unwrap();
    os.delete(&Kind::Network, "n1").await.unwrap();
    assert_eq!(server.count("GET", "/v2.0/networks/n1"), 2);
    assert_eq!(server.count("PUT", "/v2.0/networks/n1"), 2);
    assert_eq!(server.count("DELETE", "/v2.0/networks/n1"), 2);
    let err = os
        .create(&Kind::Network, json!({"name": "pods"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CloudError::Unavailable(m) if m.contains("POST /v2.0/networks answered 500") && m.contains("database is locked")),
        "{err:?}"
    );
    assert_eq!(server.count("POST", "/v2.0/networks"), 1, "never repeated");
}

#[tokio::test]
async fn creates_send_the_body_as_given_and_neutron_tags_are_added_one_by_one() {
    let server = Server::start(with_keystone(|req, _| match req.method.as_str() {
        "POST" => reply(201, r#"{"network": {"id": "n1", "tags": []}}"#),
        _ => reply(201, ""),
    }))
    .await;
    let os = server.connect().await;
    os.create(&Kind::Network, json!({"name": "pods", "description": "m"}))
        .await
        .unwrap();
    os.add_tags(
        &Kind::Network,
        "n1",
        &["kuryr6".into(), "kuryr6:pipeline=p".into()],
    )
    .await
    .unwrap();
    let seen = server.seen();
    let post = seen
        .iter()
        .find(|s| s.method == "POST" && s.path == "/v2.0/networks")
        .unwrap();
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(
        body,
        json!({"network": {"name": "pods", "description": "m"}})
    );
    assert_eq!(server.count("PUT", "/v2.0/networks/n1/tags/kuryr6"), 1);
    assert_eq!(
        server.count("PUT", "/v2.0/networks/n1/tags/kuryr6:pipeline=p"),
        1
    );
    assert_eq!(seen.len(), 4, "login, create, two tag calls: {seen:#?}");
}

#[tokio::test]
async fn refused_connection_is_retried_then_unavailable() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = Server::start(move |req, n, _| {
        if req.path == "/v3/auth/tokens" {
            token_reply(n, port)
        } else {
            reply(500, "")
        }
    })
    .await;
    let os = server.connect().await;
    let t = Instant::now();
    let err = os
        .create(&Kind::Network, json!({"name": "x"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CloudError::Unavailable(m) if m.contains("after 3 attempts")),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn expired_token_logs_in_again_once() {
    // The first token stops working; the second works.
    let server = Server::start(with_keystone(|req, _| {
        if req.head.contains("tok-0") {
            reply(401, r#"{"error": {"message": "expired"}}"#)
        } else {
            no_networks()
        }
    }))
    .await;
    let os = Arc::new(server.connect().await);
    // Concurrent tasks hitting the expired token share one new login.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let os = os.clone();
        tasks.push(tokio::spawn(async move {
            os.list(&Kind::Network, &vec![]).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(server.count("POST", "/v3/auth/tokens"), 2);

    // A token refused even after logging in again: Auth, no loop.
    let server = Server::start(with_keystone(|_, _| reply(401, "{}"))).await;
    let os = server.connect().await;
    let err = os.list(&Kind::Network, &vec![]).await.unwrap_err();
    assert!(matches!(err, CloudError::Auth(_)), "{err:?}");
    assert_eq!(server.count("POST", "/v3/auth/tokens"), 2);
    assert_eq!(server.count("GET", "/v2.0/networks"), 2);
}

#[tokio::test]
async fn refused_credentials_never_show_the_password() {
    let server = Server::start(|_, _, _| {
        reply(
            400,
            format!(r#"{{"error": {{"code": 400, "message": "Invalid input for field 'password': '{PASSWORD}' is bad"}}}}"#),
        )
    })
    .await;
    let err = match OpenStack::connect(&server.config(), fast()).await {
        Err(e) => e,
        Ok(_) => panic!("login should fail"),
    };
    let text = format!("{err} {err:?}");
    assert!(matches!(err, CloudError::Auth(_)), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("***"), "{text}");
}

#[tokio::test]
async fn maps_api_errors() {
    let server = Server::start(with_keystone(|req, _| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v2.0/security-group-rules") => reply(
            409,
            r#"{"NeutronError": {"type": "SecurityGroupRuleExists", "message": "Security group rule already exists. Rule id is r1.", "detail": ""}}"#,
        ),
        ("GET", _) => reply(404, r#"{"NeutronError": {"type": "NetworkNotFound", "message": "Network x could not be found."}}"#),
        ("DELETE", _) => reply(404, ""),
        ("PUT", p) if p.ends_with("remove_router_interface") => reply(404, "{}"),
        ("PUT", p) if p.ends_with("add_router_interface") => reply(400, r#"{"NeutronError": {"type": "BadRequest", "message": "Router already has a port on subnet s"}}"#),
        ("POST", "/v2.0/subnets") => reply(400, r#"{"faultstring": "Invalid input for operation: bad cidr."}"#),
        _ => reply(500, "<html>oops</html>"),
    }))
    .await;
    let os = server.connect().await;
    let err = os
        .create(&Kind::SecurityGroupRule, json!({"security_group_id": "s"}))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CloudError::Conflict {
            message: "Security group rule already exists. Rule id is r1. (SecurityGroupRuleExists)"
                .into()
        }
    );
    assert_eq!(
        os.get(&Kind::Network, "x").await.unwrap_err(),
        CloudError::NotFound {
            what: "network x".into()
        }
    );
    os.delete(&Kind::Network, "x").await.unwrap();
    os.router_interface("r", "s", false).await.unwrap();
    let err = os.router_interface("r", "s", true).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::Rejected { status: 400, message, .. } if message.starts_with("Router already has a port")),
        "{err:?}"
    );
    assert_eq!(
        server.count("PUT", "/v2.0/routers/r/add_router_interface"),
        1
    );
    let err = os.create(&Kind::Subnet, json!({})).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::Rejected { message, .. } if message == "Invalid input for operation: bad cidr."),
        "{err:?}"
    );
    let err = os.create(&Kind::Router, json!({})).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::Unavailable(m) if m.contains("500") && m.contains("Internal Server Error")),
        "{err:?}"
    );
}

/// A `MakeWriter` collecting log output for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// One process-wide subscriber capturing everything every test here logs.
/// Global rather than scoped: tracing caches per-callsite interest across
/// threads, and a scoped subscriber in one parallel test misses events.
fn logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(out.clone())
            .with_ansi(false)
            .finish();
        // Another test harness may have set one first; then presence checks
        // below would fail loudly rather than pass silently.
        let _ = tracing::subscriber::set_global_default(subscriber);
        out
    })
}

#[tokio::test]
async fn debug_log_has_requests_but_no_secrets() {
    let server = Server::start(with_keystone(|req, _| {
        if req.head.contains("tok-0") {
            reply(401, "{}")
        } else {
            reply(201, r#"{"network": {"id": "n1"}}"#)
        }
    }))
    .await;
    let os = server.connect().await;
    os.create(&Kind::Network, json!({"name": "pods"}))
        .await
        .unwrap();
    let text = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
    let host = format!("host=127.0.0.1:{}", server.port);
    let ours: Vec<&str> = text.lines().filter(|l| l.contains(&host)).collect();
    let has = |needle: &str| ours.iter().any(|l| l.contains(needle));
    assert!(has("path=/v3/auth/tokens status=201"), "{ours:#?}");
    assert!(has("path=/v2.0/networks status=401"), "{ours:#?}");
    assert!(has("path=/v2.0/networks status=201"), "{ours:#?}");
    assert!(text.contains("authenticated"));
    // All tests' logs together: no password or token anywhere.
    for secret in [PASSWORD, "tok-0", "tok-1", "tok-2"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    assert!(!format!("{:?}", os.config()).contains(PASSWORD));
}

/// A lease renewal leaves at once although the endpoint's gate is paused
/// by a 429 and its only slot is taken by a slow request of the same run.
#[tokio::test]
async fn a_renewal_is_never_queued_behind_the_gate() {
    let server = Server::start(with_keystone(|req, _| {
        if req.path.contains("networks") {
            Canned::Delay(Duration::from_secs(2), Box::new(no_networks()))
        } else {
            reply(
                200,
                r#"{"security_group": {"id": "sg-1", "revision_number": 8}}"#,
            )
        }
    }))
    .await;
    let mut opts = fast();
    let gates = crate::cloud::gate::EndpointGates::new(1);
    opts.gates = Some(gates.clone());
    let os = server.connect_with(opts).await;
    let none: Query = vec![];
    let (slow, renewed) = tokio::join!(os.list(&Kind::Network, &none), async {
        // The slow list holds the only slot; then a 429 pauses the endpoint.
        tokio::time::sleep(Duration::from_millis(100)).await;
        gates
            .gate(&format!("127.0.0.1:{}", server.port))
            .throttle(Duration::from_secs(30));
        let t = Instant::now();
        let queued = tokio::time::timeout(
            Duration::from_millis(300),
            os.update_if(&Kind::SecurityGroup, "sg-1", json!({}), 7),
        )
        .await;
        assert!(queued.is_err(), "a queued update waits for the gate");
        let t2 = Instant::now();
        let v = os
            .renew(&Kind::SecurityGroup, "sg-1", json!({}), 7)
            .await
            .unwrap();
        (v, t2.elapsed(), t.elapsed())
    });
    slow.unwrap();
    let (v, urgent, _) = renewed;
    assert_eq!(v["revision_number"], 8);
    assert!(
        urgent < Duration::from_millis(500),
        "renewal waited {urgent:?}"
    );
    let renewals = server
        .seen()
        .iter()
        .filter(|r| r.path.contains("security-groups"))
        .count();
    assert_eq!(renewals, 1, "only the urgent renewal reached the server");
}
