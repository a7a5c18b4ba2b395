//! The escape-sequence scanner and the replay cut ([`axs_core::term`]).
//!
//! The input is split into what came before the ring and the ring's bytes (in pieces),
//! and a replay is planned from there. Asserts: the cut is within the ring and a safe cut
//! (ground state, not inside a UTF-8 character, the latter also checked against
//! `std::str::from_utf8`) unless it is the very end; the drops are
//! sorted, disjoint, after the cut and within the ring; the prefix is the state at the
//! cut; a fresh terminal fed the replay ends in the same modes and at a safe cut exactly
//! when the whole stream does (leaving sequences out changes nothing after them); the
//! plan does not depend on how the ring is split into chunks, nor does the scanner's
//! state on how bytes are split into calls; a bounded plan keeps at most its number of
//! drops and still restores the same modes; and [`TermState::advance_text`] parses like
//! [`TermState::advance`] and never returns an ESC.

use axs_core::term::{apply_plan, plan_replay, plan_replay_bounded, ReplayPlan, TermState};

use crate::input::{pieces, Input};

/// Fuzz target `term_replay`.
pub fn replay(data: &[u8]) {
    let mut input = Input::new(data);
    let before_len = usize::from(input.byte());
    let window = usize::from(input.byte() % 64);
    let max_drops = usize::from(input.byte() % 4);
    let sizes = input.bytes(3).to_vec();
    let before = input.bytes(before_len);
    let ring = input.rest();
    let start = state_after(before);
    let chunks = pieces(ring, &sizes);
    let plan = plan_replay(&start, &chunks, window);
    check_shape(&start, ring, &plan);
    check_not_in_a_character(
        &[before, &ring[..plan.cut]].concat(),
        plan.cut == ring.len(),
    );
    assert_eq!(
        plan_replay(&start, &[ring], window),
        plan,
        "chunking changed the plan"
    );
    let whole = [before, ring].concat();
    let full = state_after(&whole);
    if plan.cut < ring.len() {
        check_replay_restores(&apply_plan(&chunks, &plan), &full);
    }
    let bounded = plan_replay_bounded(&start, &chunks, window, max_drops);
    check_shape(&start, ring, &bounded);
    assert!(
        bounded.drops.len() <= max_drops,
        "{} drops",
        bounded.drops.len()
    );
    if bounded.cut < ring.len() {
        check_replay_restores(&apply_plan(&chunks, &bounded), &full);
    }
    check_split_invariance(&whole, &sizes, &full);
}

/// A fresh scanner fed `bytes`.
fn state_after(bytes: &[u8]) -> TermState {
    let mut state = TermState::new();
    state.advance(bytes);
    state
}

/// The cut is safe, the prefix is the state there, the drops are in order after it.
fn check_shape(start: &TermState, ring: &[u8], plan: &ReplayPlan) {
    assert!(plan.cut <= ring.len());
    let mut at_cut = start.clone();
    at_cut.advance(&ring[..plan.cut]);
    assert!(
        plan.cut == ring.len() || at_cut.at_safe_cut(),
        "cut {} is not safe",
        plan.cut
    );
    let mut prefix = Vec::new();
    at_cut.restore_sequence(&mut prefix);
    assert_eq!(prefix, plan.prefix);
    let mut last = plan.cut;
    for drop in &plan.drops {
        assert!(
            drop.start >= last && drop.start < drop.end && drop.end <= ring.len(),
            "{:?}",
            plan.drops
        );
        last = drop.end;
    }
}

/// An oracle apart from the scanner: a cut (but one at the very end) never leaves the
/// bytes before it ending in the valid start of an unfinished UTF-8 character.
fn check_not_in_a_character(before_cut: &[u8], at_end: bool) {
    let tail = &before_cut[before_cut.len().saturating_sub(3)..];
    let Some(lead) = tail.iter().rposition(|b| b & 0xc0 != 0x80) else {
        return;
    };
    let unfinished = std::str::from_utf8(&tail[lead..]).is_err_and(|e| e.error_len().is_none());
    assert!(
        at_end || !unfinished,
        "cut inside the character {:?}",
        &tail[lead..]
    );
}

/// The replay brings a fresh terminal to the stream's modes and parser position.
fn check_replay_restores(replay: &[u8], full: &TermState) {
    let replayed = state_after(replay);
    assert_eq!(replayed.modes(), full.modes(), "the replay lost state");
    assert_eq!(
        replayed.at_safe_cut(),
        full.at_safe_cut(),
        "the replay parses differently"
    );
}

/// Splitting into calls changes nothing; `advance_text` parses the same and keeps no ESC.
fn check_split_invariance(whole: &[u8], sizes: &[u8], full: &TermState) {
    let mut split = TermState::new();
    for piece in pieces(whole, sizes) {
        split.advance(piece);
    }
    assert_eq!(&split, full, "splitting changed the state");
    let mut with_text = TermState::new();
    let mut text = Vec::new();
    with_text.advance_text(whole, &mut text);
    assert_eq!(&with_text, full, "advance_text parsed differently");
    assert!(!text.contains(&0x1b), "an ESC in the text");
}
