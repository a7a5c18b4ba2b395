// The axs page: one full-window xterm.js terminal bound to one server session.
//
// - The session's id lives in the address (#/terminals/<id>), so a reload reattaches the
//   same shell: the server replays its scrollback, never a second shell.
// - The page asks for control messages (?control=1) and tracks the stream offset of the
//   next output byte once it is known (a resumed attach, or the "live" message after a
//   replay). After a network drop it resumes with ?since=<offset>, so output made while
//   away appears exactly once. When the offset is unknown (the drop came mid-replay) it
//   reattaches with a full replay onto a reset screen instead: still nothing twice.
// - Keystrokes typed while disconnected are queued and sent in order after the reconnect;
//   beyond MAX_QUEUED_INPUT they are refused with a visible message.
// - A token given as ?token= is used for every request and socket, then removed from the
//   address bar and kept in sessionStorage (this tab only).
// - ?attach=view in the address watches read-only; a view token alone does too. The
//   server's `attached` message says whether this page is a viewer: then a badge says so,
//   keystrokes are not sent (the badge says that too), and the window's size is not sent.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Unicode11Addon } from '@xterm/addon-unicode11';

const TOKEN_KEY = 'axs-token';
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;
const RESIZE_DEBOUNCE_MS = 150;
const MAX_QUEUED_INPUT = 64 * 1024;
const HASH_PREFIX = '#/terminals/';

const token = takeToken();
const statusBar = document.getElementById('status');
const panel = document.getElementById('panel');
const panelMessage = document.getElementById('panel-message');
const terminalList = document.getElementById('terminal-list');
const viewerBadge = document.getElementById('viewer');
const watchOnly = new URL(location.href).searchParams.get('attach') === 'view';

const term = new Terminal({
  allowProposedApi: true, // the unicode11 addon uses the proposed `unicode` API
  cursorBlink: true,
  scrollback: 10000,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
});
const fit = new FitAddon();
term.loadAddon(fit);
term.loadAddon(new WebLinksAddon());
term.loadAddon(new Unicode11Addon());
term.unicode.activeVersion = '11';
term.open(document.getElementById('terminal'));
fit.fit();
term.focus();
window.term = term;

// The one session this page shows, and its socket.
const link = {
  id: null,
  socket: null,
  offset: null, // stream offset of the next output byte, when known
  queue: [], // input typed while disconnected, in order
  queuedBytes: 0,
  backoff: BACKOFF_MIN_MS,
  timer: null,
  ended: false, // exited, gone, taken over or refused: no reconnect
  received: 0, // output bytes received, for tests: with no skip, the stream arrived whole
  skips: 0, // "skipped" notices: the server jumped over output this page was too slow for
  viewer: false, // the server attached this page as a read-only viewer
};
window.axs = link; // for tests and debugging, like window.term

/** Reads ?token=, moves it to sessionStorage and out of the address bar. */
function takeToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given !== null) {
    sessionStorage.setItem(TOKEN_KEY, given);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** A request to our server, with the token. */
function request(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers['X-Axs-Token'] = token;
  return fetch(path, { ...options, headers, cache: 'no-store' });
}

/** The message for a 401: no token, or a wrong one. */
function tokenProblem() {
  return token
    ? 'The server refused the token. Open this page again with the right ?token=.'
    : 'This server needs a token: open this page as /?token=YOUR_TOKEN.';
}

function showStatus(text, action) {
  statusBar.textContent = text;
  if (action) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = action.label;
    button.addEventListener('click', action.run);
    statusBar.append(' ', button);
  }
  statusBar.hidden = false;
}

function hideStatus() {
  statusBar.hidden = true;
  statusBar.textContent = '';
}

/** Ends the link for good (no reconnect) and says why. */
function end(text) {
  link.ended = true;
  clearTimeout(link.timer);
  showStatus(text, { label: 'New terminal', run: newTerminal });
}

function sessionFromHash() {
  if (!location.hash.startsWith(HASH_PREFIX)) return null;
  const id = location.hash.slice(HASH_PREFIX.length);
  return /^[0-9]+$/.test(id) ? id : null;
}

/** Creates a session sized to the window and shows it. */
async function newTerminal() {
  fit.fit();
  let response;
  try {
    response = await request('/terminals', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ cols: term.cols, rows: term.rows }),
    });
  } catch (err) {
    showStatus(`Cannot reach the server (${err.message}).`, { label: 'Retry', run: newTerminal });
    return;
  }
  if (response.status === 401) {
    end(tokenProblem());
    return;
  }
  if (!response.ok) {
    showStatus(`The server could not start a terminal: ${await errorText(response)}`, {
      label: 'Retry',
      run: newTerminal,
    });
    return;
  }
  const id = (await response.text()).trim();
  history.replaceState(null, '', `/${HASH_PREFIX}${id}`);
  show(id);
}

async function errorText(response) {
  const text = await response.text();
  try {
    return JSON.parse(text).error || text;
  } catch {
    return text || `HTTP ${response.status}`;
  }
}

/** Switches the page to session `id`: a fresh screen, a full replay. */
function show(id) {
  closeSocket();
  clearTimeout(link.timer);
  Object.assign(link, { id, offset: null, queue: [], queuedBytes: 0, ended: false });
  link.backoff = BACKOFF_MIN_MS;
  hideStatus();
  panel.hidden = true;
  term.reset();
  connect();
  term.focus();
}

function closeSocket() {
  const socket = link.socket;
  if (socket) {
    link.socket = null;
    socket.onclose = null;
    socket.close();
  }
}

function socketUrl() {
  const url = new URL(`/terminals/${link.id}`, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  url.searchParams.set('control', '1');
  if (link.offset !== null) url.searchParams.set('since', String(link.offset));
  if (watchOnly) url.searchParams.set('attach', 'view');
  if (token) url.searchParams.set('token', token);
  return url.href;
}

function connect() {
  const socket = new WebSocket(socketUrl());
  socket.binaryType = 'arraybuffer';
  link.socket = socket;
  let opened = false;
  socket.onopen = () => {
    opened = true;
    link.backoff = BACKOFF_MIN_MS;
    hideStatus();
    sendSize();
    flushInput();
  };
  socket.onmessage = (event) => {
    if (typeof event.data === 'string') onText(event.data);
    else onOutput(event.data);
  };
  socket.onclose = (event) => {
    link.socket = null;
    if (link.ended) return;
    if (event.code === 4001) {
      end('Another window took this terminal over.');
    } else if (opened) {
      reconnectLater();
    } else {
      whyRefused();
    }
  };
}

function onOutput(buffer) {
  link.received += buffer.byteLength;
  if (link.offset !== null) link.offset += buffer.byteLength;
  term.write(new Uint8Array(buffer));
}

function onText(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return;
  }
  const data = message.data || {};
  switch (message.type) {
    case 'attached':
      link.viewer = Boolean(data.viewer);
      viewerBadge.textContent = 'read-only';
      viewerBadge.hidden = !link.viewer;
      // A full replay repaints from scratch; a resume continues where we are.
      if (data.resumed) link.offset = data.offset;
      else {
        link.offset = null;
        term.reset();
      }
      break;
    case 'live':
      link.offset = data.offset;
      break;
    case 'skipped':
      // The server resets the screen and replays; the offset is known again at "live".
      link.offset = null;
      link.skips += 1;
      break;
    case 'notice':
      console.info('axs:', data.message);
      break;
    case 'exit':
      link.ended = true;
      term.write(`\r\n\x1b[7m ${data.message} \x1b[0m\r\n`);
      end(`${data.message}.`);
      break;
    default:
      break;
  }
}

/** The socket never opened: ask the server whether the session or the token is the problem. */
async function whyRefused() {
  let response;
  try {
    response = await request('/terminals');
  } catch {
    reconnectLater();
    return;
  }
  if (response.status === 401) {
    end(tokenProblem());
    return;
  }
  if (!response.ok) {
    reconnectLater();
    return;
  }
  const sessions = await response.json();
  if (!sessions.some((s) => String(s.id) === link.id)) {
    end(`Terminal ${link.id} is gone (it ended, or the server restarted).`);
    openPanel();
    return;
  }
  reconnectLater();
}

function reconnectLater() {
  const delay = link.backoff;
  link.backoff = Math.min(link.backoff * 2, BACKOFF_MAX_MS);
  showStatus('reconnecting…');
  clearTimeout(link.timer);
  link.timer = setTimeout(() => {
    if (!link.ended && !link.socket) connect();
  }, delay);
}

function send(data) {
  if (link.ended) return;
  if (link.viewer) {
    viewerBadge.textContent = 'read-only: typing is not sent';
    return;
  }
  const socket = link.socket;
  if (socket && socket.readyState === WebSocket.OPEN && link.queue.length === 0) {
    socket.send(data);
    return;
  }
  const size = typeof data === 'string' ? data.length : data.byteLength;
  if (link.queuedBytes + size > MAX_QUEUED_INPUT) {
    showStatus('reconnecting… (input not sent: too much typed while disconnected)');
    return;
  }
  link.queue.push(data);
  link.queuedBytes += size;
}

function flushInput() {
  const socket = link.socket;
  while (link.queue.length > 0 && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(link.queue.shift());
  }
  link.queuedBytes = 0;
}

let resizeTimer = null;
function sendSize() {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (link.id === null || link.ended || link.viewer || watchOnly) return;
    request(`/terminals/${link.id}/resize`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ cols: term.cols, rows: term.rows }),
    }).catch(() => {}); // a failed resize is sent again on reconnect
  }, RESIZE_DEBOUNCE_MS);
}

function describe(session) {
  const size = `${session.cols}×${session.rows}`;
  const clients = `${session.clients} attached`;
  const age = `started ${session.started_secs_ago}s ago`;
  const state = session.exited
    ? session.signal
      ? `ended by ${session.signal}`
      : `exited with code ${session.exit_code}`
    : 'running';
  return `#${session.id} ${size}, ${state}, ${clients}, ${age}`;
}

async function openPanel() {
  panel.hidden = false;
  terminalList.textContent = '';
  panelMessage.textContent = 'Loading…';
  let response;
  try {
    response = await request('/terminals');
  } catch (err) {
    panelMessage.textContent = `Cannot reach the server (${err.message}).`;
    return;
  }
  if (response.status === 401) {
    panelMessage.textContent = tokenProblem();
    return;
  }
  const sessions = response.ok ? await response.json() : [];
  panelMessage.textContent = sessions.length ? 'Attach to a terminal:' : 'No terminals yet.';
  for (const session of sessions) {
    const item = document.createElement('li');
    const anchor = document.createElement('a');
    anchor.href = `/${HASH_PREFIX}${session.id}`;
    anchor.textContent = describe(session);
    if (String(session.id) === link.id) item.append('▶ ');
    item.append(anchor);
    terminalList.append(item);
  }
}

document.getElementById('menu-button').addEventListener('click', () => {
  if (panel.hidden) openPanel();
  else panel.hidden = true;
});
document.getElementById('new-terminal').addEventListener('click', newTerminal);
window.addEventListener('hashchange', () => {
  const id = sessionFromHash();
  if (id !== null && id !== link.id) show(id);
});

let fitFrame = 0;
window.addEventListener('resize', () => {
  cancelAnimationFrame(fitFrame);
  fitFrame = requestAnimationFrame(() => fit.fit());
});
term.onResize(sendSize);
term.onData((data) => send(data));
term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0))));
term.onTitleChange((title) => {
  document.title = title || 'axs';
});

const initial = sessionFromHash();
if (initial !== null) show(initial);
else newTerminal();
