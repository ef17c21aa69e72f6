//! Policy strings with `*` / `?` wildcards and policy variables: [`Template`] (parsed once) and the
//! glob match used for actions, resources and `StringLike` conditions.
//!
//! Rules (AWS IoT Core developer guide, "AWS IoT Core policy variables" and "Publish/Subscribe policy
//! examples"): `*` is any run of characters (`/` included), `?` exactly one character; MQTT's `+` and
//! `#` are ordinary characters; `${iot:...}` is replaced by its value, which is always literal (a
//! client id `*` does not become a wildcard); `$(*)`, `$(?)` and `$($)` stand for a literal `*`, `?`
//! and `$`.

use crate::context::{RequestContext, Variable};

/// One element of a pattern without variables.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Glob {
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
    /// attached, say) matches nothing. Allocates nothing: values are borrowed from `ctx`.
    pub(crate) fn matches(&self, ctx: &RequestContext, text: &str) -> bool {
        let resolvable = self.pieces.iter().all(|piece| match piece {
            Piece::Variable(variable) => ctx.value(variable).is_some(),
            Piece::Glob(_) => true,
        });
        resolvable
            && glob_match(
                self.pieces.len(),
                |i| match &self.pieces[i] {
                    Piece::Glob(Glob::Literal(text)) => GlobRef::Literal(text),
                    Piece::Glob(Glob::Star) => GlobRef::Star,
                    Piece::Glob(Glob::One) => GlobRef::One,
                    Piece::Variable(variable) => {
                        GlobRef::Literal(ctx.value(variable).unwrap_or(""))
                    }
                },
                text,
            )
    }

    /// Like [`Template::matches`], ignoring case (`StringEqualsIgnoreCase`).
    pub(crate) fn matches_ignoring_case(&self, ctx: &RequestContext, text: &str) -> bool {
        let mut lowered = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            lowered.push(match piece {
                Piece::Glob(Glob::Literal(text)) => Glob::Literal(text.to_lowercase()),
                Piece::Glob(other) => other.clone(),
                Piece::Variable(variable) => match ctx.value(variable) {
                    Some(value) => Glob::Literal(value.to_lowercase()),
                    None => return false,
                },
            });
        }
        glob_match(
            lowered.len(),
            |i| match &lowered[i] {
                Glob::Literal(text) => GlobRef::Literal(text),
                Glob::Star => GlobRef::Star,
                Glob::One => GlobRef::One,
            },
            &text.to_lowercase(),
        )
    }
}

/// A pattern element as the matcher reads it.
#[derive(Clone, Copy)]
enum GlobRef<'a> {
    Literal(&'a str),
    Star,
    One,
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

/// Wildcard match of the whole of `text` against the `len` pattern elements `piece(0..len)` (greedy
/// with one backtrack point, linear in practice and `O(pattern × text)` at worst, no recursion).
fn glob_match<'a>(len: usize, piece: impl Fn(usize) -> GlobRef<'a>, text: &str) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a `*`: the pattern index after it and the text offset it currently swallows up to.
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        let advanced = if p < len {
            match piece(p) {
                // A trailing `*` takes whatever is left.
                GlobRef::Star if p + 1 == len => return true,
                GlobRef::Star => {
                    backtrack = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                GlobRef::One => text[t..].chars().next().map(char::len_utf8),
                GlobRef::Literal(literal) => {
                    text[t..].starts_with(literal).then_some(literal.len())
                }
            }
        } else if t == text.len() {
            return true;
        } else {
            None
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
