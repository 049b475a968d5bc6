//! The one error type of the GS1 crate: what is wrong, where, and in which AI.

use std::fmt;

/// What kind of rule an input broke; each kind has a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gs1ErrorKind {
    /// An Application Identifier that is not in the GS1 table.
    UnknownAi,
    /// A check digit that does not match the digits before it.
    BadCheckDigit,
    /// A value (or a component of one) that is too short or too long.
    WrongLength,
    /// A character outside the AI's character set.
    IllegalCharacter,
    /// A YYMMDD date (or date-time) that does not exist.
    InvalidDate,
    /// An AI that GS1 only allows together with another one (e.g. 21 needs 01).
    MissingAssociation,
    /// Two AIs that GS1 forbids in one element string (e.g. 01 with 02).
    InvalidCombination,
    /// The same AI twice with different values.
    DuplicateAi,
    /// Anything else about the shape of the input (brackets, URI structure, URN form).
    Syntax,
}

impl Gs1ErrorKind {
    /// The code used in field violations (`BAD_CHECK_DIGIT`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownAi => "UNKNOWN_AI",
            Self::BadCheckDigit => "BAD_CHECK_DIGIT",
            Self::WrongLength => "WRONG_LENGTH",
            Self::IllegalCharacter => "ILLEGAL_CHARACTER",
            Self::InvalidDate => "INVALID_DATE",
            Self::MissingAssociation => "MISSING_ASSOCIATION",
            Self::InvalidCombination => "INVALID_COMBINATION",
            Self::DuplicateAi => "DUPLICATE_AI",
            Self::Syntax => "SYNTAX",
        }
    }
}

/// A malformed GS1 input: the rule broken, the AI concerned and the character position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Gs1Error {
    /// Which rule was broken.
    pub kind: Gs1ErrorKind,
    /// The AI whose value is wrong, when there is one.
    pub ai: Option<String>,
    /// Zero-based character offset in the input where the problem starts, when known.
    pub position: Option<usize>,
    /// What exactly is wrong, in words.
    pub detail: String,
}

impl Gs1Error {
    /// An error of `kind` described by `detail`.
    pub fn new(kind: Gs1ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            ai: None,
            position: None,
            detail: detail.into(),
        }
    }

    /// The same error, naming the AI concerned (kept if already set).
    pub fn in_ai(mut self, ai: &str) -> Self {
        self.ai.get_or_insert_with(|| ai.to_owned());
        self
    }

    /// The same error with its position moved `offset` characters further into the input.
    pub fn shifted(mut self, offset: usize) -> Self {
        self.position = self.position.map(|p| p + offset);
        self
    }

    /// The same error at exactly `position`, unless a position is set already.
    pub fn at(mut self, position: usize) -> Self {
        self.position.get_or_insert(position);
        self
    }
}

impl fmt::Display for Gs1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ai) = &self.ai {
            write!(f, "AI ({ai}): ")?;
        }
        if let Some(position) = self.position {
            write!(f, "at position {position}: ")?;
        }
        f.write_str(&self.detail)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Gs1Error> = std::result::Result<T, E>;
