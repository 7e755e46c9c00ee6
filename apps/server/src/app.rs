//! Building and running the HTTP server (with the workers inside it in embedded mode).

use std::net::TcpListener;
use std::sync::Arc;

use actix_http::HttpService;
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::AppConfig;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Condition, Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, web};
use anyhow::Context as _;
use tenantry_platform::{Platform, Settings, jobs};
use tokio::sync::watch;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::{extract, openapi, request_id, routes};

/// A built server, listening, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    platform: Arc<Platform>,
    stop_workers: watch::Sender<bool>,
}

impl Application {
    /// Builds the platform, binds the listener and prepares the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let platform = Arc::new(Platform::build(settings).await?);
        let listener = TcpListener::bind(&platform.settings.bind)
            .with_context(|| format!("binding {}", platform.settings.bind))?;
        let port = listener.local_addr()?.port();
        let server = http_server(Arc::clone(&platform), listener)?;
        let (stop_workers, _) = watch::channel(false);
        Ok(Self {
            port,
            server,
            platform,
            stop_workers,
        })
    }

    /// The port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server, as SIGTERM does (`stop(true)`: gracefully).
    #[must_use]
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The wired services.
    #[must_use]
    pub fn platform(&self) -> Arc<Platform> {
        Arc::clone(&self.platform)
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM), running the background workers
    /// alongside when the settings embed them.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let workers = self.platform.settings.embedded_worker.then(|| {
            let platform = Arc::clone(&self.platform);
            let stop = self.stop_workers.subscribe();
            tokio::spawn(async move {
                if let Err(e) = jobs::run(platform, stop).await {
                    tracing::error!(error = format!("{e:#}"), "background workers stopped");
                }
            })
        });
        let served = self.server.await;
        let _ = self.stop_workers.send(true);
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        served.context("HTTP server")
    }
}

fn http_server(platform: Arc<Platform>, listener: TcpListener) -> anyhow::Result<Server> {
    let settings = platform.settings.clone();
    let hsts = settings.public_url.starts_with("https://");
    let workers = match settings.http_workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let proxies = web::Data::new(
        crate::client_ip::TrustedProxies::parse(&settings.trusted_proxies)
            .map_err(anyhow::Error::msg)?,
    );
    let body_limit = web::Data::new(crate::input::BodyLimit(settings.max_body_bytes));
    let data = web::Data::new(platform);
    let local = listener.local_addr()?;
    // actix-web's HttpServer, but over connections whose parser refusals become problem
    // documents (see `codec_errors`).
    let app = move || {
        let cors = cors(&settings.cors_allowed_origins);
        App::new()
            .app_data(data.clone())
            .app_data(proxies.clone())
            .app_data(body_limit.clone())
            .app_data(extract::path_config())
            .app_data(web::PayloadConfig::new(settings.max_body_bytes))
            .wrap(Condition::new(
                !settings.cors_allowed_origins.is_empty(),
                cors,
            ))
            .wrap(from_fn(crate::ratelimit::headers_middleware))
            .wrap(from_fn(crate::error::every_error_a_problem))
            .wrap(from_fn(move |req, next| security_headers(req, next, hsts)))
            .wrap(from_fn(request_id::middleware))
            // Requests are counted only where metrics can be read.
            .wrap(Condition::new(
                settings.metrics_token.is_some(),
                from_fn(crate::metrics::middleware),
            ))
            .configure(routes::configure)
            .configure(|cfg| {
                if settings.metrics_token.is_some() {
                    cfg.route("/metrics", web::get().to(crate::metrics::endpoint));
                }
            })
            .route("/api/openapi.json", web::get().to(openapi_json))
            .service(
                SwaggerUi::new("/api/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
            )
            .route(
                "/api/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header((header::LOCATION, "/api/docs/"))
                        .finish()
                }),
            )
            .default_service(web::to(fallback))
    };
    let builder = Server::build();
    // On shutdown, kept-alive connections close after their request, as actix-web does.
    let closing = builder.graceful_shutdown_signal();
    let server = builder
        .workers(workers)
        // On a stop, requests under way get 10 s, and the jobs after them their grace: both
        // inside the 30 s orchestrators give a process before they kill it.
        .shutdown_timeout(10)
        .listen("tenantry-http", listener, move || {
            let closing = closing.clone();
            let http = HttpService::build()
                .local_addr(local)
                .graceful_shutdown_signal(move || {
                    let closing = closing.clone();
                    async move { closing.notified().await }
                })
                .h1(map_config(
                    app()
                        .into_factory()
                        .map_err(|e: actix_web::Error| e.error_response()),
                    |_| AppConfig::default(),
                ));
            fn_service(|io: actix_web::rt::net::TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok((crate::codec_errors::ProblemIo::new(io), peer))
            })
            .and_then(http)
        })?
        .run();
    Ok(server)
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            request_id::HEADER,
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER, request_id::HEADER])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    hsts: bool,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let docs = req.path().starts_with("/api/docs");
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    let set = |h: &mut header::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    };
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    if !docs && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        // The API serves data, not pages: nothing may load or frame it. (The few pages
        // Tenantry serves set their own policy.)
        set(
            h,
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        );
        if !h.contains_key(header::CACHE_CONTROL) {
            set(h, "cache-control", "no-store");
        }
    }
    if hsts {
        set(
            h,
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        );
    }
    Ok(res)
}

async fn openapi_json(state: routes::AppState) -> Result<HttpResponse, ApiError> {
    let body =
        openapi::served_json(&state.settings.tenant_limits).map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Unknown routes answer 404; known routes with the wrong method answer 405 with `Allow`.
async fn fallback(req: HttpRequest) -> HttpResponse {
    let allowed = openapi::allowed_methods(req.path());
    let err = if allowed.is_empty() {
        ApiError::not_found().detail(format!("no route for {}", req.path()))
    } else {
        ApiError::method_not_allowed(req.method(), &allowed)
    };
    actix_web::ResponseError::error_response(&err)
}
