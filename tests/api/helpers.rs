//! The test harness: a fresh database and the real server on a random port per test, a real
//! HTTP client, a local SMTP sink, and one helper per endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tenantry_platform::config::SmtpSettings;
use tenantry_platform::{Platform, Settings};
use tenantry_server::Application;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One running server and everything around it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub platform: Arc<Platform>,
    pub mail: MailSink,
    /// Stops the server (as SIGTERM does).
    pub server: actix_web::dev::ServerHandle,
    /// The server's run, which ends when it has stopped.
    pub served: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// Runs a test body on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set; the
/// optional `settings = |s| …` adjusts the server's settings first.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident) => {
        $crate::on_both_databases!($name, settings = $crate::helpers::default_settings);
    };
    ($name:ident, settings = $tweak:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app =
                    $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite, $tweak).await;
                super::$name(app.expect("sqlite is always available")).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                match $crate::helpers::spawn_app($crate::helpers::Backend::Postgres, $tweak).await {
                    Some(app) => super::$name(app).await,
                    None => $crate::helpers::say_skipped(stringify!($name)),
                }
            }
        }
    };
}

async fn fresh_postgres() -> Option<String> {
    let base = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    let name = format!("tenantry_test_{}", uuid::Uuid::now_v7().simple());
    let admin = Database::connect(&base)
        .await
        .expect("TEST_DATABASE_URL must be reachable");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL names a database");
    Some(format!("{prefix}/{name}"))
}

/// Reports a skipped PostgreSQL half on the real stderr: the test harness captures what
/// `eprintln!` prints in passing tests, and a skip must not pass silently.
pub fn say_skipped(test: &str) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}::on_postgres: TEST_DATABASE_URL is not set, PostgreSQL is not tested"
    );
}

/// Leaves the test settings as they are.
pub fn default_settings(_: &mut Settings) {}

/// A pool of several connections, for tests of concurrent requests.
pub fn pooled(s: &mut Settings) {
    s.database_max_connections = 5;
}

/// Starts the server on a fresh database, with the test's own adjustments to the settings;
/// `None` when PostgreSQL is asked for but not configured.
pub async fn spawn_app(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    // `TEST_LOG=1` shows the servers' logs (filtered by `RUST_LOG`), to see why a test failed.
    if std::env::var_os("TEST_LOG").is_some() {
        tenantry_platform::telemetry::init("pretty");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}/tenantry.db", dir.path().display()),
        Backend::Postgres => fresh_postgres().await?,
    };
    let mail = MailSink::start().await;
    let mut settings = Settings {
        bind: "127.0.0.1:0".into(),
        public_url: "http://tenantry.test".into(),
        database_url,
        // One connection: a command that waits for a second connection while it holds one
        // (the pool starvation of parallel refreshes) deadlocks here at once and fails its
        // test. Tests of concurrency ask for more.
        database_max_connections: 1,
        data_dir: dir.path().to_path_buf(),
        smtp: Some(SmtpSettings {
            url: format!("smtp://127.0.0.1:{}", mail.port).into(),
        }),
        max_body_bytes: 16 * 1024,
        hash_threads: 2,
        http_workers: 2,
        ..Settings::default()
    };
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let platform = app.platform();
    let server = app.handle();
    let served = tokio::spawn(app.run_until_stopped());
    Some(TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        platform,
        mail,
        server,
        served,
        _dir: dir,
    })
}

/// A registered user's credentials and first tokens.
pub struct Account {
    pub email: String,
    pub password: String,
    pub user_id: String,
    pub tenant_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// GETs `path` without credentials, expecting 200, and answers the JSON body.
    pub async fn get_public_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let res = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("json body")
    }

    /// GETs `path` as the holder of `token`, expecting 200, and answers the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let res = self.get_authed(path, token).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("json body")
    }

    pub async fn post_authed(&self, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut req = self.client.post(self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    pub async fn put_authed(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_authed(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Brings `email` into `inviter`'s tenant with `role` the way a person joins: invited,
    /// the emailed link accepted as a new account named `name`. Answers the new account.
    pub async fn join(&self, inviter: &Account, email: &str, name: &str, role: &str) -> Account {
        let res = self
            .post_authed(
                "/api/v1/invitations",
                &inviter.access_token,
                Some(json!({"emails": [email], "role": role})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "invite {email}");
        let token = self.mail.invitation_token(email).await;
        let password = "a long enough password".to_owned();
        let res = self
            .post_json(
                "/api/v1/auth/accept-invite",
                &json!({"token": token, "name": name, "password": password}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "accept {email}");
        let body: Value = res.json().await.expect("json");
        Account {
            email: email.to_owned(),
            password,
            user_id: body["user_id"].as_str().expect("user_id").to_owned(),
            tenant_id: body["tenant_id"].as_str().expect("tenant_id").to_owned(),
            access_token: body["access_token"].as_str().expect("token").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("token").to_owned(),
        }
    }

    /// Creates a location named `name` in `who`'s tenant, expecting 201, and answers its id.
    pub async fn create_location(&self, who: &Account, name: &str) -> String {
        let res = self
            .post_authed(
                "/api/v1/locations",
                &who.access_token,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "create location {name}");
        res.json::<Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn delete_authed(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, email: &str, tenant_name: &str) -> Account {
        let password = "correct horse battery staple".to_owned();
        let res = self
            .post_json(
                "/api/v1/auth/register",
                &json!({"email": email, "password": password, "name": "Test User", "tenant_name": tenant_name}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "register {email}");
        let body: Value = res.json().await.expect("json");
        Account {
            email: email.to_owned(),
            password,
            user_id: body["user_id"].as_str().expect("user_id").to_owned(),
            tenant_id: body["tenant_id"].as_str().expect("tenant_id").to_owned(),
            access_token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get_authed("/api/v1/users/me", token).await
    }

    /// Asserts that `access_token` belongs to a session that has ended.
    pub async fn assert_signed_out(&self, access_token: &str) {
        assert_problem(
            self.me(access_token).await,
            StatusCode::UNAUTHORIZED,
            "session_ended",
        )
        .await;
    }

    /// Hands every committed outbox event to the job queue now, as the relay would.
    pub async fn run_pending_jobs(&self) {
        tenantry_platform::jobs::relay_once(&self.platform.db, &self.platform.jobs)
            .await
            .expect("outbox relay");
    }
}

/// A client whose connections come from `source` (any 127.x.y.z address reaches the server on
/// this machine's loopback).
pub fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .unwrap()
}

/// The `field` of every error a 422 problem names, in order.
pub fn problem_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect()
}

/// The `name` of every item of a list response, in order.
pub fn item_names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect()
}

/// Asserts a problem+json response with `status` and `code`, and returns its body.
pub async fn assert_problem(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for {code}");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(ct, "application/problem+json", "content type for {code}");
    let body: Value = res.json().await.expect("problem body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], format!("/problems/{code}"));
    assert!(body["title"].is_string());
    assert!(body["request_id"].is_string(), "{body}");
    body
}

/// A minimal SMTP server that hands every message it accepts to the test. It can be taken
/// down (it then answers every connection with 421, as a server in maintenance does), and it
/// refuses recipients whose address contains `bounce` with 550.
pub struct MailSink {
    pub port: u16,
    rx: Mutex<mpsc::UnboundedReceiver<String>>,
    down: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    held: Mutex<mpsc::UnboundedReceiver<()>>,
}

impl MailSink {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = mpsc::unbounded_channel();
        let down = Arc::new(AtomicBool::new(false));
        let is_down = Arc::clone(&down);
        let silent = Arc::new(AtomicBool::new(false));
        let is_silent = Arc::clone(&silent);
        let (held_tx, held) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut holding = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                if is_silent.load(Ordering::SeqCst) {
                    // A relay that takes the connection and never greets.
                    holding.push(socket);
                    let _ = held_tx.send(());
                    continue;
                }
                if is_down.load(Ordering::SeqCst) {
                    let _ = socket
                        .write_all(b"421 4.3.2 sink.test not available\r\n")
                        .await;
                    continue;
                }
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = smtp_session(socket, tx).await;
                });
            }
        });
        Self {
            port,
            rx: Mutex::new(rx),
            down,
            silent,
            held: Mutex::new(held),
        }
    }

    /// Makes the relay take connections and never answer (`true`), or answer again.
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }

    /// Waits (at most 30 s) until the silent relay holds one more connection.
    pub async fn next_held_connection(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.held.lock().await.recv())
            .await
            .expect("a connection to the silent relay within 30 s")
            .expect("sink open");
    }

    /// Takes the server down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Whether no message is waiting right now.
    pub async fn is_empty(&self) -> bool {
        self.rx.lock().await.is_empty()
    }

    /// The next invitation email to `to`, skipping other messages.
    pub async fn next_message_to(&self, to: &str) -> String {
        loop {
            let message = self.next_message().await;
            let decoded = crate::sessions::decoded(&message);
            if decoded.contains("accept-invite#token=") && decoded.contains(&format!("To: {to}")) {
                return message;
            }
        }
    }

    /// The token of the next invitation email to `to`, skipping other messages.
    pub async fn invitation_token(&self, to: &str) -> String {
        crate::sessions::token_from_email(&self.next_message_to(to).await)
    }

    /// The next message delivered, waiting at most 30 s for the background job to send it.
    pub async fn next_message(&self) -> String {
        tokio::time::timeout(Duration::from_secs(30), self.rx.lock().await.recv())
            .await
            .expect("an email arrives within 30 s")
            .expect("sink open")
    }
}

async fn smtp_session(
    socket: tokio::net::TcpStream,
    tx: mpsc::UnboundedSender<String>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                write
                    .write_all(b"250-sink.test\r\n250 8BITMIME\r\n")
                    .await?
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut message = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    message.push_str(l.strip_prefix('.').unwrap_or(&l));
                    message.push('\n');
                }
                let _ = tx.send(message);
                write.write_all(b"250 queued\r\n").await?;
            }
            "RCPT" if line.to_ascii_lowercase().contains("bounce") => {
                write
                    .write_all(b"550 5.1.1 mailbox unavailable\r\n")
                    .await?
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"250 ok\r\n").await?,
        }
    }
    Ok(())
}
