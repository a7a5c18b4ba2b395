//! The command line's [`Config`] as the core's values: a [`Server`] with its
//! [`ServerConfig`] and [`Policy`].

use std::net::SocketAddr;

use axs_core::api::Policy;
use axs_core::server::{Server, ServerConfig};
use axs_core::session::SessionConfig;

use super::Config;

/// The server the command line describes, listening on `bound`; `home` is where
/// `execute-command` runs when the request names no directory.
pub fn server(config: &Config, bound: SocketAddr, home: String) -> Server {
    Server::new(server_config(config, home), policy(config, bound))
}

/// Limits and defaults of the server the command line describes.
pub fn server_config(config: &Config, home: String) -> ServerConfig {
    let session = SessionConfig {
        stall_timeout: config.stall_timeout,
        retention: config.retention,
        policy: config.attach,
        ..SessionConfig::with_scrollback(config.scrollback)
    };
    ServerConfig {
        session,
        max_sessions: config.max_sessions,
        home,
    }
}

/// The request policy the command line asks for, for a listener bound to `bound`.
pub fn policy(config: &Config, bound: SocketAddr) -> Policy {
    Policy {
        allow_any_origin: config.allow_any_origin,
        token: config.token.clone(),
        view_token: config.view_token.clone(),
        ..Policy::new(bound)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use std::ffi::OsString;
    use std::time::Duration;

    use axs_core::api::AttachPolicy;

    use super::*;
    use crate::cli::parse_args;

    fn parse(args: &[&str]) -> Config {
        let argv = std::iter::once("axs").chain(args.iter().copied());
        parse_args(argv.map(OsString::from)).unwrap()
    }

    #[test]
    fn flags_reach_the_sessions_and_the_registry() {
        let config = parse(&[
            "--scrollback",
            "1M",
            "--attach",
            "takeover",
            "--max-sessions",
            "3",
            "--retention",
            "7",
            "--stall-timeout",
            "9",
        ]);
        let core = server_config(&config, String::from("/home/u"));
        assert_eq!(core.session.scrollback, 1024 * 1024);
        assert_eq!(core.session.policy, AttachPolicy::Takeover);
        assert_eq!(core.session.retention, Duration::from_secs(7));
        assert_eq!(core.session.stall_timeout, Duration::from_secs(9));
        assert_eq!(core.max_sessions, 3);
        assert_eq!(core.home, "/home/u");
    }

    #[test]
    fn flags_reach_the_policy() {
        let bound: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let config = parse(&[
            "--allow-any-origin",
            "--token",
            "secret",
            "--view-token",
            "watch",
        ]);
        let policy = policy(&config, bound);
        assert!(policy.allow_any_origin);
        assert_eq!(policy.token.as_deref(), Some("secret"));
        assert_eq!(policy.view_token.as_deref(), Some("watch"));
        assert_eq!(policy.bound, bound);
        assert_eq!(policy.own_origins, Policy::new(bound).own_origins);
    }

    #[test]
    fn the_server_carries_both() {
        let bound: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let config = Config::default();
        let server = server(&config, bound, String::from("/"));
        assert_eq!(server.config(), &server_config(&config, String::from("/")));
        assert_eq!(server.policy(), &policy(&config, bound));
    }
}
