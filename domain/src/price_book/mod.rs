//! The price book (platform scope, one aggregate, its own chain): per
//! provider and model, what a million input, output and cached-input
//! tokens cost, and a request where a provider charges per request, in
//! integer micro-units of one currency. Versioned: each publication is the
//! next version, effective from a time; usage is costed when it is recorded
//! at the version in effect when it occurred, and the cost and version are
//! written into the usage event, so no later version changes it.
//!
//! Version 0 is built in (`default_list`): the book until a platform admin
//! publishes one.

mod aggregate;

pub use aggregate::{
    default_list, Cost, ModelPrice, PriceBook, PriceBookCommand, PriceBookError, PriceBookEvent,
    PriceList, PRICE_BOOK_ID,
};

#[cfg(test)]
mod tests;
