//! The browser page, end to end: headless Chromium on the real page against the real binary.
//!
//! Without Chromium the case says that it did not run and how to run it, and passes; with
//! `CI=true` a missing Chromium is a failure. Screenshots of each step go to
//! `target/web-e2e/<binary>/`.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::{OrFail, EVENT};
use crate::browser::{find_chromium, Browser, Page};
use crate::relay::Relay;
use crate::server::Server;

const TOKEN: &str = "web-T0ken";
const PROMPT: &str = "axs$ ";

/// The terminal's whole buffer (scrollback and screen) as text, one line per row.
const BUFFER_TEXT: &str = "(() => { const b = term.buffer.active; const out = []; \
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true)); \
    return out.join('\\n'); })()";

/// The page, step by step: prompt, command, resize, cells, bulk output, reload, network
/// cut, exit.
pub fn web_page(bin: &Path) {
    let Some(chromium) = find_chromium() else {
        let how = "install Chromium (Debian: apt-get install -y chromium chromium-driver) \
                   or set AXS_CHROMIUM=/path/to/chromium, then run `cargo test web_page`";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("web_page: Chromium is missing and CI=true: {how}");
        }
        eprintln!("web_page DID NOT RUN: no Chromium found; {how}");
        return;
    };
    let server = Server::start(
        bin,
        &[
            "-c",
            "bash --norc --noprofile -i",
            "--token",
            TOKEN,
            "--allow-any-origin",
        ],
        &[("PS1", PROMPT), ("TERM", "xterm-256color")],
    );
    // The page reaches the server through a relay the test can cut; the relay's port is
    // another origin than the server's, hence --allow-any-origin.
    let relay = Relay::start(server.port).or_fail();
    let url = format!("http://127.0.0.1:{}/?token={TOKEN}", relay.port);
    let (_browser, mut page) = Browser::launch(&chromium, &url, 1000, 700).or_fail();
    let shots = screenshot_dir(bin);
    let mut step = Steps {
        page: &mut page,
        dir: shots,
        n: 0,
    };
    let page = &mut step;

    // 1. The prompt appears; the token left the address bar for sessionStorage.
    page.wait_text(PROMPT, "the prompt");
    let id = page
        .eval("axs.id")
        .as_str()
        .map(String::from)
        .or_fail_none("no session id");
    let address = page.eval("location.href");
    assert!(
        address
            .as_str()
            .is_some_and(|a| !a.contains("token") && a.ends_with(&format!("#/terminals/{id}"))),
        "the address keeps the session and drops the token: {address}"
    );
    assert_eq!(page.eval("sessionStorage.getItem('axs-token')"), TOKEN);
    page.shot("prompt");

    // 2. Typing runs a command.
    page.type_line("echo hello-$((6*7))");
    page.wait_line("hello-42", "the command's output");
    page.shot("command");

    // 3. The window shrinks: the pty follows.
    let before = page.eval("[term.cols, term.rows]");
    page.page.set_viewport(560, 360).or_fail();
    let size = page.wait_for(
        "term.cols < 70 && [term.cols, term.rows]",
        "the terminal refits",
    );
    assert_ne!(size, before);
    let expected = format!("{} {}", size[1], size[0]);
    wait_list(&server, "the server sees the new size", |list| {
        list.iter()
            .any(|t| t["cols"] == size[0] && t["rows"] == size[1])
    });
    page.type_line("stty size");
    page.wait_line(&expected, "stty size matches the window");
    page.shot("resized");

    // 4. Unicode and colours land in the right cells.
    page.type_line(r"printf '\033[31mRED\033[0m \346\227\245\346\234\254x\n'");
    page.wait_line("RED 日本x", "the coloured and wide characters");
    let cells = page.eval(
        "(() => { const b = term.buffer.active; for (let i = b.length - 1; i >= 0; i--) { \
           const l = b.getLine(i); if (!l.translateToString(true).startsWith('RED ')) continue; \
           const c = (x) => l.getCell(x); \
           return [c(0).getChars(), c(0).isFgPalette() && c(0).getFgColor(), c(3).isFgDefault(), \
                   c(4).getChars(), c(4).getWidth(), c(5).getWidth(), c(6).getChars(), c(8).getChars()]; } \
           return null; })()",
    );
    assert_eq!(
        cells,
        serde_json::json!(["R", 1, true, "日", 2, 0, "本", "x"]),
        "cells of the printf line"
    );
    page.shot("unicode-colours");

    // 5. Bulk output arrives whole: no skip, and the tail of the scrollback is consecutive.
    let received = page.eval("axs.received").as_u64().unwrap_or(0);
    page.type_line("seq 1 200000; echo seq-done");
    page.wait_for_long("term.buffer.active.length > 0 && axs.received > 0 && (() => { const b = term.buffer.active; \
        for (let i = b.length - 1; i >= 0; i--) if (b.getLine(i).translateToString(true) === 'seq-done') return true; \
        return false; })()", "seq-done after 200000 lines");
    assert_eq!(
        page.eval("axs.skips"),
        0,
        "the page kept up: nothing was skipped"
    );
    let got = page.eval("axs.received").as_u64().unwrap_or(0) - received;
    // 1..=200000 with CRLF line ends: 1 288 895 digits and newlines, plus 200 000 CRs.
    assert!(got >= 1_488_895, "received {got} bytes for seq 1 200000");
    let tail = page.eval(
        "(() => { const b = term.buffer.active; const nums = []; \
           for (let i = 0; i < b.length; i++) { const t = b.getLine(i).translateToString(true); \
             if (/^[0-9]+$/.test(t)) nums.push(Number(t)); } return nums; })()",
    );
    let nums: Vec<u64> = tail
        .as_array()
        .or_fail_none("numbers")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(nums.last(), Some(&200_000), "the last line is 200000");
    assert!(
        nums.len() > 5000,
        "the scrollback holds many lines: {}",
        nums.len()
    );
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "the lines in the scrollback are consecutive"
    );
    page.shot("seq");

    // 6. Reload: the same shell (a variable set before is still set) with its history.
    page.type_line("MARK=kept-$((3+4)); clear; echo before-reload");
    page.wait_line("before-reload", "the marker before the reload");
    page.page
        .call("Page.reload", serde_json::json!({}))
        .or_fail();
    thread::sleep(Duration::from_millis(300));
    page.wait_for(
        &format!("window.axs && axs.id === '{id}' && axs.offset !== null"),
        "the page reattached",
    );
    page.wait_line("before-reload", "the history replayed");
    page.type_line("echo \"v=$MARK\"");
    page.wait_line("v=kept-7", "the variable survived the reload");
    wait_list(&server, "one session, never a second shell", |list| {
        list.len() == 1
    });
    page.shot("reloaded");

    // 7. The network is cut while the program prints: the page reconnects by itself and
    // shows that output exactly once; what was typed meanwhile is sent after.
    page.type_line(
        "clear; for i in $(seq 1 30); do echo tick-$i; sleep 0.1; done; echo ticks-done",
    );
    page.wait_line("tick-3", "the ticks start");
    relay.cut();
    page.wait_for(
        "!document.getElementById('status').hidden && document.getElementById('status').textContent.includes('reconnecting')",
        "the reconnecting line",
    );
    page.type_line("echo queued-$((1+1))");
    page.shot("reconnecting");
    thread::sleep(Duration::from_millis(1500));
    relay.restore();
    page.wait_line("ticks-done", "the ticks end after the reconnect");
    page.wait_line("queued-2", "input typed while cut");
    page.wait_for(
        "document.getElementById('status').hidden",
        "the reconnecting line goes",
    );
    let text = page.text();
    for i in 1..=30 {
        let line = format!("tick-{i}");
        let count = text.lines().filter(|l| *l == line).count();
        assert_eq!(count, 1, "{line} shown {count} times:\n{text}");
    }
    page.shot("reconnected");

    // 8. exit 3: the notice names code 3, and no reconnect loop follows.
    page.type_line("exit 3");
    page.wait_for(
        "!document.getElementById('status').hidden && document.getElementById('status').textContent",
        "the exit notice",
    );
    let notice = page.eval("document.getElementById('status').textContent");
    assert!(
        notice.as_str().is_some_and(|n| n.contains("code 3")),
        "exit notice: {notice}"
    );
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        page.eval("axs.ended && axs.socket === null"),
        true,
        "no reconnect after the exit"
    );
    page.shot("exited");
}

/// Screenshots go to `target/web-e2e/<binary name>/`.
fn screenshot_dir(bin: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let name = bin.file_name().map(|n| n.to_string_lossy().into_owned());
    target
        .join("web-e2e")
        .join(name.unwrap_or_else(|| "axs".into()))
}

/// Polls `GET /terminals` (with the token) until `ok` holds for the list.
fn wait_list(server: &Server, what: &str, ok: impl Fn(&[Value]) -> bool) {
    let deadline = std::time::Instant::now() + EVENT;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        let response = server.request("GET", "/terminals", &[("X-Axs-Token", TOKEN)], None);
        if let Ok(Value::Array(list)) = response.json() {
            if ok(&list) {
                return;
            }
        }
        last = response.describe();
        thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: GET /terminals never matched; last: {last}");
}

/// The page plus numbered screenshots.
struct Steps<'a> {
    page: &'a mut Page,
    dir: PathBuf,
    n: u32,
}

impl Steps<'_> {
    fn shot(&mut self, name: &str) {
        self.n += 1;
        let path = self.dir.join(format!("{:02}-{name}.png", self.n));
        if let Err(e) = self.page.screenshot(&path) {
            eprintln!("web_page: screenshot {}: {e}", path.display());
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        self.page.eval(expression).or_fail()
    }

    fn text(&mut self) -> String {
        self.eval(BUFFER_TEXT)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn type_line(&mut self, text: &str) {
        self.page.type_line(text).or_fail();
    }

    fn wait_for(&mut self, expression: &str, what: &str) -> Value {
        let result = self.page.wait_for(expression, EVENT, what);
        self.or_fail_with_shot(result, what)
    }

    fn wait_for_long(&mut self, expression: &str, what: &str) -> Value {
        let result = self.page.wait_for(expression, EVENT * 9, what);
        self.or_fail_with_shot(result, what)
    }

    /// Waits until some line of the buffer contains `needle`.
    fn wait_text(&mut self, needle: &str, what: &str) {
        let expression = format!(
            "window.term && {BUFFER_TEXT}.includes({})",
            js_string(needle)
        );
        self.wait_for(&expression, what);
    }

    /// Waits until some line of the buffer is exactly `line` (not the echoed command).
    fn wait_line(&mut self, line: &str, what: &str) {
        let expression = format!(
            "window.term && {BUFFER_TEXT}.split('\\n').includes({})",
            js_string(line)
        );
        self.wait_for(&expression, what);
    }

    fn or_fail_with_shot(&mut self, result: Result<Value, String>, what: &str) -> Value {
        match result {
            Ok(v) => v,
            Err(e) => {
                self.shot(&format!("FAILED-{}", what.replace(' ', "-")));
                let text = self.page.eval(BUFFER_TEXT).unwrap_or_default();
                panic!("{e}\nscreen:\n{}", text.as_str().unwrap_or_default());
            }
        }
    }
}

/// A JavaScript string literal for `s`.
fn js_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Unwraps an option in a case, with a message.
trait OrFailNone<T> {
    fn or_fail_none(self, what: &str) -> T;
}

impl<T> OrFailNone<T> for Option<T> {
    #[track_caller]
    fn or_fail_none(self, what: &str) -> T {
        match self {
            Some(v) => v,
            None => panic!("{what}"),
        }
    }
}
