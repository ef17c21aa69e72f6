//! Policy strings with `*` / `?` wildcards and policy variables: [`Template`] (parsed once) and the
//! glob match used for actions, resources and `StringLike` conditions.
//!
//! Rules (AWS IoT Core developer guide, "AWS IoT Core policy variables" and "Publish/Subscribe policy
//! examples"): `*` is any run of characters (`/` included), `?` exactly one character; MQTT's `+` and
//! `#` are ordinary characters; `${iot:...}` is replaced by its value, which is always literal (a
//! client id `*` does not become a wildcard); `$(*)`, `$(?)` and `$($)` stand for a literal `*`, `?`
//! and `$`.

use crate::context::{RequestContext, Variable};

/// One element of a resolved pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Glob {
    /// Exactly this text.
    Literal(String),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// One element of a template: a resolved glob piece or a variable still to substitute.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Glob(Glob),
    Variable(Variable),
}

/// A policy string, parsed once: literal text, wildcards and policy variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`. With `variables` false (a policy without `"Version": "2012-10-17"`), `${...}` is
    /// literal text, as in IAM.
    pub(crate) fn parse(text: &str, variables: bool) -> Self {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let special = [("$(*)", '*'), ("$(?)", '?'), ("$($)", '$')]
                .into_iter()
                .find(|(token, _)| rest.starts_with(token));
            if let Some((token, ch)) = special {
                literal.push(ch);
                rest = &rest[token.len()..];
                continue;
            }
            if variables
                && rest.starts_with("${")
                && let Some(end) = rest.find('}')
            {
                flush(&mut literal, &mut pieces);
                pieces.push(Piece::Variable(Variable::parse(&rest[2..end])));
                rest = &rest[end + 1..];
                continue;
            }
            match c {
                '*' => {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Glob(Glob::Star));
                }
                '?' => {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Glob(Glob::One));
                }
                _ => literal.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
        flush(&mut literal, &mut pieces);
        Self { pieces }
    }

    /// Splits at the first `max - 1` literal `:` characters (an ARN's colon-separated fields; the last
    /// field keeps any further colons, as in `client/a:b`).
    pub(crate) fn split_fields(&self, max: usize) -> Vec<Self> {
        let mut fields = vec![Self { pieces: Vec::new() }];
        for piece in &self.pieces {
            let Piece::Glob(Glob::Literal(text)) = piece else {
                push_piece(&mut fields, piece.clone());
                continue;
            };
            let mut text = text.as_str();
            while fields.len() < max
                && let Some(colon) = text.find(':')
            {
                if colon > 0 {
                    push_piece(&mut fields, literal_piece(&text[..colon]));
                }
                fields.push(Self { pieces: Vec::new() });
                text = &text[colon + 1..];
            }
            if !text.is_empty() {
                push_piece(&mut fields, literal_piece(text));
            }
        }
        fields
    }

    /// Whether the template is exactly `*`.
    pub(crate) fn is_star(&self) -> bool {
        self.pieces == [Piece::Glob(Glob::Star)]
    }

    /// The template's text if it has no wildcard and no variable.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Glob(Glob::Literal(text))] => Some(text),
            _ => None,
        }
    }

    /// Whether `text` matches, variables substituted from `ctx`; an unresolvable variable (no thing
    /// attached, say) matches nothing.
    pub(crate) fn matches(&self, ctx: &RequestContext, text: &str) -> bool {
        self.resolve(ctx)
            .is_some_and(|globs| glob_match(&globs, text))
    }

    /// The template with its variables substituted as literals; `None` when one has no value.
    pub(crate) fn resolve(&self, ctx: &RequestContext) -> Option<Vec<Glob>> {
        let mut globs = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Glob(glob) => globs.push(glob.clone()),
                Piece::Variable(variable) => globs.push(Glob::Literal(ctx.value(variable)?)),
            }
        }
        Some(globs)
    }
}

fn literal_piece(text: &str) -> Piece {
    Piece::Glob(Glob::Literal(text.to_owned()))
}

fn push_piece(fields: &mut [Template], piece: Piece) {
    if let Some(last) = fields.last_mut() {
        last.pieces.push(piece);
    }
}

fn flush(literal: &mut String, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Glob(Glob::Literal(std::mem::take(literal))));
    }
}

/// Wildcard match of the whole of `text` (greedy with one backtrack point, linear in practice and
/// `O(pattern × text)` at worst, no recursion).
pub(crate) fn glob_match(pattern: &[Glob], text: &str) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a `*`: the pattern index after it and the text offset it currently swallows up to.
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        let advanced = match pattern.get(p) {
            Some(Glob::Star) => {
                backtrack = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(Glob::One) => text[t..].chars().next().map(char::len_utf8),
            Some(Glob::Literal(literal)) => text[t..]
                .starts_with(literal.as_str())
                .then_some(literal.len()),
            None if t == text.len() => return true,
            None => None,
        };
        if let Some(length) = advanced {
            p += 1;
            t += length;
            continue;
        }
        let Some((after_star, swallowed)) = backtrack else {
            return false;
        };
        let Some(next) = text[swallowed..].chars().next() else {
            return false;
        };
        let swallowed = swallowed + next.len_utf8();
        backtrack = Some((after_star, swallowed));
        (p, t) = (after_star, swallowed);
    }
}
