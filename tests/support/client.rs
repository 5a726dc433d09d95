//! The typed client of the API under test: a caller's token on every request, answers read as
//! status, headers and JSON.

/// The caller a test plays: the claims a verified JWT would carry.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A bearer token that is not a JWT: refused as API Gateway's authorizer would.
    Unverified,
    /// Claims: `scope` (space-separated scopes), `tenant_id`, `group_id`, ...
    Token(serde_json::Map<String, serde_json::Value>),
}

impl Caller {
    pub fn operator() -> Self {
        Self::token("licenses/operator", None, None)
    }

    pub fn tenant_admin(tenant: &str) -> Self {
        Self::token("licenses/tenant-admin", Some(tenant), None)
    }

    pub fn group_admin(tenant: &str, group: &str) -> Self {
        Self::token("licenses/group-admin", Some(tenant), Some(group))
    }

    pub fn token(scope: &str, tenant: Option<&str>, group: Option<&str>) -> Self {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "api-tests".into());
        claims.insert("scope".into(), scope.into());
        if let Some(t) = tenant {
            claims.insert("tenant_id".into(), t.into());
        }
        if let Some(g) = group {
            claims.insert("group_id".into(), g.into());
        }
        Caller::Token(claims)
    }

    /// The `Authorization` header: an unsigned JWT carrying the claims (the local server
    /// decodes it without verification, as the README says).
    pub fn authorization(&self) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        match self {
            Caller::Unverified => "Bearer not-a-jwt".to_owned(),
            Caller::Token(claims) => format!(
                "Bearer {}.{}.unsigned",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&serde_json::Value::Object(claims.clone()).to_string())
            ),
        }
    }
}

/// The API under test, over real HTTP: a [`crate::TestApp`]'s server (the local server's
/// router, what `make run` serves). The caller's claims travel as a bearer token, so every
/// route runs with authorization on.
pub struct Api {
    base: String,
    http: reqwest::Client,
    caller: Caller,
}

pub struct Reply {
    pub status: u16,
    pub allow: Option<String>,
    pub content_type: Option<String>,
    /// The body as JSON (`null` for an empty body).
    pub json: serde_json::Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `code` of the first error item.
    pub fn code(&self) -> &str {
        self.json["errors"][0]["code"].as_str().unwrap_or_default()
    }
}

impl Api {
    /// The server at `base` as `caller`.
    pub fn at(base: &str, caller: Caller) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            caller,
        }
    }

    /// The server's base URL, for requests built by hand.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn group_licenses_path(tenant: &str, group: &str) -> String {
        format!("/api/v1/tenants/{tenant}/groups/{group}/licenses/")
    }

    /// Sends `method path` with an optional raw body; `path` is sent as given (already encoded,
    /// with any query string).
    pub fn send<'a>(&'a self, method: &str, path: &'a str, body: Option<&str>) -> Sending<'a> {
        Sending {
            api: self,
            method: reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method"),
            path,
            body: body.map(str::to_owned),
            headers: Vec::new(),
        }
    }
}

/// A request on its way: await it for a JSON [`Reply`], or [`Sending::await_empty`] for the
/// status of a response without a body (a 204).
pub struct Sending<'a> {
    api: &'a Api,
    method: reqwest::Method,
    path: &'a str,
    body: Option<String>,
    headers: Vec<(String, String)>,
}

impl Sending<'_> {
    /// Adds a request header (`Idempotency-Key`, `If-Match`, ...).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    async fn answer(self) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self
            .api
            .http
            .request(self.method, format!("{}{}", self.api.base, self.path))
            .header("authorization", self.api.caller.authorization());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = self.body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the local server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("a response body");
        (status, headers, body)
    }

    /// Sends the request and returns the status, checking that a 204 has no body.
    pub async fn await_empty(self) -> u16 {
        let (status, _, body) = self.answer().await;
        if status == 204 {
            assert!(body.is_empty(), "a 204 has no body");
        }
        status
    }
}

impl<'a> std::future::IntoFuture for Sending<'a> {
    type Output = Reply;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let path = self.path;
            let (status, headers, body) = self.answer().await;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let json = if body.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("response to {path} is not JSON ({e}): {body}"))
            };
            Reply {
                status,
                allow: header("allow"),
                content_type: header("content-type"),
                json,
                headers,
            }
        })
    }
}

impl Api {
    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    /// A GET whose answer is not JSON (the reference's page and files): status and text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let reply = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = reply.status().as_u16();
        (status, reply.text().await.unwrap_or_default())
    }

    /// [`Api::get`] of a path built on the spot (for futures that outlive their caller's
    /// temporaries).
    pub async fn get_owned(&self, path: String) -> Reply {
        self.send("GET", &path, None).await
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send("PUT", path, Some(&body.to_string())).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send("POST", path, Some(&body.to_string())).await
    }

    pub async fn delete(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send("DELETE", path, Some(&body.to_string())).await
    }
}
