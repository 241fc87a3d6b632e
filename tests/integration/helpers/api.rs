//! The read API as a unit's system uses it: over HTTP, with a real client.

use super::*;

/// A client of one worker's read API.
pub struct ApiClient {
    base: String,
    client: reqwest::Client,
}

/// An answer: status, headers and body (JSON when it is JSON, else null).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl ApiClient {
    pub fn new(port: u16) -> ApiClient {
        ApiClient {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    /// GET `path` (with its query) with `token`, if any, and `headers`.
    pub async fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("the read API answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.get_with(path, Some(token), &[]).await
    }

    /// Every item of a list, following `next` (`after=` for the feed,
    /// `cursor=` for a search) until a page comes back empty or without
    /// `next`; and the last `next`.
    pub async fn all(&self, path: &str, token: &str) -> (Vec<Value>, Option<String>) {
        self.all_from(path, token, None).await
    }

    /// [`ApiClient::all`] from cursor `start`.
    pub async fn all_from(
        &self,
        path: &str,
        token: &str,
        start: Option<String>,
    ) -> (Vec<Value>, Option<String>) {
        let (param, sep) = if path.starts_with("/v1/changes") {
            ("after", if path.contains('?') { '&' } else { '?' })
        } else {
            ("cursor", if path.contains('?') { '&' } else { '?' })
        };
        let mut items = Vec::new();
        let mut next: Option<String> = start;
        loop {
            let url = match &next {
                Some(n) => format!("{path}{sep}{param}={n}"),
                None => path.to_owned(),
            };
            let a = self.get(&url, token).await;
            assert_eq!(a.status, 200, "{url}: {}", a.text);
            let page = a.body["items"].as_array().unwrap().clone();
            let more = a.body["next"].as_str().map(str::to_owned);
            let empty = page.is_empty();
            items.extend(page);
            if empty || more.is_none() || more == next {
                return (items, more.or(next));
            }
            next = more;
        }
    }

    /// Waits until the API answers (it starts once the database is ready).
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .client
                .get(format!("{}/v1/openapi.json", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the read API did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A test environment whose worker serves the read API on a port of its
/// own (`extra`: more settings), running, with a client of it.
pub async fn api_env(extra: &[&str]) -> (TestEnv, ApiClient) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--api-addr", addr.as_str()];
    args.extend_from_slice(extra);
    let mut env = TestEnv::with_args(&args).await;
    env.start_worker();
    let client = ApiClient::new(port);
    client.wait_ready().await;
    (env, client)
}

/// A new token for `unit` (`jobcenter:15300`).
pub async fn token_for(env: &TestEnv, unit: &str) -> String {
    let unit = jobsync::commands::parse_unit(unit).unwrap();
    let url = env.db_url();
    tokio::task::spawn_blocking(move || {
        jobsync::tokens::create(&url, &unit, Some("tests"), None, chrono::Utc::now())
            .unwrap()
            .1
    })
    .await
    .unwrap()
}
