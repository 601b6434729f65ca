//! Typed values of InvokeAI's type system (`Ink*`): what an input field holds, how a user's
//! value is converted into it, and the schema constraints it must meet.

mod check;
mod coerce;
mod error;
#[cfg(test)]
mod tests;
mod types;
mod value;

pub use check::*;
pub use coerce::*;
pub use error::*;
pub use types::*;
pub use value::*;
