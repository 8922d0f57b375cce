//! Who someone is and what they may do: password hashing, sessions, CSRF and roles.

pub mod tokens;
