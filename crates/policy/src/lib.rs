//! Password and passcode policies for rekey, and generators that meet them.
//!
//! A [`PasswordPolicy`] says how long a generated password is, how many characters
//! of each class (lower case, upper case, digits, symbols) it holds at least, which
//! symbols it may use and which characters it must avoid. A [`PasscodePolicy`] says
//! how long a numeric passcode is; every passcode also avoids a digit three times in
//! a row and ascending or descending runs of four (`1234`, `8765`, and wrapping
//! around: `7890`), which PBX passcode rules commonly refuse.
//!
//! No generated password begins with a character a spreadsheet reads as the start of
//! a formula ([`FORMULA_STARTS`]), so that a results file opened in a spreadsheet
//! shows every password exactly as set.
//!
//! A policy is checked when the config is read: an impossible one (minimums longer
//! than the password, a required class whose every character is excluded) is refused
//! with a message that says why. A checked policy gives a generator whose output
//! always meets it, drawn from the operating system's CSPRNG without modulo bias, in
//! a bounded number of steps.

mod passcode;
mod password;

pub use passcode::{PasscodeGenerator, PasscodePolicy, is_acceptable_passcode};
pub use password::{PasswordGenerator, PasswordPolicy};

/// The characters a spreadsheet reads as the start of a formula: no password rekey
/// hands over may begin with one (see [`begins_formula`]).
pub const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];

/// Whether `text` begins with a character a spreadsheet reads as the start of a
/// formula.
pub fn begins_formula(text: &str) -> bool {
    text.starts_with(FORMULA_STARTS)
}

use rand::TryRng as _;

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The length is outside what rekey generates.
    #[error("length {length} is out of range: use {min} to {max}")]
    Length {
        /// The length asked for.
        length: usize,
        /// The shortest allowed.
        min: usize,
        /// The longest allowed.
        max: usize,
    },
    /// The per-class minimums add up to more than the length.
    #[error(
        "the minimums (min_lower + min_upper + min_digit + min_symbol = {sum}) exceed the length {length}: lower a minimum or raise the length"
    )]
    MinimumsExceedLength {
        /// The sum of the minimums.
        sum: usize,
        /// The length.
        length: usize,
    },
    /// A class with a minimum has no characters left.
    #[error("{setting} is {min}, but {reason}")]
    EmptyClass {
        /// The minimum setting (`min_symbol`).
        setting: &'static str,
        /// Its value.
        min: usize,
        /// Why the class is empty.
        reason: String,
    },
    /// A symbol that cannot be used.
    #[error(
        "symbols holds {shown}: symbols must be ASCII punctuation (letters, digits and spaces come from their own classes)"
    )]
    BadSymbol {
        /// The character, printed safely.
        shown: String,
    },
    /// Every character is excluded.
    #[error("exclude_chars leaves no characters to make passwords from")]
    NoCharacters,
    /// Every password the policy allows would begin with a formula character.
    #[error(
        "every password this policy allows would begin with =, +, - or @, which a spreadsheet takes for a formula: allow another character (a letter, a digit or another symbol), or lower min_symbol below the length"
    )]
    FormulaOnly,
    /// The policy breaks the vendor's password rules.
    #[error("the policy does not suit this connector: {0}")]
    VendorRules(String),
    /// The operating system's random number generator is unavailable.
    #[error("the operating system's random number generator is unavailable: {0}")]
    Random(String),
}

/// The operating system's CSPRNG, read directly on every draw.
pub(crate) type OsRandom = rand::rngs::SysRng;

/// Fails if the operating system's CSPRNG cannot be read, so that the generators,
/// which draw through an infallible adapter, are only built when it works.
pub(crate) fn probe_os_random() -> Result<(), PolicyError> {
    let mut probe = [0u8; 16];
    OsRandom::default()
        .try_fill_bytes(&mut probe)
        .map_err(|e| PolicyError::Random(e.to_string()))
}
