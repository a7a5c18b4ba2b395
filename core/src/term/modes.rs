//! The tracked terminal state (modes, pen, charsets, scroll region) and the bytes that restore it.
//!
//! Semantics follow xterm.js, the terminal every client runs: a reset of any mouse protocol
//! mode turns mouse reporting off, `1049` saves the pen on the normal screen and restores it
//! when leaving, soft reset (`DECSTR`) leaves mouse, screen and encoding alone.

use super::Params;

/// Attribute bits of the pen.
const BOLD: u16 = 1;
const DIM: u16 = 1 << 1;
const ITALIC: u16 = 1 << 2;
const BLINK: u16 = 1 << 3;
const INVERSE: u16 = 1 << 4;
const INVISIBLE: u16 = 1 << 5;
const STRIKE: u16 = 1 << 6;
const OVERLINE: u16 = 1 << 7;

/// SGR numbers of the attribute bits, in emission order.
const ATTR_SGR: [(u16, u8); 8] = [
    (BOLD, 1),
    (DIM, 2),
    (ITALIC, 3),
    (BLINK, 5),
    (INVERSE, 7),
    (INVISIBLE, 8),
    (STRIKE, 9),
    (OVERLINE, 53),
];

/// A colour as the program chose it (xterm.js keeps 16-colour and 256-colour forms apart:
/// bold brightens only the former).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Color {
    #[default]
    Default,
    /// 0..=15 via SGR 30-37/90-97 (40-47/100-107).
    Ansi(u8),
    /// `38;5;n`.
    Indexed(u8),
    /// `38;2;r;g;b`.
    Rgb(u8, u8, u8),
}

/// The SGR pen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pen {
    attrs: u16,
    /// 0 none, 1 single, 2 double, 3 curly, 4 dotted, 5 dashed.
    underline: u8,
    fg: Color,
    bg: Color,
    ul_color: Color,
}

impl Pen {
    /// One SGR parameter that takes no others with it (all but 38, 48, 58 and `4:n`).
    #[inline(always)]
    fn simple_sgr(&mut self, p: u16) {
        match p {
            0 => *self = Pen::default(),
            1 => self.attrs |= BOLD,
            2 => self.attrs |= DIM,
            3 => self.attrs |= ITALIC,
            4 => self.underline = 1,
            5 => self.attrs |= BLINK,
            7 => self.attrs |= INVERSE,
            8 => self.attrs |= INVISIBLE,
            9 => self.attrs |= STRIKE,
            21 => self.underline = 2,
            22 => self.attrs &= !(BOLD | DIM),
            23 => self.attrs &= !ITALIC,
            24 => self.underline = 0,
            25 => self.attrs &= !BLINK,
            27 => self.attrs &= !INVERSE,
            28 => self.attrs &= !INVISIBLE,
            29 => self.attrs &= !STRIKE,
            53 => self.attrs |= OVERLINE,
            55 => self.attrs &= !OVERLINE,
            39 => self.fg = Color::Default,
            49 => self.bg = Color::Default,
            59 => self.ul_color = Color::Default,
            p @ 30..=37 => self.fg = ansi(p - 30),
            p @ 90..=97 => self.fg = ansi(p - 90 + 8),
            p @ 40..=47 => self.bg = ansi(p - 40),
            p @ 100..=107 => self.bg = ansi(p - 100 + 8),
            _ => {}
        }
    }

    /// An extended colour (38 fg, 48 bg, 58 underline) at parameter `i` with `subs`
    /// sub-parameters: sets it if it is valid, returns the index after what it used. Out
    /// of line: the scanner's hot path inlines SGR but for this.
    #[inline(never)]
    fn extended_sgr(&mut self, p: u16, params: &Params, i: usize, subs: usize) -> usize {
        let (color, used) = extended_color(params, i, subs);
        if let Some(c) = color {
            match p {
                38 => self.fg = c,
                48 => self.bg = c,
                _ => self.ul_color = c,
            }
        }
        used.max(i + 1)
    }
}

/// Mouse reporting protocol (one at a time, as in xterm.js).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mouse {
    #[default]
    Off,
    X10,
    Vt200,
    Drag,
    Any,
}

/// Mouse report encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum MouseEncoding {
    #[default]
    Default,
    Utf8,
    Sgr,
    Urxvt,
    SgrPixels,
}

/// Boolean modes, as bits, with their DEC private mode numbers.
const CKM: u16 = 1; // ?1 application cursor keys
const ORIGIN: u16 = 1 << 1; // ?6
const NO_WRAP: u16 = 1 << 2; // ?7 reset (auto-wrap is on by default)
const HIDDEN: u16 = 1 << 3; // ?25 reset (cursor visible by default)
const REVERSE_WRAP: u16 = 1 << 4; // ?45
const FOCUS: u16 = 1 << 5; // ?1004
const PASTE: u16 = 1 << 6; // ?2004 bracketed paste
const KEYPAD: u16 = 1 << 7; // DECKPAM / ?66
const INSERT: u16 = 1 << 8; // ANSI 4 (IRM)
const NEWLINE: u16 = 1 << 9; // ANSI 20 (LNM)

/// Flags a soft reset (DECSTR) clears, as xterm.js does.
const SOFT_RESET_FLAGS: u16 =
    CKM | ORIGIN | NO_WRAP | HIDDEN | REVERSE_WRAP | FOCUS | PASTE | KEYPAD | INSERT | NEWLINE;

/// The charsets xterm.js knows by final byte; others designate US ASCII.
const KNOWN_CHARSETS: &[u8] = b"0AB4C5RQKYE6ZH7=`";

/// The terminal state a replay must re-establish: everything but the screen's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modes {
    flags: u16,
    alt_screen: bool,
    mouse: Mouse,
    encoding: MouseEncoding,
    /// DECSCUSR style, `None` until a program sets one.
    cursor_style: Option<u8>,
    /// DECSTBM as (top, bottom); bottom 0 means "last row". (1, 0) is the full screen.
    region: (u16, u16),
    /// G0..G3 designations (final bytes) and the one invoked into GL.
    charsets: [u8; 4],
    gl: u8,
    pen: Pen,
    /// Pens saved by DECSC/1048/1049 on the normal and the alternate screen.
    saved: [Pen; 2],
}

impl Default for Modes {
    fn default() -> Self {
        Modes {
            flags: 0,
            alt_screen: false,
            mouse: Mouse::Off,
            encoding: MouseEncoding::Default,
            cursor_style: None,
            region: (1, 0),
            charsets: [b'B'; 4],
            gl: 0,
            pen: Pen::default(),
            saved: [Pen::default(); 2],
        }
    }
}

impl Modes {
    fn set_flag(&mut self, flag: u16, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    fn screen(&self) -> usize {
        usize::from(self.alt_screen)
    }

    fn enter_alt(&mut self) {
        if !self.alt_screen {
            self.alt_screen = true;
            // A fresh alternate screen has nothing saved (and a replay cannot restore it).
            self.saved[1] = Pen::default();
        }
    }

    fn leave_alt(&mut self) {
        if self.alt_screen {
            self.alt_screen = false;
            self.saved[1] = Pen::default();
        }
    }

    /// DECSC (ESC 7, CSI s, ?1048h): the pen is the tracked part of the saved cursor.
    pub(super) fn save_cursor(&mut self) {
        let screen = self.screen();
        self.saved[screen] = self.pen;
    }

    /// DECRC (ESC 8, CSI u, ?1048l).
    pub(super) fn restore_cursor(&mut self) {
        self.pen = self.saved[self.screen()];
    }

    /// RIS: everything back to a fresh terminal.
    pub(super) fn full_reset(&mut self) {
        *self = Modes::default();
    }

    /// DECSTR, as xterm.js's soft reset.
    pub(super) fn soft_reset(&mut self) {
        self.flags &= !SOFT_RESET_FLAGS;
        self.cursor_style = None;
        self.region = (1, 0);
        self.pen = Pen::default();
        self.charsets = [b'B'; 4];
        self.gl = 0;
        let screen = self.screen();
        self.saved[screen] = Pen::default();
    }

    /// SO / SI / LS2 / LS3: invoke G`n` into GL.
    pub(super) fn shift(&mut self, n: u8) {
        self.gl = n;
    }

    /// DECKPAM / DECKPNM.
    pub(super) fn keypad(&mut self, application: bool) {
        self.set_flag(KEYPAD, application);
    }

    /// `ESC ( F` and friends: `inter` is the designating intermediate byte.
    pub(super) fn designate(&mut self, inter: u8, fin: u8) {
        let g = match inter {
            b'(' => 0,
            b')' | b'-' => 1,
            b'*' | b'.' => 2,
            b'+' | b'/' => 3,
            _ => return,
        };
        self.charsets[g] = if KNOWN_CHARSETS.contains(&fin) {
            fin
        } else {
            b'B'
        };
    }

    /// DECSCUSR.
    pub(super) fn cursor_style(&mut self, p: u16) {
        if let Ok(style @ 0..=6) = u8::try_from(p) {
            self.cursor_style = Some(style);
        }
    }

    /// DECSTBM; a region of fewer than two lines is ignored, as terminals do.
    pub(super) fn scroll_region(&mut self, params: &Params) {
        let top = params.get(0).max(1);
        let bottom = if params.len() < 2 { 0 } else { params.get(1) };
        if bottom == 0 || bottom > top {
            self.region = (top, bottom);
        }
    }

    /// SM / RM with no prefix (ANSI modes).
    pub(super) fn ansi_mode(&mut self, p: u16, on: bool) {
        match p {
            4 => self.set_flag(INSERT, on),
            20 => self.set_flag(NEWLINE, on),
            _ => {}
        }
    }

    /// DECSET / DECRST.
    pub(super) fn dec_mode(&mut self, p: u16, on: bool) {
        match p {
            1 => self.set_flag(CKM, on),
            6 => self.set_flag(ORIGIN, on),
            7 => self.set_flag(NO_WRAP, !on),
            25 => self.set_flag(HIDDEN, !on),
            45 => self.set_flag(REVERSE_WRAP, on),
            66 => self.set_flag(KEYPAD, on),
            1004 => self.set_flag(FOCUS, on),
            2004 => self.set_flag(PASTE, on),
            9 | 1000 | 1002 | 1003 => {
                self.mouse = match (on, p) {
                    (false, _) => Mouse::Off,
                    (true, 9) => Mouse::X10,
                    (true, 1000) => Mouse::Vt200,
                    (true, 1002) => Mouse::Drag,
                    _ => Mouse::Any,
                }
            }
            1005 | 1006 | 1015 | 1016 => {
                let enc = match p {
                    1005 => MouseEncoding::Utf8,
                    1006 => MouseEncoding::Sgr,
                    1015 => MouseEncoding::Urxvt,
                    _ => MouseEncoding::SgrPixels,
                };
                if on {
                    self.encoding = enc;
                } else if self.encoding == enc {
                    self.encoding = MouseEncoding::Default;
                }
            }
            47 | 1047 => {
                if on {
                    self.enter_alt()
                } else {
                    self.leave_alt()
                }
            }
            1048 => {
                if on {
                    self.save_cursor()
                } else {
                    self.restore_cursor()
                }
            }
            1049 => {
                if on {
                    self.save_cursor();
                    self.enter_alt();
                } else {
                    self.leave_alt();
                    self.restore_cursor();
                }
            }
            _ => {}
        }
    }

    /// SGR. Inlined into the scanner's CSI fast path; the rare forms stay out of line.
    #[inline]
    pub(super) fn sgr(&mut self, params: &Params) {
        if params.subs == 0 {
            self.sgr_without_subs(params);
        } else {
            self.sgr_with_subs(params);
        }
    }

    /// SGR without sub-parameters (`:`), the common form: what [`Modes::sgr_with_subs`]
    /// does for it, without looking for sub-parameters after every parameter.
    #[inline(always)]
    pub(super) fn sgr_without_subs(&mut self, params: &Params) {
        let mut i = 0;
        while i < params.len() {
            match params.get(i) {
                p @ (38 | 48 | 58) => i = self.pen.extended_sgr(p, params, i, 0),
                p => {
                    self.pen.simple_sgr(p);
                    i += 1;
                }
            }
        }
    }

    /// SGR in its general form, sub-parameters included.
    #[cold]
    #[inline(never)]
    pub(super) fn sgr_with_subs(&mut self, params: &Params) {
        let pen = &mut self.pen;
        let mut i = 0;
        while i < params.len() {
            let subs = params.subs_after(i);
            let next = i + 1 + subs;
            match params.get(i) {
                4 if subs > 0 => {
                    if let Ok(style @ 0..=5) = u8::try_from(params.get(i + 1)) {
                        pen.underline = style;
                    }
                }
                p @ (38 | 48 | 58) => {
                    i = pen.extended_sgr(p, params, i, subs);
                    continue;
                }
                p => pen.simple_sgr(p),
            }
            i = next;
        }
    }

    /// Appends the bytes that take a fresh terminal into this state (nothing for defaults).
    pub(super) fn restore(&self, out: &mut Vec<u8>) {
        let mut pen = Pen::default();
        // Saved pens first: DECSC and 1049 save the pen in force when they run.
        if self.saved[0] != Pen::default() {
            set_pen(out, &mut pen, self.saved[0]);
            out.extend_from_slice(b"\x1b7");
        }
        if self.alt_screen {
            out.extend_from_slice(b"\x1b[?1049h");
            if self.saved[1] != Pen::default() {
                set_pen(out, &mut pen, self.saved[1]);
                out.extend_from_slice(b"\x1b7");
            }
        }
        if self.region != (1, 0) {
            let (top, bottom) = self.region;
            if bottom == 0 {
                out.extend_from_slice(format!("\x1b[{top}r").as_bytes());
            } else {
                out.extend_from_slice(format!("\x1b[{top};{bottom}r").as_bytes());
            }
        }
        self.restore_dec_modes(out);
        if self.flags & INSERT != 0 {
            out.extend_from_slice(b"\x1b[4h");
        }
        if self.flags & NEWLINE != 0 {
            out.extend_from_slice(b"\x1b[20h");
        }
        if self.flags & KEYPAD != 0 {
            out.extend_from_slice(b"\x1b=");
        }
        for (g, inter) in b"()*+".iter().enumerate() {
            if self.charsets[g] != b'B' {
                out.extend_from_slice(&[0x1b, *inter, self.charsets[g]]);
            }
        }
        match self.gl {
            1 => out.push(0x0e),
            2 => out.extend_from_slice(b"\x1bn"),
            3 => out.extend_from_slice(b"\x1bo"),
            _ => {}
        }
        if let Some(style) = self.cursor_style {
            out.extend_from_slice(format!("\x1b[{style} q").as_bytes());
        }
        set_pen(out, &mut pen, self.pen);
    }

    /// DECSET/DECRST for every non-default private mode, in one `h` and one `l` sequence.
    fn restore_dec_modes(&self, out: &mut Vec<u8>) {
        let mut set: Vec<u16> = Vec::new();
        let mut reset: Vec<u16> = Vec::new();
        for (flag, mode) in [
            (CKM, 1),
            (ORIGIN, 6),
            (REVERSE_WRAP, 45),
            (FOCUS, 1004),
            (PASTE, 2004),
        ] {
            if self.flags & flag != 0 {
                set.push(mode);
            }
        }
        for (flag, mode) in [(NO_WRAP, 7), (HIDDEN, 25)] {
            if self.flags & flag != 0 {
                reset.push(mode);
            }
        }
        match self.mouse {
            Mouse::Off => {}
            Mouse::X10 => set.push(9),
            Mouse::Vt200 => set.push(1000),
            Mouse::Drag => set.push(1002),
            Mouse::Any => set.push(1003),
        }
        match self.encoding {
            MouseEncoding::Default => {}
            MouseEncoding::Utf8 => set.push(1005),
            MouseEncoding::Sgr => set.push(1006),
            MouseEncoding::Urxvt => set.push(1015),
            MouseEncoding::SgrPixels => set.push(1016),
        }
        for (list, fin) in [(set, 'h'), (reset, 'l')] {
            if !list.is_empty() {
                let joined: Vec<String> = list.iter().map(u16::to_string).collect();
                out.extend_from_slice(format!("\x1b[?{}{fin}", joined.join(";")).as_bytes());
            }
        }
    }
}

fn ansi(n: u16) -> Color {
    Color::Ansi(n as u8 & 15)
}

/// Parses `38;5;n`, `38;2;r;g;b` or the colon forms `38:5:n`, `38:2:[cs]:r:g:b` starting at
/// param `i` with `subs` sub-parameters; returns the colour and the index after it.
fn extended_color(params: &Params, i: usize, subs: usize) -> (Option<Color>, usize) {
    let byte = |k: usize| u8::try_from(params.get(k)).ok();
    if subs > 0 {
        let end = i + 1 + subs;
        let color = match (params.get(i + 1), subs) {
            (5, 2..) => byte(i + 2).map(Color::Indexed),
            // With a colour-space id (`38:2::r:g:b`) or without (`38:2:r:g:b`).
            (2, 5..) => rgb(byte(i + 3), byte(i + 4), byte(i + 5)),
            (2, 4) => rgb(byte(i + 2), byte(i + 3), byte(i + 4)),
            _ => None,
        };
        return (color, end);
    }
    match params.get(i + 1) {
        5 if i + 2 < params.len() => (byte(i + 2).map(Color::Indexed), i + 3),
        2 if i + 4 < params.len() => (rgb(byte(i + 2), byte(i + 3), byte(i + 4)), i + 5),
        2 | 5 => (None, params.len()),
        _ => (None, i + 1),
    }
}

fn rgb(r: Option<u8>, g: Option<u8>, b: Option<u8>) -> Option<Color> {
    Some(Color::Rgb(r?, g?, b?))
}

/// Emits SGR sequences that take the terminal from pen `*cur` to `want`.
fn set_pen(out: &mut Vec<u8>, cur: &mut Pen, want: Pen) {
    if *cur == want {
        return;
    }
    *cur = want;
    // Always from a reset pen: simpler than a diff and the same bytes every time.
    let mut sgr = String::from("\x1b[0");
    for (bit, n) in ATTR_SGR {
        if want.attrs & bit != 0 {
            sgr.push_str(&format!(";{n}"));
        }
    }
    match want.underline {
        0 => {}
        1 => sgr.push_str(";4"),
        style => sgr.push_str(&format!(";4:{style}")),
    }
    sgr.push('m');
    // Colours in their own sequences keep every sequence short of parameter limits.
    for (color, base) in [(want.fg, 30u16), (want.bg, 40)] {
        match color {
            Color::Default => {}
            Color::Ansi(n @ 0..=7) => sgr.push_str(&format!("\x1b[{}m", base + u16::from(n))),
            Color::Ansi(n) => sgr.push_str(&format!("\x1b[{}m", base + 60 + u16::from(n - 8))),
            Color::Indexed(n) => sgr.push_str(&format!("\x1b[{};5;{n}m", base + 8)),
            Color::Rgb(r, g, b) => sgr.push_str(&format!("\x1b[{};2;{r};{g};{b}m", base + 8)),
        }
    }
    match want.ul_color {
        Color::Default => {}
        Color::Ansi(n) | Color::Indexed(n) => sgr.push_str(&format!("\x1b[58:5:{n}m")),
        Color::Rgb(r, g, b) => sgr.push_str(&format!("\x1b[58:2::{r}:{g}:{b}m")),
    }
    out.extend_from_slice(sgr.as_bytes());
}
