//! Who someone is and what they may do: password hashing, accounts, sessions and CSRF, and
//! the single policy function every route consults.

pub mod api_token;
pub mod password;
pub mod roles;
pub mod second_factor;
pub mod session;
pub mod sso;
pub mod users;
