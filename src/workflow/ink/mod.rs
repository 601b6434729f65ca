//! Typed values of InvokeAI's type system (`Ink*`): what an input field holds, how a user's
//! value is converted into it, and the schema constraints it must meet.

mod check;
mod coerce;
mod types;
mod value;

pub use check::check;
pub use coerce::coerce;
pub use types::{BoardChoice, Color, Constraints, InkType, ModelIdentifier};
pub use value::InkValue;
