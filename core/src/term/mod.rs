//! The escape-sequence scanner behind replay hygiene: safe cuts, replay filtering and the
//! terminal state a replay must restore.
//!
//! [`TermState`] is a small ECMA-48/DEC parser (Paul Williams' state machine, with the
//! transitions of xterm.js, the terminal every client runs) that tracks two things: where
//! the parser is (ground, inside a sequence, inside a UTF-8 character) and the terminal
//! state a replay must re-establish ([`Modes`]: screen, modes, pen, charsets, scroll region).
//! Bytes >= 0x80 are UTF-8; decoded code points U+0080..U+009F are C1 controls, as in
//! xterm.js, while raw bytes such as 0x9B are never controls.
//!
//! Invariants:
//! - feeding the same bytes gives the same state however they are split into calls;
//! - [`TermState::at_safe_cut`] is true only in ground state outside a UTF-8 character;
//! - a fresh terminal fed [`TermState::restore_sequence`] and then the bytes after a cut
//!   ends in the same [`Modes`] as one fed the whole stream ([`plan_replay`] relies on it);
//! - [`plan_replay`] drops only complete query or side-effect sequences after its cut,
//!   and only those that start at a safe cut (leaving them out cannot change how the bytes
//!   after them parse).
//!
//! Not tracked (a replay cut after them loses them): the cursor position and the position
//! and charset part of a saved cursor (DECSC saves only the pen here), palette and dynamic
//! colours set by OSC 4/10-19, titles, an open OSC 8 hyperlink, kitty keyboard flags,
//! synchronized output (2026) and xterm.js's separate scroll region per screen (one region
//! is tracked, as in xterm). A resize resets xterm.js's scroll region, which no byte shows.

mod modes;
#[cfg(test)]
mod tests;

pub use modes::Modes;
use std::ops::Range;

/// Parser states (Williams' names; a string terminated by ESC counts as complete, as in
/// xterm.js, and the ESC starts the next sequence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    Escape,
    EscInt,
    CsiEntry,
    CsiParam,
    CsiInt,
    CsiIgnore,
    DcsEntry,
    DcsParam,
    DcsInt,
    DcsIgnore,
    DcsPass,
    Osc,
    SosPmApc,
}

/// Marker for "empty parameter" (zero by default, but kept apart for sub-parameters).
const EMPTY: u16 = u16::MAX;
/// At most this many parameters and sub-parameters are kept (as xterm.js).
const MAX_PARAMS: usize = 32;
/// Code standing for any decoded code point >= U+00A0.
const NON_ASCII: u8 = 0xa0;

/// CSI/DCS parameters with sub-parameter marks (`:`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Params {
    vals: [u16; MAX_PARAMS],
    /// Bit `i` set: parameter `i` is a sub-parameter of the one before.
    subs: u32,
    len: u8,
    full: bool,
}

/// Equal lists: the slots past `len` hold leftovers of earlier sequences, which nothing
/// reads (so a fast path may fill them as it likes).
impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.vals[..self.len()] == other.vals[..other.len()]
            && (self.subs, self.len, self.full) == (other.subs, other.len, other.full)
    }
}

impl Eq for Params {}

impl Params {
    /// Parameters of the short SGRs [`Params::short_sgr`] takes (more: the general path).
    const SHORT_SGR_PARAMS: usize = 8;
    /// Digits per parameter it takes (more: the general path, so that no value saturates).
    const SHORT_SGR_DIGITS: u8 = 4;

    /// Reads `body` (what follows `ESC [`) as an SGR in its most common form, parameters
    /// of digits and `;` only, few and short, into this list as the general path would
    /// leave it. Returns the body's length (the final `m` included), or `None` for anything
    /// else; the slots then hold anything, but the general path starts with a
    /// [`Params::clear`], after which only the cleared slot is read.
    #[inline(always)]
    fn short_sgr(&mut self, body: &[u8]) -> Option<usize> {
        let mut count = 0;
        let mut value: u16 = 0;
        let mut digits: u8 = 0;
        for (i, &c) in body.iter().enumerate() {
            match c {
                b'0'..=b'9' if digits < Params::SHORT_SGR_DIGITS => {
                    value = value * 10 + u16::from(c - b'0');
                    digits += 1;
                }
                b';' | b'm' => {
                    *self.vals.get_mut(count)? = if digits > 0 { value } else { EMPTY };
                    count += 1;
                    if c == b'm' {
                        self.len = count as u8;
                        self.subs = 0;
                        self.full = false;
                        return Some(i + 1);
                    }
                    if count == Params::SHORT_SGR_PARAMS {
                        return None;
                    }
                    (value, digits) = (0, 0);
                }
                _ => return None,
            }
        }
        None
    }

    fn clear(&mut self) {
        self.vals[0] = EMPTY;
        self.len = 1;
        self.subs = 0;
        self.full = false;
    }

    fn put(&mut self, c: u8) {
        match c {
            b';' => self.push(false),
            b':' => self.push(true),
            _ if self.full || self.len == 0 => {}
            _ => {
                let v = &mut self.vals[usize::from(self.len) - 1];
                let old = if *v == EMPTY { 0 } else { *v };
                *v = old
                    .saturating_mul(10)
                    .saturating_add(u16::from(c - b'0'))
                    .min(EMPTY - 1);
            }
        }
    }

    /// [`Params::put`] for each leading byte of `bytes` in `0x30..=0x3b` (digits, `:`, `;`,
    /// not `<`): the same values, but a number accumulates in a register and is stored
    /// once, when it ends. Returns how many bytes it took. Starts a fresh parameter, as
    /// after [`Params::clear`] or a separator.
    fn put_run(&mut self, bytes: &[u8]) -> usize {
        let mut value: u16 = 0;
        let mut digits = false;
        let mut i = 0;
        while let Some(&c) = bytes.get(i) {
            match c {
                b'0'..=b'9' => {
                    // `put`'s saturating steps, in one: the result is below 2^16 either way.
                    let next = u32::from(value) * 10 + u32::from(c - b'0');
                    value = next.min(u32::from(EMPTY - 1)) as u16;
                    digits = true;
                }
                b':' | b';' => {
                    self.store_last(value, digits);
                    self.push(c == b':');
                    value = 0;
                    digits = false;
                }
                _ => break,
            }
            i += 1;
        }
        self.store_last(value, digits);
        i
    }

    /// Stores the value of the parameter being read, as `put` would have left it: nothing
    /// without digits (it stays empty) or once the list is full (digits are ignored then).
    fn store_last(&mut self, value: u16, digits: bool) {
        if digits && !self.full {
            if let Some(last) = usize::from(self.len)
                .checked_sub(1)
                .and_then(|k| self.vals.get_mut(k))
            {
                *last = value;
            }
        }
    }

    fn push(&mut self, sub: bool) {
        let len = usize::from(self.len);
        if len >= MAX_PARAMS || self.full {
            self.full = true;
            return;
        }
        self.vals[len] = EMPTY;
        if sub {
            self.subs |= 1 << len;
        }
        self.len += 1;
    }

    /// Number of parameters and sub-parameters.
    fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Parameter `i`, zero when empty or missing.
    fn get(&self, i: usize) -> u16 {
        match self.vals.get(i) {
            Some(&v) if i < self.len() && v != EMPTY => v,
            _ => 0,
        }
    }

    /// How many sub-parameters follow parameter `i` (the run of set bits after bit `i`).
    fn subs_after(&self, i: usize) -> usize {
        let after = u32::try_from(i + 1)
            .ok()
            .and_then(|shift| self.subs.checked_shr(shift))
            .unwrap_or(0);
        (after.trailing_ones() as usize).min(self.len().saturating_sub(i + 1))
    }
}

/// What an OSC is, learned while it streams by (bodies can be large: never buffered).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct OscScan {
    id: u32,
    id_digits: u8,
    phase: OscPhase,
    /// The current field so far: 0 empty, 1 exactly `?`, 2 anything else.
    field: u8,
    /// Some field was exactly `?`.
    query: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum OscPhase {
    /// Reading the numeric identifier.
    #[default]
    Id,
    /// Past `Id;`, watching fields for `?` (colour ids only).
    Fields,
    /// Nothing more to learn.
    Rest,
}

/// OSC identifiers whose `?` fields are colour queries.
fn is_color_osc(id: u32) -> bool {
    matches!(id, 4 | 5 | 10..=19 | 104 | 105 | 110..=119)
}

/// What the replay does with a completed sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    Drop,
    /// `ESC \`: belongs to the string it terminates.
    Terminator,
}

/// Receives sequence boundaries (absolute positions) from the scanner.
trait Events {
    /// A sequence starts at `pos` (its ESC or C1 byte); `clean`: the parser was at a safe
    /// cut just before it, so leaving the sequence out cannot change how later bytes parse.
    fn begin(&mut self, pos: usize, clean: bool);
    /// The current sequence was dispatched; it ends before `end`.
    fn finish(&mut self, end: usize, verdict: Verdict);
    /// A C0 control ran inside a sequence (a terminal executes it there, as in ground).
    #[inline(always)]
    fn execute_inside(&mut self, _c: u8) {}
}

/// [`TermState::advance_text`]'s sink: the controls a sequence runs belong to the text.
struct ControlsInside<'a>(&'a mut Vec<u8>);

impl Events for ControlsInside<'_> {
    fn begin(&mut self, _pos: usize, _clean: bool) {}
    fn finish(&mut self, _end: usize, _verdict: Verdict) {}
    fn execute_inside(&mut self, c: u8) {
        self.0.push(c);
    }
}

/// The hot path's sink: positions are not needed there.
struct NoEvents;

impl Events for NoEvents {
    #[inline(always)]
    fn begin(&mut self, _pos: usize, _clean: bool) {}
    #[inline(always)]
    fn finish(&mut self, _end: usize, _verdict: Verdict) {}
}

/// Terminal state as seen by a parser that has consumed a prefix of the output stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TermState {
    state: State,
    /// The last byte consumed by `advance` was not `\n` (false at the stream's start),
    /// so a replay planned from here knows whether it already starts at a line start.
    mid_line: bool,
    /// Continuation bytes still expected, and the lead byte of the pending character.
    utf8_need: u8,
    utf8_lead: u8,
    /// No character was pending when the current one's lead byte arrived.
    utf8_clean: bool,
    /// Private prefix (`?`, `>`, `=`, `<`) of the current CSI/DCS, 0 if none.
    prefix: u8,
    /// Intermediate bytes, packed (at most two; 0xFFFF when more).
    inter: u16,
    params: Params,
    osc: OscScan,
    /// The current DCS is DECRQSS or XTGETTCAP.
    dcs_query: bool,
    /// SO or SI ran inside the current sequence (it must then stay in a replay).
    shifted: bool,
    modes: Modes,
}

impl TermState {
    /// A parser in ground state with a freshly reset terminal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consume bytes.
    pub fn advance(&mut self, bytes: &[u8]) {
        self.feed(bytes, 0, &mut NoEvents);
        if let Some(&last) = bytes.last() {
            self.mid_line = last != b'\n';
        }
    }

    /// True when a stream cut here is safe: ground state and not inside a UTF-8 character.
    pub fn at_safe_cut(&self) -> bool {
        self.state == State::Ground && self.utf8_need == 0
    }

    /// Append the bytes that bring a freshly reset terminal (as xterm.js starts) into this
    /// state. Nothing for defaults; deterministic order.
    pub fn restore_sequence(&self, out: &mut Vec<u8>) {
        self.modes.restore(out);
    }

    /// The tracked terminal state alone (without parser position).
    pub fn modes(&self) -> &Modes {
        &self.modes
    }

    /// Consume bytes like [`TermState::advance`] and append to `text` the ones the parser
    /// read in ground state: whole characters (printable text and C0/C1 controls that
    /// started no sequence) and bytes that decode to nothing (invalid UTF-8), never a byte of
    /// an escape sequence or of a string (OSC, DCS, SOS, PM, APC) — except the C0 controls
    /// that run inside an escape or CSI sequence, in place. Feed a stream in one call: a
    /// character split across calls is not appended.
    pub fn advance_text(&mut self, bytes: &[u8], text: &mut Vec<u8>) {
        // Where the pending character started, when it started in ground state.
        let mut from = None;
        let mut i = 0;
        while i < bytes.len() {
            if self.at_safe_cut() {
                // A safe cut is ground state: an inert run there is text.
                let run = self.inert_prefix(&bytes[i..]);
                text.extend_from_slice(&bytes[i..i + run]);
                i += run;
                from = Some(i);
            }
            let Some(&b) = bytes.get(i) else { break };
            self.byte(b, i, &mut ControlsInside(text));
            i += 1;
            if self.at_safe_cut() {
                if let Some(start) = from.take() {
                    text.extend_from_slice(&bytes[start..i]);
                }
            } else if self.state != State::Ground {
                // The character started a sequence (ESC, a C1 control).
                from = None;
            }
        }
        if let Some(&last) = bytes.last() {
            self.mid_line = last != b'\n';
        }
    }

    /// How many leading bytes are text that changes nothing in the current state: printable
    /// ASCII and whole UTF-8 characters (but not U+0080..U+009F, which are C1 controls).
    fn inert_prefix(&self, bytes: &[u8]) -> usize {
        let utf8_inert = match self.state {
            _ if self.utf8_need != 0 => return 0,
            // Checked first: ground state is where text runs are.
            State::Ground => true,
            State::DcsPass | State::DcsIgnore => true,
            State::Osc if self.osc.phase == OscPhase::Rest => true,
            // xterm.js leaves an APC string on non-ASCII text.
            State::SosPmApc => false,
            _ => return 0,
        };
        let ascii = printable_ascii_prefix(bytes);
        match bytes.get(ascii) {
            Some(&b) if utf8_inert && b >= 0x80 => {}
            _ => return ascii,
        }
        ascii + inert_utf8_prefix(&bytes[ascii..])
    }

    /// The scanner; `base` is the absolute position of `bytes[0]` for `ev`.
    fn feed<E: Events>(&mut self, bytes: &[u8], base: usize, ev: &mut E) {
        let mut i = 0;
        while i < bytes.len() {
            // Text runs: a scan without state dispatch (printable ASCII in ground state
            // first, the common case, without the general look at the state).
            if self.at_safe_cut() {
                i += self.ground_run(&bytes[i..], base + i, ev);
            }
            if bytes
                .get(i)
                .is_some_and(|&b| b >= 0x80 || !self.at_safe_cut())
            {
                i += self.inert_prefix(&bytes[i..]);
            }
            let Some(&b) = bytes.get(i) else { break };
            if b == 0x1b {
                i += self.escape_run(&bytes[i..], base + i, ev);
            } else {
                self.byte(b, base + i, ev);
                i += 1;
            }
        }
    }

    /// From a safe cut: printable ASCII and CSI sequences for as long as each sequence
    /// ends back at a safe cut, the usual shape of colourful output (`ESC [ 31 m word
    /// ESC [ 0 m`), without going round [`TermState::feed`]'s general loop for each piece.
    /// Stops before any other byte, or inside a CSI the fast path left unfinished.
    /// Returns how many bytes it consumed.
    #[inline]
    fn ground_run<E: Events>(&mut self, bytes: &[u8], base: usize, ev: &mut E) -> usize {
        let mut i = 0;
        loop {
            i += printable_ascii_prefix(&bytes[i..]);
            match bytes.get(i) {
                Some(0x1b) if bytes.get(i + 1) == Some(&b'[') => {
                    if let Some(len) = self.params.short_sgr(&bytes[i + 2..]) {
                        self.short_sgr(base + i, 2 + len, ev);
                        i += 2 + len;
                        continue;
                    }
                    // What `byte` does for an ESC at a safe cut, then `reenter` for the `[`.
                    self.enter(State::CsiEntry, base + i, true, ev);
                    i += self.csi_run(&bytes[i..], base + i, ev);
                    if self.state != State::Ground {
                        return i;
                    }
                }
                // Line ends, tabs, bells, DEL: in ground state they change nothing tracked
                // (unlike SO and SI, which shift charsets, and ESC).
                Some(&c) if is_inert_in_ground(c) => i += 1,
                _ => return i,
            }
        }
    }

    /// The rest of what the general path does for an SGR of `len` bytes at `pos`, from a
    /// safe cut, whose parameters [`Params::short_sgr`] has read.
    #[inline(always)]
    fn short_sgr<E: Events>(&mut self, pos: usize, len: usize, ev: &mut E) {
        self.enter_keeping_params(State::CsiEntry, pos, true, ev);
        self.modes.sgr_without_subs(&self.params);
        self.state = State::Ground;
        ev.finish(pos + len, Verdict::Keep);
    }

    /// The fast path for `ESC [ ...` (SGR is most of colourful output): takes `bytes`, which
    /// start with an ESC at `pos`, through the CSI states in a tight loop instead of byte by
    /// byte through [`TermState::byte`]. Every step is the general path's own transition, in
    /// the same order, so the state after it is the same; a byte the loop does not handle
    /// (a control, DEL, non-ASCII, a byte that makes the CSI ignored) or the end of `bytes`
    /// stops it in the state reached so far, and the general path goes on from there.
    /// Returns how many bytes it consumed (at least the ESC).
    fn escape_run<E: Events>(&mut self, bytes: &[u8], pos: usize, ev: &mut E) -> usize {
        if self.at_safe_cut() && bytes.get(1) == Some(&b'[') {
            // What `byte` does for an ESC at a safe cut (ground state has no string to
            // finish), then `reenter` for the `[` (its clearing is already done).
            self.enter(State::CsiEntry, pos, true, ev);
        } else {
            // The ESC itself: whatever the state, it begins a sequence in `Escape`.
            self.byte(0x1b, pos, ev);
            if bytes.get(1) != Some(&b'[') {
                return 1;
            }
            self.reenter(State::CsiEntry);
        }
        self.csi_run(bytes, pos, ev)
    }

    /// [`TermState::escape_run`] after the `ESC [` (at `bytes[..2]`, the ESC at `pos`):
    /// the CSI's prefix, parameters, intermediates and final byte in a tight loop.
    #[inline(always)]
    fn csi_run<E: Events>(&mut self, bytes: &[u8], pos: usize, ev: &mut E) -> usize {
        let mut i = 2;
        if let Some(&c @ 0x3c..=0x3f) = bytes.get(i) {
            self.prefix = c;
            self.state = State::CsiParam;
            i += 1;
        }
        let run = self.params.put_run(&bytes[i..]);
        if run > 0 {
            self.state = State::CsiParam;
            i += run;
        }
        while let Some(&c @ 0x20..=0x2f) = bytes.get(i) {
            self.collect(c);
            self.state = State::CsiInt;
            i += 1;
        }
        match bytes.get(i) {
            Some(&c @ 0x40..=0x7e) => {
                self.state = State::Ground;
                let verdict = if (self.prefix, self.inter, c) == (0, 0, b'm') {
                    // SGR, most of colourful output: straight to the pen, no query table
                    // (what `csi_dispatch` does for it, without the call).
                    self.modes.sgr(&self.params);
                    Verdict::Keep
                } else {
                    self.csi_dispatch(c)
                };
                ev.finish(pos + i + 1, verdict);
                i + 1
            }
            _ => i,
        }
    }

    /// One byte: UTF-8 decoding first, then the state machine on the decoded code.
    fn byte<E: Events>(&mut self, b: u8, pos: usize, ev: &mut E) {
        if b < 0x80 {
            // An ASCII byte ends any unfinished character (which is dropped).
            let clean = self.utf8_need == 0;
            self.utf8_done();
            self.code(b, pos, pos + 1, clean, ev);
        } else if b < 0xc0 {
            if self.utf8_need == 0 {
                return; // stray continuation byte: dropped, as xterm.js does
            }
            self.utf8_need -= 1;
            if self.utf8_need == 0 {
                let (lead, clean) = (self.utf8_lead, self.utf8_clean);
                self.utf8_done();
                match lead {
                    // U+0080..U+009F: a C1 control, two bytes long.
                    0xc2 if b < 0xa0 => self.code(b, pos.saturating_sub(1), pos + 1, clean, ev),
                    // Overlong encodings decode to nothing.
                    0xc0 | 0xc1 => {}
                    _ => self.code(NON_ASCII, pos, pos + 1, false, ev),
                }
            }
        } else {
            self.utf8_clean = self.utf8_need == 0;
            self.utf8_need = match b {
                0xc0..=0xdf => 1,
                0xe0..=0xef => 2,
                0xf0..=0xf7 => 3,
                _ => 0,
            };
            self.utf8_lead = b;
            if self.utf8_need == 0 {
                self.utf8_done();
            }
        }
    }

    /// No character pending; the bookkeeping fields take one canonical value, so the
    /// text fast path (which skips them) leaves the same state as byte-by-byte decoding.
    fn utf8_done(&mut self) {
        self.utf8_need = 0;
        self.utf8_lead = 0;
        self.utf8_clean = false;
    }

    /// Starts a new sequence at `start` in `state`; `clean` as in [`Events::begin`].
    fn enter<E: Events>(&mut self, state: State, start: usize, clean: bool, ev: &mut E) {
        self.params.clear();
        self.enter_keeping_params(state, start, clean, ev);
    }

    /// [`TermState::enter`] but for clearing the parameters (already read).
    #[inline(always)]
    fn enter_keeping_params<E: Events>(
        &mut self,
        state: State,
        start: usize,
        clean: bool,
        ev: &mut E,
    ) {
        self.state = state;
        self.shifted = false;
        self.prefix = 0;
        self.inter = 0;
        self.osc = OscScan::default();
        self.dcs_query = false;
        ev.begin(start, clean);
    }

    /// Ends a string sequence that a terminator (ESC or ST) completes at `end`.
    fn finish_string<E: Events>(&mut self, end: usize, ev: &mut E) {
        match self.state {
            State::Osc => ev.finish(end, self.osc_verdict()),
            State::DcsPass if self.dcs_query && !self.shifted => ev.finish(end, Verdict::Drop),
            State::DcsPass | State::DcsIgnore | State::SosPmApc => ev.finish(end, Verdict::Keep),
            _ => {}
        }
    }

    /// The state machine. `c` is ASCII, a C1 control (0x80..=0x9F) or [`NON_ASCII`];
    /// the code spans bytes `start..end`; `clean`: no character was pending before it.
    fn code<E: Events>(&mut self, c: u8, start: usize, end: usize, clean: bool, ev: &mut E) {
        let clean = clean && self.state == State::Ground;
        // Transitions from anywhere.
        match c {
            0x18 | 0x1a => {
                // CAN, SUB: abort without dispatch.
                self.state = State::Ground;
                return;
            }
            0x1b => {
                self.finish_string(start, ev);
                self.enter(State::Escape, start, clean, ev);
                return;
            }
            0x9c => {
                self.finish_string(end, ev);
                self.state = State::Ground;
                return;
            }
            0x90 => return self.enter(State::DcsEntry, start, clean, ev),
            0x9b => return self.enter(State::CsiEntry, start, clean, ev),
            0x9d => return self.enter(State::Osc, start, clean, ev),
            0x98 | 0x9e | 0x9f => return self.enter(State::SosPmApc, start, clean, ev),
            0x80..=0x9f => {
                self.state = State::Ground;
                return;
            }
            _ => {}
        }
        match self.state {
            State::Ground => {
                if c < 0x20 {
                    self.execute(c, ev);
                }
            }
            State::Escape => match c {
                0x00..=0x1f => self.execute(c, ev),
                0x20..=0x2f => {
                    self.collect(c);
                    self.state = State::EscInt;
                }
                b'[' => self.reenter(State::CsiEntry),
                b']' => self.reenter(State::Osc),
                b'P' => self.reenter(State::DcsEntry),
                b'X' | b'^' | b'_' => self.state = State::SosPmApc,
                0x30..=0x7e => self.esc_dispatch(c, end, ev),
                0x7f => {}
                _ => self.state = State::Ground,
            },
            State::EscInt => match c {
                0x00..=0x1f => self.execute(c, ev),
                0x20..=0x2f => self.collect(c),
                0x30..=0x7e => self.esc_dispatch(c, end, ev),
                0x7f => {}
                _ => self.state = State::Ground,
            },
            State::CsiEntry | State::CsiParam | State::CsiInt => self.csi(c, end, ev),
            State::CsiIgnore => match c {
                0x00..=0x1f => self.execute(c, ev),
                0x40..=0x7e => {
                    self.state = State::Ground;
                    ev.finish(end, Verdict::Keep);
                }
                _ => {}
            },
            State::DcsEntry | State::DcsParam | State::DcsInt => self.dcs_head(c),
            State::DcsIgnore | State::DcsPass => {}
            State::Osc => match c {
                0x07 => {
                    self.state = State::Ground;
                    ev.finish(end, self.osc_verdict());
                }
                0x00..=0x1f => {}
                _ => self.osc_put(c),
            },
            State::SosPmApc => {
                if c == NON_ASCII {
                    // xterm.js leaves the string on non-ASCII text (its table's default).
                    self.state = State::Ground;
                }
            }
        }
    }

    /// `ESC [`, `ESC ]`, `ESC P`: the sequence started at the ESC, so no new begin.
    fn reenter(&mut self, state: State) {
        self.state = state;
        self.params.clear();
    }

    /// A C0 control runs (in ground state or inside a sequence, which goes on).
    fn execute<E: Events>(&mut self, c: u8, ev: &mut E) {
        if self.state != State::Ground {
            ev.execute_inside(c);
        }
        self.track_shift(c);
    }

    /// C0 controls that change tracked state (others matter only to the screen).
    fn track_shift(&mut self, c: u8) {
        let g = match c {
            0x0e => 1,
            0x0f => 0,
            _ => return,
        };
        self.modes.shift(g);
        self.shifted |= self.state != State::Ground;
    }

    fn collect(&mut self, c: u8) {
        self.inter = match self.inter {
            0 => u16::from(c),
            i if i < 0x100 => (i << 8) | u16::from(c),
            _ => 0xffff,
        };
    }

    /// CSI entry, parameter and intermediate states (they share most transitions).
    fn csi<E: Events>(&mut self, c: u8, end: usize, ev: &mut E) {
        let entry = self.state == State::CsiEntry;
        let int = self.state == State::CsiInt;
        match c {
            0x00..=0x1f => self.execute(c, ev),
            0x20..=0x2f => {
                self.collect(c);
                self.state = State::CsiInt;
            }
            0x30..=0x3b if !int => {
                self.params.put(c);
                self.state = State::CsiParam;
            }
            0x3c..=0x3f if entry => {
                self.prefix = c;
                self.state = State::CsiParam;
            }
            0x30..=0x3f => self.state = State::CsiIgnore,
            0x40..=0x7e => {
                self.state = State::Ground;
                let verdict = self.csi_dispatch(c);
                ev.finish(end, verdict);
            }
            0x7f => {}
            _ => self.state = State::Ground,
        }
    }

    /// DCS entry, parameter and intermediate states.
    fn dcs_head(&mut self, c: u8) {
        let entry = self.state == State::DcsEntry;
        let int = self.state == State::DcsInt;
        match c {
            0x20..=0x2f => {
                self.collect(c);
                self.state = State::DcsInt;
            }
            0x30..=0x3b if !int => {
                self.params.put(c);
                self.state = State::DcsParam;
            }
            0x3c..=0x3f if entry => {
                self.prefix = c;
                self.state = State::DcsParam;
            }
            0x30..=0x3f => self.state = State::DcsIgnore,
            0x40..=0x7e => {
                // DECRQSS (`DCS $ q`) and XTGETTCAP (`DCS + q`) ask for an answer.
                self.dcs_query = c == b'q'
                    && self.prefix == 0
                    && (self.inter == u16::from(b'$') || self.inter == u16::from(b'+'));
                self.state = State::DcsPass;
            }
            NON_ASCII => self.state = State::Ground,
            _ => {}
        }
    }

    fn esc_dispatch<E: Events>(&mut self, c: u8, end: usize, ev: &mut E) {
        self.state = State::Ground;
        let mut verdict = Verdict::Keep;
        match self.inter {
            0 => match c {
                b'c' => self.modes.full_reset(),
                b'=' => self.modes.keypad(true),
                b'>' => self.modes.keypad(false),
                b'n' => self.modes.shift(2),
                b'o' => self.modes.shift(3),
                b'7' => self.modes.save_cursor(),
                b'8' => self.modes.restore_cursor(),
                // The ST of a dropped string goes with it, unless an SO or SI ran inside
                // it (`ESC SO \`, found by the fuzz target term_replay): that must stay.
                b'\\' if !self.shifted => verdict = Verdict::Terminator,
                _ => {}
            },
            i if i < 0x100 => self.modes.designate(i as u8, c),
            _ => {}
        }
        ev.finish(end, verdict);
    }

    /// Applies a CSI sequence to the tracked state and says whether a replay drops it.
    fn csi_dispatch(&mut self, fin: u8) -> Verdict {
        let (prefix, inter) = (self.prefix, self.inter);
        if (prefix, inter, fin) == (0, 0, b'm') {
            // SGR, most of colourful output: no query to look for.
            self.modes.sgr(&self.params);
            return Verdict::Keep;
        }
        let p = &self.params;
        let query = match (prefix, inter, fin) {
            // Device attributes (primary, secondary, tertiary).
            (0 | b'>' | b'=', 0, b'c') => true,
            // DSR / CPR.
            (0 | b'?', 0, b'n') => true,
            // DECRQM.
            (0 | b'?', 0x24, b'p') => true,
            // XTVERSION.
            (b'>', 0, b'q') => true,
            // Window reports.
            (0, 0, b't') => (11..=21).contains(&p.get(0)),
            // Kitty keyboard flags query.
            (b'?', 0, b'u') => true,
            // XTSMGRAPHICS: every form is answered with a report.
            (b'?', 0, b'S') => true,
            _ => false,
        };
        if query && !self.shifted {
            return Verdict::Drop;
        }
        match (prefix, inter, fin) {
            (b'?', 0, b'h' | b'l') => {
                for i in 0..p.len() {
                    self.modes.dec_mode(p.get(i), fin == b'h');
                }
            }
            (0, 0, b'h' | b'l') => {
                for i in 0..p.len() {
                    self.modes.ansi_mode(p.get(i), fin == b'h');
                }
            }
            (0, 0, b'm') => self.modes.sgr(p),
            (0, 0, b'r') => self.modes.scroll_region(p),
            (0, 0, b's') => self.modes.save_cursor(),
            (0, 0, b'u') => self.modes.restore_cursor(),
            (0, 0x21, b'p') => self.modes.soft_reset(),
            (0, 0x20, b'q') => self.modes.cursor_style(p.get(0)),
            _ => {}
        }
        Verdict::Keep
    }

    fn osc_put(&mut self, c: u8) {
        let osc = &mut self.osc;
        match osc.phase {
            OscPhase::Id => match c {
                b'0'..=b'9' => {
                    osc.id = (osc.id * 10 + u32::from(c - b'0')).min(1_000_000);
                    osc.id_digits = osc.id_digits.saturating_add(1);
                }
                b';' if osc.id_digits > 0 => {
                    osc.phase = if is_color_osc(osc.id) {
                        OscPhase::Fields
                    } else {
                        OscPhase::Rest
                    };
                }
                _ => {
                    // Not a numbered OSC: nothing a replay must leave out.
                    osc.id_digits = 0;
                    osc.phase = OscPhase::Rest;
                }
            },
            OscPhase::Fields => match c {
                b';' => {
                    osc.query |= osc.field == 1;
                    osc.field = 0;
                }
                b'?' if osc.field == 0 => osc.field = 1,
                _ => osc.field = 2,
            },
            OscPhase::Rest => {}
        }
    }

    fn osc_verdict(&self) -> Verdict {
        // An SO or SI ran between the ESC and the `]` (`ESC SO ] 52 ...`, found by the fuzz
        // target term_replay): leaving the sequence out would lose the shift, as for a CSI.
        if self.shifted {
            return Verdict::Keep;
        }
        let osc = &self.osc;
        let side_effect = osc.id_digits > 0 && matches!(osc.id, 52 | 7777);
        let color_query = osc.phase == OscPhase::Fields && (osc.query || osc.field == 1);
        if side_effect || color_query {
            Verdict::Drop
        } else {
            Verdict::Keep
        }
    }
}

/// How many leading bytes are whole UTF-8 characters up to the first control, DEL or
/// 0xC2 (the lead of U+0080..U+00BF, among them the C1 controls): a run the standard
/// validator accepts decodes to whole characters >= U+00A0 there.
///
/// It works in steps of [`INERT_BLOCK`] bytes, validating each step before searching it
/// for a stop, so it looks at most one step past what it returns, and at nothing past an
/// invalid byte. Searching the whole rest for the first stop before validating cost the
/// rest's length each time an invalid byte ended the run early, which made text with
/// many invalid bytes and no control (a long Latin-1 line) quadratic in the length of the
/// read: the fuzzer's "hangs".
fn inert_utf8_prefix(rest: &[u8]) -> usize {
    let mut done = 0;
    loop {
        let block = &rest[done..rest.len().min(done + INERT_BLOCK)];
        let (valid, cut_character) = match std::str::from_utf8(block) {
            Ok(_) => (block.len(), false),
            Err(e) => (e.valid_up_to(), e.error_len().is_none()),
        };
        if let Some(stop) = block[..valid]
            .iter()
            .position(|&b| b < 0x20 || b == 0x7f || b == 0xc2)
        {
            return done + stop;
        }
        done += valid;
        // Only a character cut by the step's end (not by the end of the bytes) goes on in
        // the next step; a character is at most 4 bytes, so this step made progress.
        let cut_by_step = cut_character && block.len() == INERT_BLOCK;
        if done == rest.len() || (valid < block.len() && !cut_by_step) {
            return done;
        }
    }
}

/// Bytes [`inert_utf8_prefix`] looks at per step: small, so a run an invalid byte ends
/// early costs little, and large enough that whole lines of text take few steps.
const INERT_BLOCK: usize = 64;

/// ASCII controls (and DEL) that leave the parser in ground state with nothing changed.
fn is_inert_in_ground(c: u8) -> bool {
    (c < 0x20 && !matches!(c, 0x0e | 0x0f | 0x1b)) || c == 0x7f
}

/// The length of the leading run of printable ASCII (0x20..=0x7E), found eight bytes at a
/// time: text runs are most of any output, and a byte-at-a-time search costs a compare and a
/// branch per byte.
fn printable_ascii_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*word);
        // Per byte, the high bit is set for bytes below 0x20 (the subtraction borrows) and
        // for bytes from 0x7F up. A borrow or carry crosses into the next byte only out of a
        // byte that is itself flagged, so the lowest flag is exact.
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let high = (x.wrapping_add(ONES) | x) & HIGH;
        let stop = control | high;
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let tail = &bytes[i..];
    i + tail
        .iter()
        .position(|b| !(0x20..0x7f).contains(b))
        .unwrap_or(tail.len())
}

/// What to send a client that replays `chunks` (the ring's bytes, oldest first, as one
/// logical byte string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    /// Offset (relative to the start of `chunks`) of the safe cut where the replay starts.
    pub cut: usize,
    /// State-restoring bytes to send before the bytes at `cut`.
    pub prefix: Vec<u8>,
    /// Sorted, disjoint relative ranges, all >= cut, of whole sequences to leave out of the
    /// replay.
    pub drops: Vec<Range<usize>>,
}

/// Collects the ranges of dropped sequences.
#[derive(Default)]
struct DropCollector {
    /// Start of the current sequence and whether it may be left out.
    start: Option<(usize, bool)>,
    drops: Vec<Range<usize>>,
}

impl Events for DropCollector {
    fn begin(&mut self, pos: usize, clean: bool) {
        self.start = Some((pos, clean));
    }

    fn finish(&mut self, end: usize, verdict: Verdict) {
        // No start: the sequence began before the chunks; it is before any cut anyway.
        let Some((start, clean)) = self.start.take() else {
            return;
        };
        match verdict {
            Verdict::Keep => {}
            Verdict::Drop if clean => self.drops.push(start..end),
            Verdict::Drop => {}
            // Only an ESC that ended a (dropped) string: a bare `ESC \` after a dropped
            // query in ground state is a sequence of its own.
            Verdict::Terminator if !clean => {
                if let Some(last) = self.drops.last_mut().filter(|d| d.end == start) {
                    last.end = end;
                }
            }
            Verdict::Terminator => {}
        }
    }
}

/// Like [`plan_replay`], but leaving out at most `max_drops` sequences: when the window
/// holds more (a program that floods its terminal with queries), the replay starts after
/// the excess ones. It repaints the same screen, and a client's list of ranges to leave
/// out stays small whatever the output was.
pub fn plan_replay_bounded(
    start: &TermState,
    chunks: &[&[u8]],
    line_window: usize,
    max_drops: usize,
) -> ReplayPlan {
    let plan = plan_replay(start, chunks, line_window);
    if plan.drops.len() <= max_drops {
        return plan;
    }
    // Right after a whole dropped sequence the parser is in ground state: a safe start.
    let from = plan.drops[plan.drops.len() - max_drops - 1].end;
    let mut state = start.clone();
    let mut rest: Vec<&[u8]> = Vec::with_capacity(chunks.len());
    let mut pos = 0;
    for chunk in chunks {
        let split = from.saturating_sub(pos).min(chunk.len());
        state.advance(&chunk[..split]);
        rest.push(&chunk[split..]);
        pos += chunk.len();
    }
    let mut plan = plan_replay(&state, &rest, line_window);
    plan.cut += from;
    for drop in &mut plan.drops {
        drop.start += from;
        drop.end += from;
    }
    plan
}

/// `start` is the state after everything before `chunks[0]`; `line_window`: how far past the
/// first safe cut to look for a line start (the position right after a '\n' that is also a
/// safe cut) to prefer as the cut.
pub fn plan_replay(start: &TermState, chunks: &[&[u8]], line_window: usize) -> ReplayPlan {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut st = start.clone();
    let mut ev = DropCollector::default();
    let mut bytes = chunks.iter().flat_map(|c| c.iter().copied());
    let mut pos = 0;
    // The stream's start, or just after a newline, is a line start already.
    let mut prev = (!start.mid_line).then_some(b'\n');
    // The first safe position; byte by byte, but only while inside a sequence.
    while !st.at_safe_cut() {
        let Some(b) = bytes.next() else {
            return plan_at(&st, total, Vec::new());
        };
        st.feed(&[b], pos, &mut ev);
        prev = Some(b);
        pos += 1;
    }
    let first = pos;
    let mut cut = (first, st.clone());
    // Prefer a line start within the window (the first safe position may be one already).
    if prev != Some(b'\n') {
        while pos - first < line_window {
            let Some(b) = bytes.next() else { break };
            st.feed(&[b], pos, &mut ev);
            pos += 1;
            if b == b'\n' && st.at_safe_cut() {
                cut = (pos, st.clone());
                break;
            }
        }
    }
    feed_from(&mut st, chunks, pos, &mut ev);
    let drops = ev.drops.into_iter().filter(|d| d.start >= cut.0).collect();
    plan_at(&cut.1, cut.0, drops)
}

fn plan_at(state: &TermState, cut: usize, drops: Vec<Range<usize>>) -> ReplayPlan {
    let mut prefix = Vec::new();
    state.restore_sequence(&mut prefix);
    ReplayPlan { cut, prefix, drops }
}

/// Feeds the logical byte string `chunks` from offset `from` on.
fn feed_from<E: Events>(st: &mut TermState, chunks: &[&[u8]], from: usize, ev: &mut E) {
    let mut base = 0;
    for chunk in chunks {
        let end = base + chunk.len();
        if end > from {
            let skip = from.saturating_sub(base);
            st.feed(&chunk[skip..], base + skip, ev);
        }
        base = end;
    }
}

/// The bytes a replay sends: `plan.prefix`, then `chunks` from `plan.cut` without
/// `plan.drops`.
pub fn apply_plan(chunks: &[&[u8]], plan: &ReplayPlan) -> Vec<u8> {
    let mut out = plan.prefix.clone();
    let mut from = plan.cut;
    for drop in &plan.drops {
        copy_range(chunks, from..drop.start.max(from), &mut out);
        from = from.max(drop.end);
    }
    copy_range(chunks, from..usize::MAX, &mut out);
    out
}

/// Appends the bytes of the logical string `chunks` in `range` (clipped to its length).
fn copy_range(chunks: &[&[u8]], range: Range<usize>, out: &mut Vec<u8>) {
    let mut base = 0;
    for chunk in chunks {
        let end = base + chunk.len();
        let (a, b) = (range.start.max(base), range.end.min(end));
        if a < b {
            out.extend_from_slice(&chunk[a - base..b - base]);
        }
        base = end;
    }
}
