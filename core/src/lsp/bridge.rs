//! The bridge's own HTTP surface and its table of language servers; with [`Link`], every
//! decision of `axs lsp`. A runtime only moves bytes.
//!
//! # Routes (its own port)
//!
//! | request | answer |
//! |---|---|
//! | `GET /status` (no token, any Origin) | 200 `{"program","args","processes":[{"pid","uptime_secs","memory_bytes"}]}` + CORS |
//! | `OPTIONS /` or `/status` | 204 preflight (Origin checked) |
//! | `GET /` + WebSocket upgrade (Origin checked, token when set) | spawn the program, then 101 |
//! | `GET /` without an upgrade | 400; other methods 405; other paths 404 (JSON) |
//!
//! # The driving loop a runtime follows
//!
//! ```text
//! bridge = Bridge::new(program, args, policy)          (axs_host::lsp::start_up builds it)
//! per accepted socket: conn::Connection as for the terminal server; on its Request(r):
//!     match bridge.route(&r.head)
//!         Err(e)                 -> conn.respond(bridge.answer(&r.head, Err(e)))
//!         Ok(BridgeRoute::Status)    -> conn.respond(bridge.status(&r.head, now, rss_of_pid))
//!         Ok(BridgeRoute::Preflight) -> conn.respond(bridge.answer(&r.head, Ok(preflight)))
//!         Ok(BridgeRoute::Connect)   -> spawn the program on pipes (axs_pty::spawn_piped):
//!             failed -> conn.respond(bridge.answer(&r.head, Err(ApiError::SpawnFailed(..))))
//!             ok     -> link = bridge.connected(pid, now); conn.respond(bridge.accept(&r.head))
//!                       on Upgraded: run the link with the socket (and r.early)
//! per link:
//!     loop {
//!         while let Some(out) = link.poll(Sinks { client: no frame being written,
//!                                                 stdin: no chunk being written }, now) {
//!             Text(s) / Close{code,reason} -> write that frame (Close: then read until the echo)
//!             DropClient                  -> drop the socket
//!             Stdin(bytes)                -> write all of it to the program's stdin
//!             CloseStdin                  -> drop the stdin pipe end
//!             StderrLine(line)            -> eprintln!("{line}")
//!             Signal(s)                   -> axs_host::signal::deliver(s)
//!         }
//!         if link.is_finished() { bridge.forget(pid); return }
//!         wait for: socket readable (if wants_client()), stdout readable (if wants_stdout()),
//!                   stderr readable (if wants_stderr()), a write finishing, SIGCHLD,
//!                   poll_timeout()
//!         socket message  -> client_message(m); too big for the WebSocket layer ->
//!                            client_too_large(n); close / error -> client_closed(now)
//!         stdout bytes    -> stdout(bytes); EOF or error -> stdout_eof()
//!         stderr bytes    -> stderr(bytes); EOF or error -> stderr_eof()
//!         stdin write failed -> stdin_broken()
//!         SIGCHLD: try_wait(pid) = Some(status) -> link.exited(status, now); bridge.exited(pid)
//!         timer           -> handle_timeout(now)
//!     }
//! SIGTERM / SIGINT / SIGHUP: every link.shutdown(now), run them until finished (the core's
//!     own deadlines bound it: SIGKILL at +SIGTERM_GRACE, close echo within CLOSE_WAIT),
//!     remove the port file, exit.
//! ```
//!
//! Invariants: a WebSocket never upgrades without its Origin allowed and its token (when
//! set); `/status` lists exactly the programs spawned and not yet reaped.

use std::collections::BTreeMap;

use super::link::Link;
use crate::api::{self, ApiError, Policy};
use crate::http::{Method, RequestHead, Response};
use crate::time::Time;

/// What a request to the bridge asks for (the policy checks passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeRoute {
    /// `GET /status`: answer [`Bridge::status`].
    Status,
    /// `OPTIONS` on a known path: answer [`api::preflight`].
    Preflight,
    /// `GET /` with a valid WebSocket upgrade: spawn the program, then [`Bridge::accept`].
    Connect,
}

/// The bridge's paths, before the method is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Socket,
    Status,
}

impl Endpoint {
    fn find(path: &str) -> Option<Endpoint> {
        match path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path)
        {
            "/" => Some(Endpoint::Socket),
            "/status" => Some(Endpoint::Status),
            _ => None,
        }
    }
}

/// One `axs lsp` bridge: what it runs, who may connect, and its live programs.
#[derive(Debug, Clone)]
pub struct Bridge {
    program: String,
    args: Vec<String>,
    policy: Policy,
    /// Spawned and not reaped yet: pid → spawn time.
    processes: BTreeMap<u32, Time>,
}

impl Bridge {
    /// A bridge running `program` (as given on the command line) with `args`.
    pub fn new(program: String, args: Vec<String>, policy: Policy) -> Bridge {
        Bridge {
            program,
            args,
            policy,
            processes: BTreeMap::new(),
        }
    }

    /// The program as given on the command line.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Its arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Who may connect (for [`crate::conn::Connection::received`]).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Routes a request with every policy check: 404 unknown path, 405 other methods,
    /// 403 a refused Origin (not for `/status`), 401 no token (not for `/status` and
    /// preflights), 400/426 a bad upgrade.
    pub fn route(&self, head: &RequestHead) -> Result<BridgeRoute, ApiError> {
        let endpoint =
            Endpoint::find(&head.path).ok_or_else(|| ApiError::NotFound(head.path.clone()))?;
        if head.method == Method::Options {
            self.policy.check_origin(head)?;
            return Ok(BridgeRoute::Preflight);
        }
        if head.method != Method::Get {
            return Err(ApiError::MethodNotAllowed {
                allow: "GET, OPTIONS",
            });
        }
        match endpoint {
            Endpoint::Status => Ok(BridgeRoute::Status),
            Endpoint::Socket => {
                self.policy.check_origin(head)?;
                self.policy.check_token(head)?;
                api::websocket_accept(head)?;
                Ok(BridgeRoute::Connect)
            }
        }
    }

    /// The final answer to `head`: the response or the error's JSON, with CORS headers.
    pub fn answer(&self, head: &RequestHead, result: Result<Response, ApiError>) -> Response {
        api::answer(Some(head), &self.policy, result)
    }

    /// The preflight answer ([`BridgeRoute::Preflight`]).
    pub fn preflight(&self, head: &RequestHead) -> Response {
        self.answer(head, Ok(api::preflight(head, &self.policy)))
    }

    /// `GET /status` at `now`; `memory_of(pid)` is a process's resident set in bytes
    /// (`None`: unknown, shown as `null`).
    pub fn status(
        &self,
        head: &RequestHead,
        now: Time,
        memory_of: impl Fn(u32) -> Option<u64>,
    ) -> Response {
        let processes: Vec<serde_json::Value> = self
            .processes
            .iter()
            .map(|(&pid, &started)| {
                serde_json::json!({
                    "pid": pid,
                    "uptime_secs": started.until(now).as_secs(),
                    "memory_bytes": memory_of(pid),
                })
            })
            .collect();
        let body = serde_json::json!({
            "program": self.program,
            "args": self.args,
            "processes": processes,
        });
        let response = Response::new(200, "application/json", body.to_string());
        self.answer(head, Ok(response))
    }

    /// The `101` for a [`BridgeRoute::Connect`] request whose program was spawned.
    pub fn accept(&self, head: &RequestHead) -> Response {
        self.answer(head, api::websocket_accept(head))
    }

    /// The program of a new socket was spawned as `pid` at `now`: it is listed by
    /// `/status` until [`Bridge::exited`]; returns its link.
    pub fn connected(&mut self, pid: u32, now: Time) -> Link {
        self.processes.insert(pid, now);
        Link::new(pid, &self.program_name(), now)
    }

    /// The program `pid` was reaped: `/status` no longer lists it.
    pub fn exited(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// The pids of the programs not reaped yet.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.processes.keys().copied()
    }

    /// The name a program's stderr lines are prefixed with: the program's base name.
    pub fn program_name(&self) -> String {
        program_base_name(&self.program).to_string()
    }
}

/// The base name of a program as given (`/usr/bin/pylsp` → `pylsp`); the port file's
/// name starts with it too.
pub fn program_base_name(program: &str) -> &str {
    let trimmed = program.trim_end_matches('/');
    match trimmed.rsplit('/').next() {
        Some(base) if !base.is_empty() => base,
        _ => program,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn bridge(token: Option<&str>) -> Bridge {
        let mut policy = Policy::new(SocketAddr::from(([127, 0, 0, 1], 4000)));
        policy.token = token.map(String::from);
        Bridge::new("/usr/bin/pylsp".into(), vec!["-v".into()], policy)
    }

    fn head(method: Method, path: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut text = format!("{} {path} HTTP/1.1\r\nHost: x\r\n", method.as_str());
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        match crate::http::parse_head(text.as_bytes()).unwrap() {
            crate::http::HeadParse::Complete { head, .. } => head,
            other => panic!("{other:?}"),
        }
    }

    const UPGRADE: [(&str, &str); 4] = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    fn upgrade_with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        UPGRADE.iter().chain(extra).copied().collect()
    }

    #[test]
    fn routes_status_preflight_and_socket() {
        let b = bridge(None);
        assert_eq!(
            b.route(&head(Method::Get, "/status", &[])),
            Ok(BridgeRoute::Status)
        );
        let origin = [("Origin", "https://localhost")];
        assert_eq!(
            b.route(&head(Method::Options, "/", &origin)),
            Ok(BridgeRoute::Preflight)
        );
        assert_eq!(
            b.route(&head(Method::Get, "/", &upgrade_with(&origin))),
            Ok(BridgeRoute::Connect)
        );
        let r = b.accept(&head(Method::Get, "/", &upgrade_with(&origin)));
        assert_eq!(r.status, 101);
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn refuses_what_it_must() {
        let b = bridge(Some("sekret"));
        let status = |h: &RequestHead| b.answer(h, b.route(h).map(|_| Response::empty(200))).status;
        assert_eq!(status(&head(Method::Get, "/nope", &[])), 404);
        assert_eq!(status(&head(Method::Post, "/", &[])), 405);
        let evil = upgrade_with(&[("Origin", "https://evil.example")]);
        assert_eq!(status(&head(Method::Get, "/", &evil)), 403);
        assert_eq!(status(&head(Method::Get, "/", &UPGRADE)), 401);
        let with_token = upgrade_with(&[("X-Axs-Token", "sekret")]);
        assert_eq!(
            b.route(&head(Method::Get, "/", &with_token)),
            Ok(BridgeRoute::Connect)
        );
        let plain_get = head(Method::Get, "/?token=sekret", &[]);
        assert_eq!(status(&plain_get), 400);
        // `/status` needs no token and answers any Origin (CORS decides who reads it).
        let from_evil = head(
            Method::Get,
            "/status",
            &[("Origin", "https://evil.example")],
        );
        assert_eq!(b.route(&from_evil), Ok(BridgeRoute::Status));
        let r = b.answer(
            &head(Method::Get, "/nope", &[]),
            Err(ApiError::NotFound("/nope".into())),
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    #[test]
    fn status_lists_live_programs_with_uptime_memory_and_cors() {
        let mut b = bridge(None);
        let h = head(Method::Get, "/status", &[("Origin", "https://localhost")]);
        let json = |r: Response| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();
        let before = json(b.status(&h, Time::from_millis(0), |_| None));
        assert_eq!(
            before,
            serde_json::json!({"program":"/usr/bin/pylsp","args":["-v"],"processes":[]})
        );
        let link = b.connected(4242, Time::from_millis(1_000));
        assert_eq!(link.pid(), 4242);
        let r = b.status(&h, Time::from_millis(3_500), |pid| Some(u64::from(pid) * 2));
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://localhost")
        );
        assert_eq!(
            json(r)["processes"],
            serde_json::json!([{"pid":4242,"uptime_secs":2,"memory_bytes":8484}])
        );
        b.exited(4242);
        assert_eq!(
            json(b.status(&h, Time::from_millis(4_000), |_| None))["processes"],
            serde_json::json!([])
        );
    }

    #[test]
    fn base_names() {
        assert_eq!(program_base_name("/usr/bin/pylsp"), "pylsp");
        assert_eq!(program_base_name("pylsp"), "pylsp");
        assert_eq!(program_base_name("./x/"), "x");
        assert_eq!(program_base_name("/"), "/");
    }
}
